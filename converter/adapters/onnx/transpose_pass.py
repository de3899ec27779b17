"""Transposes moved up through elementwise arithmetic with constants, toward the graph's inputs.

tf2onnx writes a Keras (NHWC) model's preprocessing on the NHWC input (Rescaling's Mul and Add, Normalization's Sub
and Mul by a mean and an inverse deviation shaped for the last axis) and transposes to NCHW only before the first
conv. Moving the Transpose above them, each constant transposed with it, leaves them on NCHW values, where a
constant over the channel axis reads as the BatchNorm or layer scale it is. Values keep their names.
"""

from __future__ import annotations

import numpy as np

from ...rewrite import Match, Rule
from .wiring import Wiring

ELEMENTWISE = {"Add", "Sub", "Mul", "Div"}


def match(wiring: Wiring, transpose) -> Match | None:
    """The Transpose ``transpose`` moved above the arithmetic with a constant that only it reads: a Transpose of
    the arithmetic's tensor input, then the arithmetic with the constant transposed alike."""
    from onnx import helper

    source = wiring.producer.get(transpose.input[0])
    if source is None or source.op_type not in ELEMENTWISE or wiring.only_consumer(transpose.input[0]) is not transpose:
        return None
    tensors = [value for value in source.input if value not in wiring.constants]
    fixed = [value for value in source.input if value in wiring.constants]
    perm = _perm(transpose)
    if len(tensors) != 1 or len(fixed) != 1 or perm is None or np.ndim(wiring.constants[fixed[0]]) > len(perm):
        return None
    value = np.asarray(wiring.constants[fixed[0]])
    moved = f"{fixed[0]}/transposed/{transpose.output[0]}"
    between = f"{tensors[0]}/transposed/{transpose.output[0]}"
    first = helper.make_node("Transpose", tensors, [between], name=transpose.name, perm=perm)
    second = helper.make_node(source.op_type, [between if name == tensors[0] else moved for name in source.input],
                              list(transpose.output), name=source.name)
    transposed = np.transpose(value.reshape((1,) * (len(perm) - value.ndim) + value.shape), perm)
    return Match([source, transpose], [first, second], {moved: transposed})


# A moved Transpose may meet more arithmetic above it: the rule runs again until it moves nothing.
RULE = Rule("Transpose above arithmetic with a constant", ("Transpose",), match, repeat=True)


def _perm(node):
    return next((list(a.ints) for a in node.attribute if a.name == "perm"), None)
