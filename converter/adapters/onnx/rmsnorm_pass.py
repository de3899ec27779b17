"""RMSNorm spelled out (ONNX has no op before opset 23), read back as the one op (``ops/rmsnorm.py``)::

    root = Sqrt(Add(ReduceMean(Pow(x, 2) or Mul(x, x), axes=[-1]), epsilon))
    y = Div(x, root), or Mul(x, Reciprocal(root)) as torch.onnx writes ``x * torch.rsqrt(...)``; then Mul by the scale

Operands in either order; each value read by the next op alone. Anything else stays as it is.
"""

from __future__ import annotations

import numpy as np

from ...ops.rmsnorm import RMSNORM
from ...rewrite import Lifted, Match, Rule
from .layernorm_pass import _last_axis, _only, _other_scalar, _other_vector
from .wiring import Wiring


def match(wiring: Wiring, mean) -> Match | None:
    consumers, constants, outputs = wiring.consumers, wiring.constants, wiring.outputs
    square = wiring.producer.get(mean.input[0])
    x = _squared(square, constants)
    if x is None or not _last_axis(mean, constants) or _only(consumers, square.output[0], outputs) is not mean:
        return None
    shifted = _only(consumers, mean.output[0], outputs)
    epsilon = _other_scalar(shifted, mean.output[0], constants) if shifted and shifted.op_type == "Add" else None
    root = _only(consumers, shifted.output[0], outputs) if epsilon is not None else None
    if root is None or root.op_type != "Sqrt":
        return None
    chain = [square, mean, shifted, root]
    after = _only(consumers, root.output[0], outputs)
    if after is not None and after.op_type == "Div" and list(after.input) == [x, root.output[0]]:
        normalized = after
    elif after is not None and after.op_type == "Reciprocal":
        normalized = _only(consumers, after.output[0], outputs)
        if normalized is None or normalized.op_type != "Mul" or sorted(normalized.input) != sorted([x, after.output[0]]):
            return None
        chain.append(after)
    else:
        return None
    chain.append(normalized)
    current, params = normalized, {}
    scale = _only(consumers, current.output[0], outputs)
    if scale is not None and scale.op_type == "Mul" and (weight := _other_vector(scale, current.output[0], constants)):
        chain.append(scale)
        current, params["scale"] = scale, np.asarray(constants[weight], np.float32)
    name = mean.name.rsplit("/", 1)[0] if "/" in mean.name.strip("/") else current.output[0]
    return Match(chain, [Lifted.of(RMSNORM.node(name, [x], [current.output[0]], params, epsilon))])


def _squared(node, constants):
    """x for ``Pow(x, 2)`` or ``Mul(x, x)``, else None."""
    if node is None:
        return None
    if node.op_type == "Pow" and node.input[1] in constants and np.size(constants[node.input[1]]) == 1 and \
            float(np.ravel(constants[node.input[1]])[0]) == 2.0:
        return node.input[0]
    return node.input[0] if node.op_type == "Mul" and node.input[0] == node.input[1] else None


RULE = Rule("RMSNorm spelled out", ("ReduceMean",), match)
