"""A vision transformer's learned values joined to its patch sequence: class tokens and position embeddings.

A ViT puts learned tokens before the patches (``torch.cat([self.cls_token.expand(n, -1, -1), x], dim=1)``) and adds
a learned table, one row per step (``x + self.pos_embedding``). Both are parameters used directly, not layers:
The torch reader sees a ``get_attr``, ONNX an ``Expand`` and a ``Concat`` or ``Add`` with a constant. Keras has no layer
for either, so the Keras writer uses wconv's own two (``converter.keras_layers``, registered as ``wconv>...``).
"""

from __future__ import annotations

import numpy as np

from .. import views
from ..errors import ShapeMismatch, Unsupported
from ..ir import Node
from .base import Convention, KerasSpec, OpDef, expect_dim
from .registry import register_keras, register_op, register_torch_module


def _sequence_shape(node_name: str, shape) -> tuple | None:
    if shape is not None and len(shape) != 3:
        raise ShapeMismatch(f"layer '{node_name}': takes a sequence (batch, steps, features), found shape {shape}")
    return shape


def _sequence_param(layer_name: str, what: str, array: np.ndarray) -> np.ndarray:
    """A torch parameter of shape (1, rows, features) (or (rows, features)) as (rows, features)."""
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 3 and array.shape[0] == 1:
        return array[0]
    if array.ndim != 2:
        raise Unsupported(f"layer '{layer_name}': a {what} of shape {array.shape}; only (1, steps, features) "
                          "converts")
    return array


class _LearnedRows(OpDef):
    """What the two ops share: one (rows, features) param, wconv's Keras layer and torch helper of the same class
    name (``helper``), whose config and constructor take the row count (``rows``)."""

    param, helper, rows = "", "", ""

    def node(self, name, inputs, outputs, array) -> Node:
        return Node(self.name, name, list(inputs), list(outputs), {self.param: np.asarray(array, np.float32)})

    def keras_weight_names(self, config):
        return [self.param]

    def from_keras(self, layer):
        params = self.params_from("keras", layer.weights, layer.name)
        expect_dim(layer.name, self.rows, layer.config.get(self.rows), params[self.param].shape[0])
        return [self.node(layer.name, layer.inputs, layer.outputs, params[self.param])]

    def to_keras(self, node, graph):
        array = node.params[self.param]
        return KerasSpec(self.helper, {self.rows: int(array.shape[0])}, [array])

    def torch_helper(self, node):
        return self.helper

    def torch_module(self, node, graph):
        rows, features = node.params[self.param].shape
        return f"{self.helper}({int(rows)}, {int(features)})"


class ClassTokens(_LearnedRows):
    name = "class_tokens"
    param, helper, rows = "tokens", "ClassTokens", "count"
    input_kind = views.VIEW_FREE  # rows of a value in IR order: right whatever its axes are
    summary = "Learned tokens put before each sequence: (n, t, f) -> (n, k + t, f) (a ViT's class token)."
    params = {"tokens": "k f"}
    conventions = {
        "keras": Convention(("ClassTokens (wconv)",), {"tokens": ("tokens", "k f")},
                            {"count": "count (= k)"}),
        "torch": Convention(("torch.cat([p.expand(n, -1, -1), x], 1)", "ClassTokens (wconv helper)"),
                            {"tokens": ("tokens", "k f")}, {"count": "a (1, k, f) parameter"}),
        "onnx": Convention(("Expand+Concat",), {"tokens": ("input", "k f")},
                           {"count": "a (1, k, f) constant expanded over the batch, first in a Concat on axis 1"}),
    }

    def output_shapes(self, node, input_shapes):
        shape = _sequence_shape(node.name, input_shapes[0])
        if shape is None:
            return [None]
        count, features = node.params["tokens"].shape
        expect_dim(node.name, "features", features, shape[2])
        return [(shape[0], None if shape[1] is None else shape[1] + count, shape[2])]

    def from_torch(self, layer):
        """wconv's helper, or ``torch.cat([p.expand(n, -1, -1), x], dim=1)`` (functional_layers.py)."""
        parts = [_sequence_param(layer.name, "class token", layer.weights[key])
                 for key in ("tokens", "tokens_1", "tokens_2") if key in layer.weights]  # first to last
        if len({part.shape[1] for part in parts}) != 1:
            raise ShapeMismatch(f"layer '{layer.name}': tokens of widths {[part.shape[1] for part in parts]}")
        return [self.node(layer.name, layer.inputs, layer.outputs, np.concatenate(parts))]

    def to_onnx(self, node, builder):
        tokens = node.params["tokens"]
        name = node.name
        batch = f"{name}/batch"
        builder.node("Shape", [node.inputs[0]], [f"{name}/shape"], f"{name}/shape")
        builder.node("Slice", [f"{name}/shape", builder.initializer(f"{name}.zero", np.array([0], np.int64)),
                               builder.initializer(f"{name}.one", np.array([1], np.int64))], [batch], batch)
        rest = builder.initializer(f"{name}.rows", np.array(tokens.shape, np.int64))
        builder.node("Concat", [batch, rest], [f"{name}/size"], f"{name}/size", axis=0)
        data = builder.initializer(f"{name}.tokens", tokens[None])
        builder.node("Expand", [data, f"{name}/size"], [f"{name}/expanded"], f"{name}/expanded")
        builder.node("Concat", [f"{name}/expanded", node.inputs[0]], node.outputs, name, axis=1)


