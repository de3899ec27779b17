"""Transpose (Keras Permute, torch permute, ONNX Transpose); the batch axis stays first.

Keras permutes its channels-last tensor and treats the result as channels-last again, so its
``dims`` translate to a canonical permutation through both layouts:
``canonical = to_channels_last ∘ keras ∘ to_channels_first`` as index compositions.
"""

from __future__ import annotations

import numpy as np

from ..codetext import literal
from ..errors import Unsupported
from ..ir import Node
from ..layouts import channels_first_order, channels_last_order
from .base import Convention, KerasSpec, OpDef
from .registry import register_keras, register_onnx, register_op, register_torch_function


def keras_to_canonical(dims, rank: int) -> list[int]:
    keras_perm = np.array([0, *dims])
    return [int(a) for a in np.array(channels_last_order(rank))[keras_perm][channels_first_order(rank)]]


def canonical_to_keras(perm, rank: int) -> list[int]:
    to_last, to_first = np.array(channels_last_order(rank)), np.array(channels_first_order(rank))
    keras_perm = np.argsort(to_last)[np.array(perm)][np.argsort(to_first)]
    return [int(a) for a in keras_perm]


class Transpose(OpDef):
    name = "transpose"
    summary = "Reorder the axes after the batch (canonical: a permutation of the channels-first tensor)."
    conventions = {
        "keras": Convention(("Permute",), {}, {"perm": "dims: 1-based, of the channels-last tensor"}),
        "torch": Convention(("permute",), {}, {"perm": "x.permute(0, ...)"}),
        "onnx": Convention(("Transpose",), {}, {"perm": "perm"}),
    }

    def output_shapes(self, node, input_shapes):
        shape = input_shapes[0]
        return [None if shape is None else tuple(shape[a] for a in node.attrs["perm"])]

    def node(self, name, inputs, outputs, perm) -> Node:
        perm = [int(a) for a in perm]
        if not perm or perm[0] != 0 or sorted(perm) != list(range(len(perm))):
            raise Unsupported(f"layer '{name}': permutation {perm} must keep the batch axis first")
        return Node(self.name, name, inputs, outputs, attrs={"perm": perm})

    def keras_weight_names(self, config):
        return []

    def from_keras(self, layer):
        rank = len(layer.input_shapes[0])
        return [self.node(layer.name, layer.inputs, layer.outputs, keras_to_canonical(layer.config["dims"], rank))]

    def to_keras(self, node, graph):
        keras_perm = canonical_to_keras(node.attrs["perm"], len(node.attrs["perm"]))
        if keras_perm[0] != 0:
            raise Unsupported(f"layer '{node.name}': moves the batch axis in Keras' layout")
        return KerasSpec("Permute", {"dims": keras_perm[1:]})

    def torch_module(self, node, graph):
        return None

    def torch_forward(self, node, graph, module, args):
        return f"{args[0]}.permute{literal(tuple(int(a) for a in node.attrs['perm']))}"

    def from_torch_function(self, call):
        dims = call.args[1:]
        dims = list(dims[0]) if len(dims) == 1 and isinstance(dims[0], (list, tuple)) else list(dims)
        if "dims" in call.kwargs:
            dims = list(call.kwargs["dims"])
        rank = len(dims)
        return [self.node(call.name, call.inputs[:1], call.outputs, [d % rank for d in dims])]

    def to_onnx(self, node, builder):
        builder.node("Transpose", node.inputs[:1], node.outputs, node.name, perm=node.attrs["perm"])

    def from_onnx(self, onnx_node, context):
        perm = context.attrs(onnx_node).get("perm")
        if perm is None:
            shape = context.shape(onnx_node.input[0])
            perm = list(reversed(range(len(shape))))
        return [self.node(context.name(onnx_node), [onnx_node.input[0]], list(onnx_node.output), perm)]


TRANSPOSE = register_op(Transpose())
register_keras("Permute", TRANSPOSE)
register_torch_function("permute", TRANSPOSE.from_torch_function)
register_torch_function("torch.permute", TRANSPOSE.from_torch_function)
register_onnx("Transpose", TRANSPOSE.from_onnx)
