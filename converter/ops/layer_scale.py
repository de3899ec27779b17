"""Layer scale: x times a learned value per channel (ConvNeXt's residual branches).

Keras ships it as ``keras.applications``' ``LayerScale`` (a ``gamma`` over the last, channel axis), which
``load_model`` reads with no custom objects. torch has no such layer: model libraries multiply by a parameter
(``self.layer_scale * x`` with a (C, 1, 1) parameter, ``x.mul(self.gamma.reshape(1, -1, 1, 1))``), and the
generated module carries wconv's ``LayerScale`` helper. ONNX multiplies by a (C, 1, 1) constant.
"""

from __future__ import annotations

import numpy as np

from ..errors import Unsupported
from ..ir import Node
from .. import views
from .base import Convention, KerasSpec, OpDef, expect_dim
from .registry import register_keras, register_op, register_torch_module


class LayerScale(OpDef):
    name = "layer_scale"
    input_kind = views.CHANNELS_FIRST
    summary = "x times a learned value per channel (canonical: axis 1)."
    params = {"gamma": "c"}
    conventions = {
        "keras": Convention(("LayerScale (keras.applications)",), {"gamma": ("gamma", "c")},
                            {"channels": "projection_dim"}),
        "torch": Convention(("x * parameter", "LayerScale (wconv helper)"), {"gamma": ("weight", "c")},
                            {"channels": "a (C, 1, ...) parameter, or one reshaped so"}),
        "onnx": Convention(("Mul",), {"gamma": ("B", "c")}, {"channels": "a (C, 1, ...) constant"}),
    }

    def node(self, name, inputs, outputs, gamma) -> Node:
        return Node(self.name, name, list(inputs), list(outputs), {"gamma": np.asarray(gamma, dtype=np.float32)})

    def output_shapes(self, node, input_shapes):
        shape = input_shapes[0]
        if shape is not None:
            expect_dim(node.name, "channels", node.params["gamma"].shape[0], shape[1])
        return [shape]

    def keras_weight_names(self, config):
        return ["gamma"]

    def from_keras(self, layer):
        params = self.params_from("keras", layer.weights, layer.name)
        expect_dim(layer.name, "projection_dim", layer.config.get("projection_dim"), params["gamma"].shape[0])
        return [Node(self.name, layer.name, layer.inputs, layer.outputs, params)]

    def to_keras(self, node, graph):
        gamma = node.params["gamma"]
        return KerasSpec("LayerScale", {"init_values": 1.0, "projection_dim": int(gamma.shape[0])}, [gamma])

    def torch_helper(self, node):
        return "LayerScale"

    def torch_module(self, node, graph):
        return f"LayerScale({int(node.params['gamma'].shape[0])})"

    def from_torch(self, layer):
        """wconv's helper, or a parameter multiplying a value (functional_layers.py): it must broadcast over the
        channel axis alone, (C, 1, ...) against the sample or (1, C, 1, ...) against the batch."""
        weight = np.asarray(layer.weights["weight"])
        shape = layer.input_shapes[0]
        helper = layer.module is not None  # wconv's LayerScale, which reshapes its (C,) weight onto axis 1 itself
        channels = channel_vector(weight.reshape(-1, *[1] * (len(shape) - 2)) if helper and shape else weight, shape)
        if channels is None:
            raise Unsupported(f"layer '{layer.name}': a parameter of shape {weight.shape} multiplying a value of "
                              f"shape {shape} scales more than the channel axis; not converted")
        return [self.node(layer.name, layer.inputs, layer.outputs, channels)]

    def to_onnx(self, node, builder):
        rank = len(builder.graph.shape(node.inputs[0]))
        gamma = node.params["gamma"].reshape(-1, *[1] * (rank - 2))
        builder.node("Mul", [node.inputs[0], builder.initializer(f"{node.name}.gamma", gamma)], node.outputs,
                     node.name)

    def from_onnx_mul(self, onnx_node, context, constant: str):
        """An ONNX Mul of a value by a constant that broadcasts over channels only; else None."""
        value = next(name for name in onnx_node.input if name != constant)
        channels = channel_vector(context.initializers[constant], context.shape(value))
        if channels is None:
            return None
        context.used.add(constant)
        return [self.node(context.name(onnx_node), [value], list(onnx_node.output), channels)]


def channel_vector(weight: np.ndarray, shape):
    """``weight`` as a (C,) vector when, multiplied with a value of ``shape`` (batch first), it scales the channel
    axis (1) alone; else None."""
    if shape is None or len(shape) < 2 or shape[1] is None:
        return None
    rank, channels = len(shape), shape[1]
    wanted = [(channels, *[1] * (rank - 2)), (1, channels, *[1] * (rank - 2))]
    if rank == 2:
        wanted.append((channels,))
    return weight.reshape(channels) if tuple(weight.shape) in wanted else None


LAYER_SCALE = register_op(LayerScale())
register_keras("LayerScale", LAYER_SCALE)
register_torch_module("LayerScale", LAYER_SCALE.from_torch)
