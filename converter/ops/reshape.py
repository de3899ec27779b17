"""Reshape: torch's reshape of the IR tensor, whose element order every framework holds alike.

Its input is of kind VIEW_FREE (a relayout puts it in the order Keras holds it, where that differs), and so
is its output: a Keras Reshape and the IR's then mean the same thing. A reshape to (batch, features) is
read as a Flatten.
"""

from __future__ import annotations

import math

import numpy as np

from .. import views
from ..codetext import literal
from ..errors import ShapeMismatch, Unsupported
from ..ir import Node
from .base import Convention, KerasSpec, OpDef
from .flatten import FLATTEN
from .registry import register_keras, register_onnx, register_op, register_torch_function, register_torch_module


class Reshape(OpDef):
    name = "reshape"
    input_kind = views.VIEW_FREE
    summary = "Reshape every axis after the batch (torch's reshape of the IR tensor, held alike everywhere)."
    conventions = {
        "keras": Convention(("Reshape",), {}, {"shape": "target_shape (of a value Keras holds in IR order)"}),
        "torch": Convention(("reshape", "view", "Unflatten"), {}, {"shape": "(-1, *shape)"}),
        "onnx": Convention(("Reshape",), {}, {"shape": "shape input [0, *shape]"}),
    }

    def output_shapes(self, node, input_shapes):
        shape = input_shapes[0]
        target = tuple(node.attrs["shape"])
        if shape is not None and None not in shape[1:] and math.prod(shape[1:]) != math.prod(target):
            raise ShapeMismatch(f"layer '{node.name}': cannot reshape {tuple(shape[1:])} to {target}")
        return [(shape[0] if shape else None, *target)]

    def output_layouts(self, node, input_layouts, output_shapes):
        """Held alike everywhere; or, for a reshape that passes.fold_unit_relayouts gave its consumer's layout, that."""
        return [None if shape is None else node.attrs.get("layout") or views.default(views.VIEW_FREE, len(shape))
                for shape in output_shapes]

    def node(self, name, inputs, outputs, input_shape, target) -> Node:
        """A reshape node; a reshape to (batch, features) is a Flatten (whose Dense rows flatten_rows.py orders)."""
        target = [int(d) for d in target]
        if len(target) == 1 and input_shape is not None and len(input_shape) >= 3:
            return FLATTEN.node(name, inputs, outputs)
        if -1 in target:
            if input_shape is None or None in input_shape[1:]:
                raise Unsupported(f"layer '{name}': reshape with -1 needs the input shape")
            known = math.prod(d for d in target if d != -1)
            target[target.index(-1)] = math.prod(input_shape[1:]) // known
        return Node(self.name, name, inputs, outputs, attrs={"shape": target})

    def keras_weight_names(self, config):
        return []

    def from_keras(self, layer):
        shape = layer.input_shapes[0]
        if shape is None or None in shape[1:]:
            raise Unsupported(f"layer '{layer.name}' (Reshape): needs a fully known input shape")
        return [self.node(layer.name, layer.inputs, layer.outputs, shape, list(layer.config["target_shape"]))]

    def to_keras(self, node, graph):
        shape = views.shape_to((None, *node.attrs["shape"]), node.attrs.get("layout"), "keras")[1:]
        return KerasSpec("Reshape", {"target_shape": [int(d) for d in shape]})

    def torch_module(self, node, graph):
        return None

    def torch_forward(self, node, graph, module, args):
        return f"{args[0]}.reshape(-1, {', '.join(literal(int(d)) for d in node.attrs['shape'])})"

    def from_torch_function(self, call):
        sizes = call.args[1:] if call.function in ("reshape", "view") else call.args[1:2]
        sizes = list(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (list, tuple)) else list(sizes)
        if not sizes or not all(isinstance(d, int) for d in sizes) or sizes[0] != -1 or -1 in sizes[1:]:
            raise Unsupported(f"'{call.name}': {call.function}{tuple(sizes)}; only (-1, *fixed sizes) converts")
        return [self.node(call.name, call.inputs[:1], call.outputs, call.input_shapes[0], sizes[1:])]

    def from_torch(self, layer):
        module = layer.module
        shape = layer.input_shapes[0]
        if module.dim != 1 or shape is None or len(shape) != 2:
            raise Unsupported(f"layer '{layer.name}' (Unflatten): only dim=1 of a (batch, features) input converts")
        return [self.node(layer.name, layer.inputs, layer.outputs, shape, list(module.unflattened_size))]

    def to_onnx(self, node, builder):
        target = builder.initializer(f"{node.name}.shape", np.array([0, *node.attrs["shape"]], dtype=np.int64))
        builder.node("Reshape", [node.inputs[0], target], node.outputs, node.name)

    def from_onnx(self, onnx_node, context):
        target = [int(d) for d in context.weight(onnx_node, 1)]
        shape = context.shape(onnx_node.input[0])
        name = context.name(onnx_node)
        if context.attrs(onnx_node).get("allowzero", 0) and 0 in target:  # 0 is then a size, not "keep"
            raise Unsupported(f"Reshape '{name}' to {target} with allowzero=1: an axis of size 0")
        batch = (0, -1) + ((context.static_batch,) if context.static_batch else ())
        if target[0] not in batch:
            raise Unsupported(f"Reshape '{name}' to {target}: the batch axis must stay first (the target's first "
                              f"size is {target[0]}, not the batch)")
        rest = [shape[i + 1] if d == 0 and shape else d for i, d in enumerate(target[1:])]
        if target[0] == -1 and -1 in rest:
            raise Unsupported(f"Reshape '{name}' to {target}: two axes of unknown size")
        sample = shape[1:] if shape else None
        if sample and None not in sample and -1 not in rest and np.prod(rest) != np.prod(sample):
            raise Unsupported(f"Reshape '{name}' of {tuple(shape)} to {target}: moves values across the batch axis")
        return [self.node(name, [onnx_node.input[0]], list(onnx_node.output), shape, rest)]


RESHAPE = register_op(Reshape())
register_keras("Reshape", RESHAPE)
for _function in ("reshape", "view", "torch.reshape"):
    register_torch_function(_function, RESHAPE.from_torch_function)
register_torch_module("Unflatten", RESHAPE.from_torch)
register_onnx("Reshape", RESHAPE.from_onnx)
