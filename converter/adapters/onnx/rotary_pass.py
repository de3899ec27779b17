"""Rotary position embeddings spelled out, read as one rotation that the attention rule then takes into its op.

torch.onnx (dynamo) writes transformers' ``q * cos + rotate_half(q) * sin`` on the (N, heads, T, d) heads, and
wconv on the (N, T, heads, d) heads (``ops/rotary.py``)::

    Add(Mul(x, cos), Mul(Concat(Neg(Slice(x, d/2:)), Slice(x, :d/2), axis=-1), sin))

with ``cos`` and ``sin`` constants that broadcast over x. Operands in either order. The match becomes one
``Rotation`` node: an op-level node no file can hold, which the attention rule reads as a move of x (layout_trace
carries indices through it) and whose tables it lays out per step and head feature once it knows where each
element of x comes from (attention_heads.py). A rotation no attention takes is refused by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...rewrite import Match, Rule
from .wiring import Wiring

OP_TYPE = "(rotary embedding)"  # no file can hold a node of this type: what the rule proved
EVERYTHING = 2 ** 62  # a Slice end past any size (torch.onnx writes INT64_MAX)


@dataclass
class Rotation:
    """``x * cos + rotate_half(x) * sin`` on the last axis of x; ``cos``, ``sin`` as the file broadcasts them."""

    input: list
    output: list
    name: str
    cos: np.ndarray
    sin: np.ndarray
    axes: tuple  # the axes the halves are sliced and joined on: the last one, which the attention rule checks
    op_type: str = OP_TYPE
    domain: str = ""
    attribute: tuple = field(default=())


def match(wiring: Wiring, add) -> Match | None:
    for by_cos, by_sin in (add.input, add.input[::-1]):
        cos, sin = _scaled(wiring, by_cos), _scaled(wiring, by_sin)
        if cos is None or sin is None:
            continue
        (x, cos_table, cos_node), (turned, sin_table, sin_node) = cos, sin
        rotated = _rotated_half(wiring, turned)
        if rotated is None or rotated[0] != x or cos_table.shape != sin_table.shape or \
                cos_table.shape[-1] != 2 * rotated[2]:
            continue
        name = add.name.rsplit("/", 1)[0] if "/" in add.name.strip("/") else add.output[0]
        rotation = Rotation([x], [add.output[0]], name, np.asarray(cos_table), np.asarray(sin_table), rotated[3])
        return Match([add, cos_node, sin_node, *rotated[1]], [rotation])
    return None


def _scaled(wiring, value):
    """(the tensor, the constant, the Mul) for ``Mul(tensor, constant)`` read by one node, either order."""
    node = wiring.producer.get(value)
    if node is None or node.op_type != "Mul" or wiring.only_consumer(value) is None:
        return None
    for tensor, constant in (node.input, node.input[::-1]):
        if constant in wiring.constants and tensor not in wiring.constants and np.ndim(wiring.constants[constant]):
            return tensor, wiring.constants[constant], node
    return None


def _rotated_half(wiring, value):
    """(x, the nodes, d/2, the slices' and the Concat's axes) for ``Concat(Neg(Slice(x, d/2:)), Slice(x, :d/2),
    axis=-1)``."""
    concat = wiring.producer.get(value)
    if concat is None or concat.op_type != "Concat" or len(concat.input) != 2 or \
            wiring.only_consumer(value) is None:
        return None
    negate, first = (wiring.producer.get(name) for name in concat.input)
    second = wiring.producer.get(negate.input[0]) if negate is not None and negate.op_type == "Neg" else None
    axis = next((a.i for a in concat.attribute if a.name == "axis"), None)
    spans = [_last_axis_slice(wiring, node) for node in (first, second)]
    if second is None or None in spans or first.input[0] != second.input[0] or \
            wiring.only_consumer(negate.output[0]) is None:
        return None
    (start, half, first_axis), (middle, end, second_axis) = spans
    if start != 0 or middle != half or half < 1 or end < 2 * half or first_axis != second_axis or axis is None:
        return None  # a slice past the second half would leave x wider than the tables: no match there
    return first.input[0], [concat, negate, first, second], half, (first_axis, axis)


def _last_axis_slice(wiring, node):
    """(start, end, axis) of a Slice with constant starts, ends, one axis and step 1, else None."""
    if node is None or node.op_type != "Slice" or len(node.input) < 4:
        return None
    values = [wiring.constants.get(name) if name else np.array([1]) for name in (*node.input[1:4],
                                                                                 *(node.input[4:5] or [""]))]
    if any(value is None or np.size(value) != 1 for value in values) or int(np.ravel(values[3])[0]) != 1:
        return None
    start, end, axis = (int(np.ravel(value)[0]) for value in values[:3])
    return start, min(end, EVERYTHING), axis


RULE = Rule("rotary embedding", ("Add",), match)
