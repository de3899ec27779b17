"""LayerNorm spelled out by exporters before opset 17, read back as one LayerNormalization node.

torch.onnx (opset < 17) writes ``nn.LayerNorm`` over the last axis as::

    mean = ReduceMean(x, axes=[-1]); d = Sub(x, mean); var = ReduceMean(Pow(d, 2), axes=[-1])
    y = Div(d, Sqrt(Add(var, epsilon))); then Mul by gamma and Add beta (each optional)

Each match becomes one ``LayerNormalization`` node and the ops it replaces leave the graph; anything else stays
as it is. Without gamma and beta the node has no scale input (wconv's reader only; ONNX itself requires one); a
beta without gamma gets a gamma of ones.
"""

from __future__ import annotations

import numpy as np

from ...rewrite import Match, Rule
from .wiring import Wiring


def match(wiring: Wiring, node) -> Match | None:
    """The LayerNorm starting at the ReduceMean ``node``: one LayerNormalization."""
    from onnx import helper

    found = _match(node, wiring.consumers, wiring.constants, wiring.outputs)
    if found is None:
        return None
    chain, x, gamma, beta, epsilon, output = found
    added = {}
    if gamma is None and beta is not None:  # torch has no LayerNorm with a bias but no weight
        gamma = f"{output}/ones"
        added[gamma] = np.ones(np.size(wiring.constants[beta]), np.float32)
    inputs = [x, gamma or ""] + ([beta] if beta else [])  # no scale: no affine params at all
    name = node.name.rsplit("/", 1)[0] if "/" in node.name.strip("/") else output  # '/ln/ReduceMean' -> '/ln'
    return Match(chain, [helper.make_node("LayerNormalization", inputs, [output], name=name, axis=-1,
                                          epsilon=epsilon)], added)


RULE = Rule("LayerNorm spelled out", ("ReduceMean",), match)


def _match(mean, consumers, constants, outputs):
    x = mean.input[0]
    if not _last_axis(mean, constants):
        return None
    sub = _only(consumers, mean.output[0], outputs)
    if sub is None or sub.op_type != "Sub" or list(sub.input) != [x, mean.output[0]]:
        return None
    users = consumers.get(sub.output[0], [])
    power = next((u for u in users if u.op_type == "Pow"), None)
    divide = next((u for u in users if u.op_type == "Div"), None)
    if len(users) != 2 or power is None or divide is None or not _constant(constants, power.input[1], 2.0):
        return None
    variance = _only(consumers, power.output[0], outputs)
    if variance is None or variance.op_type != "ReduceMean" or not _last_axis(variance, constants):
        return None
    shifted = _only(consumers, variance.output[0], outputs)
    epsilon = _other_scalar(shifted, variance.output[0], constants) if shifted and shifted.op_type == "Add" else None
    root = _only(consumers, shifted.output[0], outputs) if epsilon is not None else None
    if root is None or root.op_type != "Sqrt" or _only(consumers, root.output[0], outputs) is not divide or \
            list(divide.input) != [sub.output[0], root.output[0]]:
        return None
    chain, current, gamma, beta = [mean, sub, power, variance, shifted, root, divide], divide, None, None
    scale = _only(consumers, current.output[0], outputs)
    if scale is not None and scale.op_type == "Mul" and (gamma := _other_vector(scale, current.output[0], constants)):
        chain.append(scale)
        current = scale
    shift = _only(consumers, current.output[0], outputs)
    if shift is not None and shift.op_type == "Add" and (beta := _other_vector(shift, current.output[0], constants)):
        chain.append(shift)
        current = shift
    return chain, x, gamma, beta, epsilon, current.output[0]


def _only(consumers, value, outputs):
    users = consumers.get(value, [])
    return users[0] if len(users) == 1 and value not in outputs else None


def _last_axis(node, constants) -> bool:
    attrs = {a.name: a for a in node.attribute}
    axes = list(attrs["axes"].ints) if "axes" in attrs else \
        [int(a) for a in np.ravel(constants[node.input[1]])] if len(node.input) > 1 and node.input[1] in constants \
        else None
    keepdims = attrs["keepdims"].i if "keepdims" in attrs else 1
    return axes == [-1] and keepdims == 1


def _constant(constants, name, value) -> bool:
    return name in constants and np.size(constants[name]) == 1 and float(np.ravel(constants[name])[0]) == value


def _other_scalar(node, value, constants):
    others = [name for name in node.input if name != value]
    if len(others) == 1 and others[0] in constants and np.size(constants[others[0]]) == 1:
        return float(np.ravel(constants[others[0]])[0])
    return None


def _other_vector(node, value, constants):
    others = [name for name in node.input if name != value]
    if len(others) == 1 and others[0] in constants and np.ndim(constants[others[0]]) == 1:
        return others[0]
    return None
