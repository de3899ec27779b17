"""Flatten: (N, C, spatial...) -> (N, C*prod(spatial)).

``order`` says in which order the features come out: 'channels_first' (the IR's: c, h, w) or
'channels_last' (Keras' view of the input: h, w, c); the two differ only where Keras holds the input
otherwise than the IR (``views.py``). Keras' reader and writer rewrite the following Dense kernels'
rows instead where they can (``adapters/keras/flatten_order.py``), so 'channels_last' stays only
where the flattened values are used otherwise, and then a transpose is written before the Flatten.
"""

from __future__ import annotations

import math


from ..errors import Unsupported
from ..ir import Node
from .. import views
from .base import Convention, KerasSpec, OpDef
from .registry import register_keras, register_onnx, register_op, register_torch_function, register_torch_module


class Flatten(OpDef):
    name = "flatten"
    summary = "Flatten every axis after the batch; feature order given by 'order'."
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

    def node(self, name, inputs, outputs, order) -> Node:
        return Node(self.name, name, inputs, outputs, attrs={"order": order})

    def keras_weight_names(self, config):
        return []

    def from_keras(self, layer):
        return [self.node(layer.name, layer.inputs, layer.outputs, "channels_last")]

    def to_keras(self, node, graph):
        order = _keras_order(graph, node)
        if node.attrs["order"] == "channels_first" and order != sorted(order):
            # Keras holds (h, w, c); this Flatten's consumers expect the IR's (c, h, w): Permute first.
            inverse = [order.index(axis) for axis in range(len(order))]
            return KerasSpec("Flatten", {}, pre=KerasSpec("Permute", {"dims": inverse[1:]}))
        return KerasSpec("Flatten", {})

    def torch_module(self, node, graph):
        return None

    def torch_forward(self, node, graph, module, args):
        order = _keras_order(graph, node)
        if node.attrs["order"] == "channels_last" and order != sorted(order):
            return f"torch.flatten({args[0]}.permute{tuple(order)}, 1)"
        return f"torch.flatten({args[0]}, 1)"

    def from_torch(self, layer):
        if layer.module.start_dim != 1 or layer.module.end_dim != -1:
            raise Unsupported(f"layer '{layer.name}' (Flatten): only start_dim=1, end_dim=-1 converts")
        return [self.node(layer.name, layer.inputs, layer.outputs, "channels_first")]

    def from_torch_function(self, call):
        start, end = call.argument("start_dim", 1, 0), call.argument("end_dim", 2, -1)
        if start != 1 or end != -1:
            raise Unsupported(f"'{call.name}': flatten(start_dim={start}, end_dim={end}); only start_dim=1 converts")
        return [self.node(call.name, call.inputs[:1], call.outputs, "channels_first")]

    def to_onnx(self, node, builder):
        source = node.inputs[0]
        order = _keras_order(builder.graph, node)
        if node.attrs["order"] == "channels_last" and order != sorted(order):
            builder.node("Transpose", [source], [f"{node.name}/channels_last"], f"{node.name}/transpose", perm=order)
            source = f"{node.name}/channels_last"
        builder.node("Flatten", [source], node.outputs, node.name, axis=1)

    def from_onnx(self, onnx_node, context):
        axis = context.attrs(onnx_node).get("axis", 1)
        if axis != 1:
            raise Unsupported(f"Flatten '{context.name(onnx_node)}': axis={axis}; only axis=1 converts")
        return [self.node(context.name(onnx_node), [onnx_node.input[0]], list(onnx_node.output), "channels_first")]


def _keras_order(graph, node) -> list[int]:
    """Axis k of Keras' view of the flattened value is IR axis order[k]."""
    layout = graph.layout(node.inputs[0])
    return views.order(layout, "keras") if layout else list(range(len(graph.shape(node.inputs[0]))))


FLATTEN = register_op(Flatten())
register_keras("Flatten", FLATTEN)
register_torch_module("Flatten", FLATTEN.from_torch)
register_torch_function("torch.flatten", FLATTEN.from_torch_function)
register_torch_function("flatten", FLATTEN.from_torch_function)
register_onnx("Flatten", FLATTEN.from_onnx)
