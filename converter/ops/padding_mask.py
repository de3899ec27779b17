"""A padding mask: transformers' ``attention_mask`` (batch, key steps), 1 for a token and 0 for padding, as the
(batch, query steps, key steps) boolean mask the attention op takes: True where a query step may attend.

Every framework spells it as "not zero, then the same row for each query step": torch
``mask.ne(0).unsqueeze(1).expand(-1, T, -1)``; Keras 3 the operation nodes ``ops.not_equal(mask, 0)``,
``ops.expand_dims(..., 1)``, ``ops.repeat(..., T, axis=1)``; ONNX ``Not(Equal(mask, 0))``, ``Unsqueeze`` and
``Expand``. The input is int64, as transformers' tokenizers give it. ``steps``: the query steps T.
"""

from __future__ import annotations

import numpy as np

from .. import views
from ..ir import Node
from .base import Convention, KerasSpec, OpDef, expect_dim
from .registry import register_keras, register_op

KERAS_CHAIN = "ops.NotEqual+ExpandDims+Repeat"  # the three Keras nodes, merged into one entry (keras/chains.py)


class PaddingMask(OpDef):
    name = "padding_mask"
    input_kind = views.VIEW_FREE  # (batch, steps): the same in every framework
    integer_input = True  # a model input it reads is int64
    summary = "(batch, key steps) != 0, repeated for each query step: the attention op's boolean mask."
    conventions = {
        "keras": Convention(("ops.not_equal + ops.expand_dims + ops.repeat",), {}, {"steps": "repeats (axis 1)"}),
        "torch": Convention(("mask.ne(0).unsqueeze(1).expand(-1, T, -1)",), {}, {"steps": "T"}),
        "onnx": Convention(("Not(Equal(mask, 0)) + Unsqueeze + Expand",), {}, {"steps": "Expand's shape [1, T, 1]"}),
    }

    def node(self, name, inputs, outputs, steps: int) -> Node:
        return Node(self.name, name, list(inputs), list(outputs), attrs={"steps": int(steps)})

    def output_shapes(self, node, input_shapes):
        shape = input_shapes[0]
        if shape is not None:
            expect_dim(node.name, "rank of the mask (batch, key steps)", 2, len(shape))
        return [None if shape is None else (shape[0], node.attrs["steps"], shape[1])]

    def output_layouts(self, node, input_layouts, output_shapes):
        # held alike everywhere (no framework moves a mask's axes), as Keras' attention_mask input is
        return [None if shape is None else views.default(views.FEATURES_LAST, len(shape)) for shape in output_shapes]

    def from_keras(self, layer):
        return [self.node(layer.name, layer.inputs, layer.outputs, layer.config["steps"])]

    def to_keras(self, node, graph):
        return KerasSpec("ops.ExpandDims", {"axis": 1}, pre=KerasSpec("ops.NotEqual", {}, call_options={"x2": 0}),
                         post=KerasSpec("ops.Repeat", {"repeats": node.attrs["steps"], "axis": 1}))

    def torch_module(self, node, graph):
        return None

    def torch_forward(self, node, graph, module, args):
        return f"{args[0]}.ne(0).unsqueeze(1).expand(-1, {int(node.attrs['steps'])}, -1)"

    def to_onnx(self, node, builder):
        name = node.name
        zero = builder.initializer(f"{name}.zero", np.array(0, np.int64))
        builder.node("Equal", [node.inputs[0], zero], [f"{name}/padding"], f"{name}/padding")
        builder.node("Not", [f"{name}/padding"], [f"{name}/tokens"], f"{name}/tokens")
        axis = builder.initializer(f"{name}.axis", np.array([1], np.int64))
        builder.node("Unsqueeze", [f"{name}/tokens", axis], [f"{name}/row"], f"{name}/row")
        shape = builder.initializer(f"{name}.shape", np.array([1, node.attrs["steps"], 1], np.int64))
        builder.node("Expand", [f"{name}/row", shape], node.outputs, name)


PADDING_MASK = register_op(PaddingMask())
register_keras(KERAS_CHAIN, PADDING_MASK)
