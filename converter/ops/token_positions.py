"""Positions counted from the token ids, padding skipped (RoBERTa, XLM-R, CamemBERT: fairseq's ``make_positions``):

    tokens = ids != padding
    positions = cumsum(tokens, axis=1) * tokens + padding

So the first token is at ``padding + 1``, each padding token at ``padding`` (the position table's padding row), and
left padding does not move the tokens after it. Input (batch, steps) int64 ids, output the same shape, int64: the
ids the position Embedding after it reads. ``padding``: the padding token's id.
"""

from __future__ import annotations

import numpy as np

from .. import views
from ..ir import Node
from .base import Convention, KerasSpec, OpDef, expect_dim
from .registry import register_keras, register_op


class TokenPositions(OpDef):
    name = "token_positions"
    input_kind = views.VIEW_FREE  # (batch, steps): the same in every framework
    integer_input = True  # a model input it reads is int64
    summary = "Positions counted from the ids, padding skipped: cumsum(ids != pad) * (ids != pad) + pad."
    conventions = {
        "keras": Convention(("TokenPositions (wconv)",), {}, {"padding": "padding"}),
        "torch": Convention(("ids.ne(pad).cumsum(1).mul(ids.ne(pad)).add(pad)",), {},
                            {"padding": "pad (transformers' create_position_ids_from_input_ids)"}),
        "onnx": Convention(("Not(Equal) + Cast + CumSum + Mul + Add",), {}, {"padding": "the Equal's and Add's constant"}),
    }

    def node(self, name, inputs, outputs, padding: int) -> Node:
        return Node(self.name, name, list(inputs), list(outputs), attrs={"padding": int(padding)})

    def output_shapes(self, node, input_shapes):
        shape = input_shapes[0]
        if shape is not None:
            expect_dim(node.name, "rank of the ids (batch, steps)", 2, len(shape))
        return [shape]

    def output_layouts(self, node, input_layouts, output_shapes):
        return [None if shape is None else views.default(views.FEATURES_LAST, len(shape)) for shape in output_shapes]

    def from_keras(self, layer):
        return [self.node(layer.name, layer.inputs, layer.outputs, layer.config["padding"])]

    def to_keras(self, node, graph):
        return KerasSpec("TokenPositions", {"padding": node.attrs["padding"]})

    def torch_module(self, node, graph):
        return None

    def torch_forward(self, node, graph, module, args):
        pad = int(node.attrs["padding"])
        return f"{args[0]}.ne({pad}).cumsum(1).mul({args[0]}.ne({pad})).add({pad})"

    def to_onnx(self, node, builder):
        name, ids = node.name, node.inputs[0]
        pad = builder.initializer(f"{name}.padding", np.array(node.attrs["padding"], np.int64))
        axis = builder.initializer(f"{name}.axis", np.array(1, np.int64))
        builder.node("Equal", [ids, pad], [f"{name}/padding"], f"{name}/padding")
        builder.node("Not", [f"{name}/padding"], [f"{name}/tokens"], f"{name}/tokens")
        builder.node("Cast", [f"{name}/tokens"], [f"{name}/counts"], f"{name}/counts", to=7)  # INT64
        builder.node("CumSum", [f"{name}/counts", axis], [f"{name}/counted"], f"{name}/counted")
        builder.node("Mul", [f"{name}/counted", f"{name}/counts"], [f"{name}/kept"], f"{name}/kept")
        builder.node("Add", [f"{name}/kept", pad], node.outputs, name)


TOKEN_POSITIONS = register_op(TokenPositions())
register_keras("TokenPositions", TOKEN_POSITIONS)
