"""RMSNorm spelled out (ONNX has no op before opset 23), read back as the one op (``ops/rmsnorm.py``)::

    root = Sqrt(Add(ReduceMean(Pow(x, 2) or Mul(x, x), axes=[-1]), epsilon))
    y = Div(x, root), or Mul(x, Reciprocal(root)) as torch.onnx writes ``x * torch.rsqrt(...)`` (its TorchScript
    exporter: Mul(x, Div(1, root))); then Mul by the scale

x may be ``Cast(x, to=float)`` read by the square and the product (transformers' ``x.to(torch.float32)``, T5's),
where x is a float already (shape inference's element types, ``rule(types)``): then the cast is x (an Identity where
others read it too). A cast from another type changes the values; it stays as it is. Operands in either order; each value read by the next op alone.
Anything else stays as it is.
"""

from __future__ import annotations

import numpy as np

from ...ops.rmsnorm import RMSNORM
from ...rewrite import Lifted, Match, Rule
from .layernorm_pass import _last_axis, _only, _other_scalar, _other_vector
from .wiring import Wiring


def rule(types: dict) -> Rule:
    """The rule, for a graph whose values have the element ``types`` (``shape_pass.element_types``)."""
    return Rule("RMSNorm spelled out", ("ReduceMean",), lambda wiring, mean: match(wiring, mean, types))


def match(wiring: Wiring, mean, types: dict | None = None) -> Match | None:
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
    elif after is not None and (after.op_type == "Reciprocal" or _one_over(after, root.output[0], constants)):
        normalized = _only(consumers, after.output[0], outputs)
        if normalized is None or normalized.op_type != "Mul" or sorted(normalized.input) != sorted([x, after.output[0]]):
            return None
        chain.append(after)
    else:
        return None
    chain.append(normalized)
    cast, kept = wiring.producer.get(x), []
    if cast is not None and cast.op_type == "Cast" and _to_float(cast) and \
            (types or {}).get(cast.input[0]) == FLOAT:
        if {id(user) for user in consumers.get(x, [])} != {id(square), id(normalized)} or x in outputs:
            from onnx import helper  # TorchScript hands the cast value to the residual Add too: x (a float, squared)

            kept = [helper.make_node("Identity", [cast.input[0]], [x], name=f"{cast.name}/as_float")]
        chain, x = [cast, *chain], cast.input[0]
    current, params = normalized, {}
    scale = _only(consumers, current.output[0], outputs)
    if scale is not None and scale.op_type == "Mul" and (weight := _other_vector(scale, current.output[0], constants)):
        chain.append(scale)
        current, params["scale"] = scale, np.asarray(constants[weight], np.float32)
    name = mean.name.rsplit("/", 1)[0] if "/" in mean.name.strip("/") else current.output[0]
    return Match(chain, [*kept, Lifted.of(RMSNORM.node(name, [x], [current.output[0]], params, epsilon))])


def _one_over(node, value, constants) -> bool:
    """Whether ``node`` is ``Div(1, value)``."""
    return node.op_type == "Div" and node.input[1] == value and node.input[0] in constants and \
        np.size(constants[node.input[0]]) == 1 and float(np.ravel(constants[node.input[0]])[0]) == 1.0


FLOAT = 1  # TensorProto.FLOAT


def _to_float(cast) -> bool:
    return any(attribute.name == "to" and attribute.i == FLOAT for attribute in cast.attribute)


def _squared(node, constants):
    """x for ``Pow(x, 2)`` or ``Mul(x, x)``, else None."""
    if node is None:
        return None
    if node.op_type == "Pow" and node.input[1] in constants and np.size(constants[node.input[1]]) == 1 and \
            float(np.ravel(constants[node.input[1]])[0]) == 2.0:
        return node.input[0]
    return node.input[0] if node.op_type == "Mul" and node.input[0] == node.input[1] else None


RULE = rule({})  # no types known: a Cast stays as it is
