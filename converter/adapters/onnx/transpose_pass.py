"""Transposes moved up through elementwise arithmetic with constants, toward the graph's inputs.

tf2onnx writes a Keras (NHWC) model's preprocessing on the NHWC input (Rescaling's Mul and Add, Normalization's Sub
and Mul by a mean and an inverse deviation shaped for the last axis) and transposes to NCHW only before the first
conv. Moving the Transpose above them, each constant transposed with it, leaves them on NCHW values, where a
constant over the channel axis reads as the BatchNorm or layer scale it is. Values keep their names.
"""

from __future__ import annotations

import numpy as np

from .wiring import Wiring

ELEMENTWISE = {"Add", "Sub", "Mul", "Div"}


def hoist(nodes: list, constants: dict, graph_outputs: set) -> tuple[list, set]:
    """(the nodes with each such Transpose moved above the arithmetic, the constants replaced by transposed ones)."""
    consumed = set()
    while (found := _next_move(nodes, constants, graph_outputs)) is not None:
        nodes, replaced = _move(nodes, constants, *found)
        consumed.add(replaced)
    return nodes, consumed


def _next_move(nodes, constants, graph_outputs):
    """(transpose, the arithmetic node feeding it, its tensor input, its constant input), or None."""
    wiring = Wiring(nodes, constants, graph_outputs)
    for node in nodes:
        if node.op_type != "Transpose":
            continue
        source = wiring.producer.get(node.input[0])
        if source is None or source.op_type not in ELEMENTWISE or wiring.only_consumer(node.input[0]) is not node:
            continue
        tensors = [value for value in source.input if value not in constants]
        fixed = [value for value in source.input if value in constants]
        perm = _perm(node)
        if len(tensors) == 1 and len(fixed) == 1 and perm is not None and np.ndim(constants[fixed[0]]) <= len(perm):
            return node, source, tensors[0], fixed[0]
    return None


def _move(nodes, constants, transpose, source, tensor: str, constant: str):
    from onnx import helper

    perm = _perm(transpose)
    value = np.asarray(constants[constant])
    moved = f"{constant}/transposed/{transpose.output[0]}"
    constants[moved] = np.transpose(value.reshape((1,) * (len(perm) - value.ndim) + value.shape), perm)
    between = f"{tensor}/transposed/{transpose.output[0]}"
    first = helper.make_node("Transpose", [tensor], [between], name=transpose.name, perm=perm)
    inputs = [between if name == tensor else moved for name in source.input]
    second = helper.make_node(source.op_type, inputs, list(transpose.output), name=source.name)
    swapped = {id(source): first, id(transpose): second}
    return [swapped.get(id(node), node) for node in nodes], constant


def _perm(node):
    return next((list(a.ints) for a in node.attribute if a.name == "perm"), None)