class PositionEmbedding(_LearnedRows):
    name = "position_embedding"
    param, helper, rows = "table", "PositionEmbedding", "steps"
    input_kind = views.VIEW_FREE
    summary = "A learned table added to each sequence, one row per step: (n, t, f) + (t, f)."
    params = {"table": "t f"}
    conventions = {
        "keras": Convention(("PositionEmbedding (wconv)",), {"table": ("table", "t f")}, {"steps": "steps (= t)"}),
        "torch": Convention(("x + parameter", "PositionEmbedding (wconv helper)"), {"table": ("table", "t f")},
                            {"steps": "a (1, t, f) parameter"}),
        "onnx": Convention(("Add",), {"table": ("B", "t f")}, {"steps": "a (1, t, f) constant"}),
    }

    def output_shapes(self, node, input_shapes):
        shape = _sequence_shape(node.name, input_shapes[0])
        if shape is not None:
            steps, features = node.params["table"].shape
            expect_dim(node.name, "steps", steps, shape[1])
            expect_dim(node.name, "features", features, shape[2])
        return [shape]

    def from_torch(self, layer):
        """wconv's helper, or a (1, t, f) parameter added to a sequence (functional_layers.py)."""
        table = _sequence_param(layer.name, "position table", layer.weights["table"])
        shape = layer.input_shapes[0]
        if shape is None or len(shape) != 3 or tuple(shape[1:]) != table.shape:
            raise Unsupported(f"layer '{layer.name}': a parameter of shape {np.shape(layer.weights['table'])} added to "
                              f"a value of shape {shape}; only a (1, steps, features) table added to a sequence "
                              "converts")
        return [self.node(layer.name, layer.inputs, layer.outputs, table)]

    def to_onnx(self, node, builder):
        table = builder.initializer(f"{node.name}.table", node.params["table"][None])
        builder.node("Add", [node.inputs[0], table], node.outputs, node.name)

    def from_onnx_add(self, onnx_node, context, constant: str):
        """An ONNX Add of a (1, t, f) constant to a sequence of that shape; else None. A (batch, t, f) constant whose
        rows are all the same (torch.onnx's export at a fixed batch of BERT's token-type rows, expanded over the
        batch) is that one row."""
        value = next(name for name in onnx_node.input if name != constant)
        table, shape = np.asarray(context.initializers[constant]), context.shape(value)
        if shape is None or len(shape) != 3 or table.ndim != 3 or tuple(table.shape[1:]) != tuple(shape[1:]) or \
                not (table == table[:1]).all():
            return None
        context.used.add(constant)
        return [self.node(context.name(onnx_node), [value], list(onnx_node.output), table[0])]


CLASS_TOKENS = register_op(ClassTokens())
POSITION_EMBEDDING = register_op(PositionEmbedding())
register_keras("ClassTokens", CLASS_TOKENS)
register_keras("PositionEmbedding", POSITION_EMBEDDING)
register_torch_module("ClassTokens", CLASS_TOKENS.from_torch)
register_torch_module("PositionEmbedding", POSITION_EMBEDDING.from_torch)
