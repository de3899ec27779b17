"""GroupNorm spelled out (torch.onnx before opset 18, and wconv's own ONNX form), read back as one node.

    g = Reshape(x, [0, G, -1]); n = InstanceNormalization(g, ones(G), zeros(G), epsilon)
    y = Reshape(n, Shape(x) or x's shape as a constant); then Mul by a per-channel scale (C, 1, ...) and Add a
    per-channel bias (each optional), and an Identity (wconv's)

Each match becomes one ``GroupNormalization`` node with a per-channel scale and bias (opset 21's meaning; ones and
zeros where the chain has none) and the ops it replaces leave the graph; anything else stays as it is.
"""

from __future__ import annotations

import numpy as np

from ...rewrite import Match, Rule
from .wiring import Wiring


def match(wiring: Wiring, node) -> Match | None:
    """The GroupNorm around the InstanceNormalization ``node``: one GroupNormalization with per-channel scale and
    bias (ones and zeros where the chain has none)."""
    from onnx import helper

    found = _match(node, wiring)
    if found is None:
        return None
    chain, x, groups, epsilon, scale, bias, output = found
    channels = scale.size if scale is not None else bias.size if bias is not None else None
    if channels is None:
        return None  # no affine step: the channel count is not in the chain (refused as InstanceNorm)
    name = chain[0].name.rsplit("/", 1)[0] if "/" in chain[0].name.strip("/") else output
    added = {f"{output}/{param}": value if value is not None else default(channels, np.float32)
             for param, value, default in (("scale", scale, np.ones), ("bias", bias, np.zeros))}
    return Match(chain, [helper.make_node("GroupNormalization", [x, f"{output}/scale", f"{output}/bias"], [output],
                                          name=name, num_groups=groups, epsilon=epsilon)], added)


RULE = Rule("GroupNorm spelled out", ("InstanceNormalization",), match)


def _match(norm, wiring: Wiring):
    grouped = wiring.producer.get(norm.input[0])
    shape = _constant(wiring, grouped.input[1]) if grouped is not None and grouped.op_type == "Reshape" else None
    if shape is None or len(shape) != 3 or shape[0] != 0 or shape[2] != -1 or shape[1] <= 0 or \
            wiring.only_consumer(grouped.output[0]) is not norm:
        return None
    groups, x = int(shape[1]), grouped.input[0]
    ones, zeros = _constant(wiring, norm.input[1]), _constant(wiring, norm.input[2])
    if ones is None or zeros is None or ones.shape != (groups,) or zeros.shape != (groups,) or \
            not np.all(ones == 1) or np.any(zeros):
        return None
    back = wiring.only_consumer(norm.output[0])
    if back is None or back.op_type != "Reshape" or back.input[0] != norm.output[0]:
        return None
    chain = [grouped, norm]
    restore = wiring.producer.get(back.input[1])
    if restore is not None and restore.op_type == "Shape" and restore.input[0] == x and not restore.attribute and \
            wiring.only_consumer(back.input[1]) is back:
        chain.append(restore)
    elif _constant(wiring, back.input[1]) is None:
        return None
    chain.append(back)
    epsilon = next((a.f for a in norm.attribute if a.name == "epsilon"), 1e-5)
    current, found = back, {}
    for op_type, param in (("Mul", "scale"), ("Add", "bias")):
        step = wiring.only_consumer(current.output[0])
        value = _per_channel(wiring, step, current.output[0]) if step is not None and step.op_type == op_type else None
        if value is not None:
            found[param], current = value, step
            chain.append(step)
    identity = wiring.only_consumer(current.output[0])
    if identity is not None and identity.op_type == "Identity":  # wconv names its output with one
        current = identity
        chain.append(identity)
    scale, bias = found.get("scale"), found.get("bias")
    if scale is not None and bias is not None and scale.size != bias.size:
        return None
    return chain, x, groups, float(f"{epsilon:.7g}"), scale, bias, current.output[0]


def _per_channel(wiring, node, value):
    """The (C,) values of a (C, 1, ...) constant operand of ``node`` (the other operand being ``value``)."""
    others = [name for name in node.input if name != value]
    array = _constant(wiring, others[0]) if len(others) == 1 else None
    if array is None or array.ndim < 2 or any(d != 1 for d in array.shape[1:]):
        return None
    return array.reshape(-1).astype(np.float32)


def _constant(wiring, name):
    value = wiring.constants.get(name)
    return None if value is None else np.asarray(value)
