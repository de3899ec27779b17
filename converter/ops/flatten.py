"""Flatten: (N, C, spatial...) -> (N, C*prod(spatial)), the features in the input's IR order.

torch and ONNX flatten in IR order. Keras flattens its own view (channels last): its Flatten reads as a
relayout to that view and a Flatten (``KerasFlatten``: the relayout is the reader's, as for any layer),
and a Flatten written to Keras gets a Permute first where Keras holds the input otherwise. Where Dense
layers follow, the permutation moves into their rows instead (``flatten_rows.py``).
"""

from __future__ import annotations

import math


from ..errors import Unsupported
from ..ir import Node
from .. import views
from .base import Convention, KerasReader, KerasSpec, OpDef
from .registry import register_keras, register_onnx, register_op, register_torch_function, register_torch_module


class Flatten(OpDef):
    name = "flatten"
    summary = "Flatten every axis after the batch, in the input's IR order."
    conventions = {
        "keras": Convention(("Flatten",), {}, {"order": "channels_last: (h, w, c)"}),
        "torch": Convention(("Flatten", "torch.flatten"), {}, {"order": "channels_first: (c, h, w)"}),
        "onnx": Convention(("Flatten",), {}, {"order": "channels_first: (c, h, w); axis=1"}),
    }
    notes = ("A Dense after a channels-last Flatten gets its kernel rows permuted from (h w c) to (c h w), "
             "so no transpose runs at inference.",)

    def output_shapes(self, node, input_shapes):
        shape = input_shapes[0]
        if shape is None:
            return [None]
        if len(shape) < 2:
            raise Unsupported(f"layer '{node.name}': flattening a rank-1 value (the batch axis alone) makes an axis "
                              "the other frameworks' flatten does not")
        rest = shape[1:]
        return [(shape[0], None if None in rest else math.prod(rest))]

    def node(self, name, inputs, outputs) -> Node:
        return Node(self.name, name, inputs, outputs)

    def to_keras(self, node, graph):
        order = _keras_order(graph, node)
        if views.moves_elements(order, graph.shape(node.inputs[0])):
            # Keras holds (h, w, c); this Flatten's consumers expect the IR's (c, h, w): Permute first.
            inverse = [order.index(axis) for axis in range(len(order))]
            return KerasSpec("Flatten", {}, pre=KerasSpec("Permute", {"dims": inverse[1:]}))
        return KerasSpec("Flatten", {})

    def torch_module(self, node, graph):
        return None

    def torch_forward(self, node, graph, module, args):
        return f"torch.flatten({args[0]}, 1)"

    def from_torch(self, layer):
        if layer.module.start_dim != 1 or layer.module.end_dim != -1:
            raise Unsupported(f"layer '{layer.name}' (Flatten): only start_dim=1, end_dim=-1 converts")
        return [self.node(layer.name, layer.inputs, layer.outputs)]

    def from_torch_function(self, call):
        start, end = call.argument("start_dim", 1, 0), call.argument("end_dim", 2, -1)
        shape = call.input_shapes[0]
        if shape is not None and start >= 2 and end in (-1, len(shape) - 1) and None not in shape[1:]:
            from .reshape import RESHAPE  # x.flatten(2): (n, c, h, w) -> (n, c, h * w), a reshape keeping the batch

            return [RESHAPE.node(call.name, call.inputs[:1], call.outputs, shape,
                                 [*shape[1:start], math.prod(shape[start:])])]
        if start != 1 or end != -1:
            raise Unsupported(f"'{call.name}': flatten(start_dim={start}, end_dim={end}); only start_dim=1 converts")
        return [self.node(call.name, call.inputs[:1], call.outputs)]

    def to_onnx(self, node, builder):
        builder.node("Flatten", node.inputs[:1], node.outputs, node.name, axis=1)

    def from_onnx(self, onnx_node, context):
        axis = context.attrs(onnx_node).get("axis", 1)
        shape = context.shape(onnx_node.input[0])
        axis = axis % len(shape) if shape is not None and axis < 0 else axis  # -3 of a rank-4 value is 1
        if axis != 1:
            raise Unsupported(f"Flatten '{context.name(onnx_node)}': axis={axis}; only axis=1 converts")
        return [self.node(context.name(onnx_node), [onnx_node.input[0]], list(onnx_node.output))]


def _keras_order(graph, node) -> list[int]:
    """Axis k of Keras' view of the flattened value is IR axis order[k]."""
    layout = graph.layout(node.inputs[0])
    return views.order(layout, "keras") if layout else list(range(len(graph.shape(node.inputs[0]))))


def from_onnx_squeeze(onnx_node, context):
    """Squeeze of every axis after the channels, each of size 1 (tf2onnx after GlobalAveragePool): a Flatten."""
    name, shape = context.name(onnx_node), context.shape(onnx_node.input[0])
    axes = context.axes(onnx_node)
    rank = len(shape) if shape else 0
    squeezed = sorted(a % rank for a in axes) if axes is not None and rank else None
    if rank < 3 or squeezed != list(range(2, rank)) or any(shape[a] != 1 for a in squeezed):
        raise Unsupported(f"Squeeze '{name}' of axes {axes} of a {tuple(shape) if shape else 'rank-unknown'} "
                          "value; only every axis after the channels, each of size 1, converts")
    return [FLATTEN.node(name, [onnx_node.input[0]], list(onnx_node.output))]


class KerasFlatten(KerasReader):
    """Keras' Flatten takes the features as Keras holds them: its reader's relayout (to a pattern every framework
    holds alike) puts them in that order before the IR Flatten."""

    input_kind = views.VIEW_FREE

    def keras_weight_names(self, config):
        return []

    def from_keras(self, layer):
        return [FLATTEN.node(layer.name, layer.inputs, layer.outputs)]


FLATTEN = register_op(Flatten())
register_keras("Flatten", KerasFlatten())
register_torch_module("Flatten", FLATTEN.from_torch)
register_torch_function("torch.flatten", FLATTEN.from_torch_function)
register_torch_function("flatten", FLATTEN.from_torch_function)
register_onnx("Flatten", FLATTEN.from_onnx)
register_onnx("Squeeze", from_onnx_squeeze)
