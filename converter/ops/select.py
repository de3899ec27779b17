"""One step of a sequence, the step axis dropped: ``x[:, 0]`` (a ViT's class token read out for the head).

torch indexes (``operator.getitem`` with an int: ``x[:, i]`` or ``x[:, i, :]``), Keras 3 records
``ops.take(x, 0, axis=1)`` as an operation node and ``x[:, 0, :]`` as an ``ops.GetItem`` (keras-hub's BERT
pooler), ONNX gathers a scalar index on axis 1. Only a rank-3 value converts (to rank 2), in IR order everywhere.
"""

from __future__ import annotations

import numpy as np

from .. import views
from ..codetext import literal
from ..errors import ShapeMismatch, Unsupported
from ..ir import Node
from .base import Convention, KerasSpec, OpDef
from .registry import register_keras, register_op


GET_ITEM = "ops.GetItem"


class Select(OpDef):
    name = "select"
    input_kind = views.VIEW_FREE  # the step axis is axis 1 in every framework
    summary = "One index of axis 1 of a (batch, steps, features) value, that axis dropped."
    conventions = {
        "keras": Convention(("ops.take (Take)", "x[:, i] (GetItem)"), {}, {"index": "indices (a number), axis=1"}),
        "torch": Convention(("x[:, i]", "x[:, i, :]"), {}, {"index": "an int in the second place"}),
        "onnx": Convention(("Gather",), {}, {"index": "a scalar constant, axis=1"}),
    }

    def node(self, name, inputs, outputs, index: int, shape) -> Node:
        if shape is None or len(shape) != 3:
            raise Unsupported(f"layer '{name}': taking one step converts for a (batch, steps, features) value; "
                              f"found shape {shape}")
        steps = shape[1]
        if steps is not None and not -steps <= index < steps:
            raise ShapeMismatch(f"layer '{name}': step {index} of {steps}")
        index = index % steps if steps is not None else index
        if index < 0:
            raise Unsupported(f"layer '{name}': step {index} counted from the end of a sequence of free length")
        return Node(self.name, name, list(inputs), list(outputs), attrs={"index": int(index)})

    def output_shapes(self, node, input_shapes):
        shape = input_shapes[0]
        if shape is None:
            return [None]
        if shape[1] is not None and node.attrs["index"] >= shape[1]:
            raise ShapeMismatch(f"layer '{node.name}': step {node.attrs['index']} of {shape[1]}")
        return [(shape[0], shape[2])]

    def keras_weight_names(self, config):
        return []

    def from_keras(self, layer):
        if layer.class_name == GET_ITEM:
            key = layer.constants.get(1)  # (None, i, ...) for x[:, i, ...]; a number for x[i] (the batch axis)
            index = step_of(tuple(slice(None) if part is None else part for part in key)) \
                if isinstance(key, tuple) else None
            if index is None:
                raise Unsupported(f"layer '{layer.name}' ({GET_ITEM}): only x[:, i] and x[:, i, :] convert")
            return [self.node(layer.name, layer.inputs, layer.outputs, index, layer.input_shapes[0])]
        index = layer.call_options.get("indices", layer.constants.get(1))
        if layer.config.get("axis") != 1 or index is None or index != int(index):
            raise Unsupported(f"layer '{layer.name}' (ops.Take): only one number on axis 1 converts")
        return [self.node(layer.name, layer.inputs, layer.outputs, int(index), layer.input_shapes[0])]

    def to_keras(self, node, graph):
        return KerasSpec("ops.Take", {"axis": 1}, call_options={"indices": node.attrs["index"]})

    def torch_module(self, node, graph):
        return None

    def torch_forward(self, node, graph, module, args):
        return f"{args[0]}[:, {literal(node.attrs['index'])}]"

    def from_torch_index(self, call):
        """``x[:, i]`` or ``x[:, i, :]``; None for any other index."""
        step = step_of(call.args[1] if len(call.args) > 1 else None)
        if step is None:
            return None
        return [self.node(call.name, call.inputs[:1], call.outputs, step, call.input_shapes[0])]

    def to_onnx(self, node, builder):
        index = builder.initializer(f"{node.name}.index", np.array(node.attrs["index"], np.int64))
        builder.node("Gather", [node.inputs[0], index], node.outputs, node.name, axis=1)

    def from_onnx_gather(self, onnx_node, context):
        """A Gather of one constant index (a scalar) on axis 1; else None."""
        indices = onnx_node.input[1]
        if context.attrs(onnx_node).get("axis", 0) != 1 or indices not in context.initializers or \
                np.ndim(context.initializers[indices]) != 0:
            return None
        context.used.add(indices)
        index = int(context.initializers[indices])
        return [self.node(context.name(onnx_node), [onnx_node.input[0]], list(onnx_node.output), index,
                          context.shape(onnx_node.input[0]))]


def step_of(index) -> int | None:
    """``i`` for a torch index that takes one step of a (batch, steps, features) value, ``[:, i]`` or ``[:, i, :]``
    (the same values); else None."""
    everything = slice(None)
    if not (isinstance(index, tuple) and len(index) in (2, 3) and index[0] == everything
            and all(part == everything for part in index[2:])):
        return None
    return index[1] if isinstance(index[1], int) and not isinstance(index[1], bool) else None


SELECT = register_op(Select())
register_keras("ops.Take", SELECT)
register_keras(GET_ITEM, SELECT)
