"""Embedding: each integer token picks a row of a (vocabulary, features) table; ONNX spells it Gather.

Token inputs (N, T) are never transposed; the output is a sequence (N, T, F). Keras' ``mask_zero``
and torch's ``padding_idx`` differ: ``padding_idx`` only keeps that row out of training (the forward
pass looks it up like any other), so it is kept where torch is written and dropped elsewhere, said in
a note; ``mask_zero=True`` makes the layers after it skip token-0 steps, which wconv does not convert,
so it is refused.
"""

from __future__ import annotations

from .. import views
from ..codetext import literal
from ..errors import Unsupported
from ..ir import Node
from .base import Convention, KerasReader, KerasSpec, OpDef, expect_dim
from .registry import register_keras, register_onnx, register_op, register_torch_module


class Embedding(OpDef):
    name = "embedding"
    summary = "Look up each integer token's row of the table: (N, T) ids -> (N, T, F)."
    params = {"table": "v f"}
    integer_input = True
    conventions = {
        "keras": Convention(("Embedding", "ReversibleEmbedding (called forward)"),
                            {"table": ("embeddings", "v f")},
                            {"input_dim": "input_dim (= v)", "output_dim": "output_dim (= f)", "mask": "mask_zero=False"}),
        "torch": Convention(("Embedding",), {"table": ("weight", "v f")},
                            {"input_dim": "num_embeddings (= v)", "output_dim": "embedding_dim (= f)",
                             "padding_idx": "padding_idx=None (training only)"}),
        "onnx": Convention(("Gather",), {"table": ("data", "v f")}, {"axis": "axis=0, indices int64"}),
    }
    notes = ("Keras mask_zero=True is refused: it masks token-0 steps in the layers after it.",
             "torch padding_idx affects training only; it is kept when writing torch and dropped otherwise.")

    def node(self, name, inputs, outputs, table, padding_idx=None) -> Node:
        attrs = {} if padding_idx is None else {"padding_idx": int(padding_idx)}
        return Node(self.name, name, list(inputs[:1]), list(outputs), {"table": table}, attrs)

    def output_shapes(self, node, input_shapes):
        shape = input_shapes[0]
        return [None if shape is None else (*shape, int(node.params["table"].shape[1]))]

    def output_layouts(self, node, input_layouts, output_shapes):
        return [None if shape is None else views.default(views.FEATURES_LAST, len(shape)) for shape in output_shapes]

    # -- Keras ------------------------------------------------------------------
    def keras_weight_names(self, config):
        return ["embeddings"]

    def keras_blocker(self, config):
        if config.get("mask_zero"):
            return ("mask_zero=True makes the layers after it skip token-0 steps, and wconv does not convert masks; "
                    "save the model with mask_zero=False if no layer after it uses the mask")
        return None

    def from_keras(self, layer):
        params = self.params_from("keras", layer.weights, layer.name)
        expect_dim(layer.name, "input_dim", layer.config.get("input_dim"), params["table"].shape[0])
        expect_dim(layer.name, "output_dim", layer.config.get("output_dim"), params["table"].shape[1])
        return [self.node(layer.name, layer.inputs, layer.outputs, params["table"])]

    def to_keras(self, node, graph):
        vocabulary, features = node.params["table"].shape
        return KerasSpec("Embedding", {"input_dim": int(vocabulary), "output_dim": int(features)},
                         [self.params_to("keras", node)["embeddings"]])

    # -- torch ------------------------------------------------------------------
    def torch_module(self, node, graph):
        vocabulary, features = node.params["table"].shape
        padding = node.attrs.get("padding_idx")
        extra = "" if padding is None else f", padding_idx={literal(int(padding))}"
        return f"nn.Embedding({int(vocabulary)}, {int(features)}{extra})"

    def from_torch(self, layer):
        module = layer.module
        if module.max_norm is not None:
            raise Unsupported(f"layer '{layer.name}' (Embedding): max_norm={module.max_norm} rescales rows while "
                              "looking them up, which the other frameworks do not")
        params = self.params_from("torch", layer.weights, layer.name)
        return [self.node(layer.name, layer.inputs, layer.outputs, params["table"], module.padding_idx)]

    # -- ONNX -------------------------------------------------------------------
    def to_onnx(self, node, builder):
        table = builder.initializer(f"{node.name}.weight", node.params["table"])
        builder.node("Gather", [table, node.inputs[0]], node.outputs, node.name, axis=0)

    def from_onnx(self, onnx_node, context):
        """A lookup in a constant table; a scalar index on axis 1 of a value is one step of it (select.py)."""
        from .select import SELECT

        name = context.name(onnx_node)
        axis = context.attrs(onnx_node).get("axis", 0)
        if onnx_node.input[0] not in context.initializers and (step := SELECT.from_onnx_gather(onnx_node, context)):
            return step
        if axis != 0 or onnx_node.input[0] not in context.initializers:
            raise Unsupported(f"Gather '{name}': only a lookup in a constant table (data an initializer, axis=0) "
                              "converts")
        table = context.weight(onnx_node, 0)
        if table.ndim != 2:
            raise Unsupported(f"Gather '{name}': a table of shape {table.shape}; only (vocabulary, features) converts")
        return [self.node(name, [onnx_node.input[1]], onnx_node.output, table)]


class ReversibleEmbedding(KerasReader):
    """Keras' (and keras-hub's) ``ReversibleEmbedding``: an Embedding whose table, transposed, can also map features
    back to logits (``reverse=True``, a language model's head). Called forward, as a model's layer is, it is an
    Embedding. Its own reverse table (``tie_weights=False``) is then a weight the model never reads: refused."""

    def keras_weight_names(self, config):
        return ["embeddings"]

    def keras_blocker(self, config):
        problems = [f"{key}={config[key]!r}" for key, fine in (("tie_weights", True), ("quantization_config", None))
                    if config.get(key, fine) != fine]
        return (f"{', '.join(problems)} not converted" if problems else None) or EMBEDDING.keras_blocker(config)

    def from_keras(self, layer):
        return EMBEDDING.from_keras(layer)


EMBEDDING = register_op(Embedding())
register_keras("Embedding", EMBEDDING)
register_keras("ReversibleEmbedding", ReversibleEmbedding())
register_torch_module("Embedding", EMBEDDING.from_torch)
register_onnx("Gather", EMBEDDING.from_onnx)
