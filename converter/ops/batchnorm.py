"""BatchNormalization at inference: epsilon 1e-3 (Keras) vs 1e-5 (torch, ONNX); momentum 0.99 vs 0.1."""

from __future__ import annotations

import numpy as np

from ..codetext import literal
from ..errors import ShapeMismatch, Unsupported
from ..ir import Node
from .base import KerasReader, Convention, KerasSpec, OpDef, expect_dim
from .registry import register_keras, register_onnx, register_op, register_torch_module
from .. import views


AFFINE = frozenset({"scale", "bias"})  # Keras scale/center=False, torch affine=False leave them out


class BatchNorm(OpDef):
    name = "batchnorm"
    input_kind = views.CHANNELS_FIRST
    summary = "y = (x - mean) / sqrt(var + epsilon) * scale + bias over the channel axis (axis 1)."
    params = {"scale": "c", "bias": "c", "mean": "c", "var": "c"}
    conventions = {
        "keras": Convention(
            ("BatchNormalization",),
            {"scale": ("gamma", "c"), "bias": ("beta", "c"), "mean": ("moving_mean", "c"),
             "var": ("moving_variance", "c")},
            {"epsilon": "epsilon=1e-3", "momentum": "momentum=0.99 (= 1 - torch momentum)",
             "scale/bias": "scale=False / center=False drop gamma / beta"},
        ),
        "torch": Convention(
            ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d"),
            {"scale": ("weight", "c"), "bias": ("bias", "c"), "mean": ("running_mean", "c"),
             "var": ("running_var", "c")},
            {"epsilon": "eps=1e-5", "momentum": "momentum=0.1", "scale/bias": "affine=False drops both"},
        ),
        "onnx": Convention(
            ("BatchNormalization",),
            {"scale": ("scale", "c"), "bias": ("B", "c"), "mean": ("input_mean", "c"), "var": ("input_var", "c")},
            {"epsilon": "epsilon=1e-5", "momentum": "momentum=0.9 (training only)"},
        ),
    }
    notes = ("The IR keeps torch's momentum (1 - Keras momentum); it does not affect inference. "
             "A missing gamma/beta is stored as ones/zeros, which computes the same.",)

    def output_shapes(self, node, input_shapes):
        shape = input_shapes[0]
        if shape is not None:
            expect_dim(node.name, "channels (axis 1)", len(node.params["mean"]), shape[1])
        return [shape]

    def node(self, name, inputs, outputs, params, epsilon, momentum) -> Node:
        channels = len(params["mean"])
        params.setdefault("scale", np.ones(channels, params["mean"].dtype))
        params.setdefault("bias", np.zeros(channels, params["mean"].dtype))
        return Node(self.name, name, inputs, outputs, params, {"epsilon": float(epsilon), "momentum": float(momentum)})

    # -- Keras ------------------------------------------------------------------------
    def keras_weight_names(self, config):
        names = ["gamma"] if config.get("scale", True) else []
        names += ["beta"] if config.get("center", True) else []
        return names + ["moving_mean", "moving_variance"]

    def from_keras(self, layer):
        layout = layer.input_layouts[0] if layer.input_layouts else None
        axis = layer.config.get("axis", -1)
        axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
        if not isinstance(axis, int) or layout is None or views.axis_from(axis, layout, "keras") != 1:
            raise Unsupported(f"layer '{layer.name}' (BatchNormalization): axis={axis} is not the channel axis")
        params = self.params_from("keras", layer.weights, layer.name, optional=AFFINE)
        return [self.node(layer.name, layer.inputs, layer.outputs, params, layer.config.get("epsilon", 1e-3),
                          1.0 - layer.config.get("momentum", 0.99))]

    def to_keras(self, node, graph):
        named = self.params_to("keras", node)
        config = {"axis": -1, "epsilon": node.attrs["epsilon"], "momentum": 1.0 - node.attrs["momentum"]}
        return KerasSpec("BatchNormalization", config, [named[n] for n in self.keras_weight_names(config)])

    # -- torch ------------------------------------------------------------------------
    def torch_module(self, node, graph):
        rank = len(graph.shape(node.inputs[0]))
        dims = {2: 1, 3: 1, 4: 2, 5: 3}[rank]
        channels = len(node.params["mean"])
        return f"nn.BatchNorm{dims}d({channels}, eps={literal(float(node.attrs['epsilon']))}, momentum={literal(float(node.attrs['momentum']))})"

    def torch_buffers(self, node):
        return {"num_batches_tracked": np.array(0, dtype=np.int64)}

    def from_torch(self, layer):
        module = layer.module
        if not module.track_running_stats:
            raise Unsupported(f"layer '{layer.name}' ({layer.class_name}): track_running_stats=False normalizes "
                              "with batch statistics at inference; no equivalent")
        weights = {k: v for k, v in layer.weights.items() if k != "num_batches_tracked"}
        params = self.params_from("torch", weights, layer.name, optional=AFFINE)
        momentum = module.momentum if module.momentum is not None else 0.1
        return [self.node(layer.name, layer.inputs, layer.outputs, params, module.eps, momentum)]

    # -- ONNX -------------------------------------------------------------------------
    def to_onnx(self, node, builder):
        named = self.params_to("onnx", node)
        inputs = [node.inputs[0]] + [builder.initializer(f"{node.name}.{key}", named[key])
                                     for key in ("scale", "B", "input_mean", "input_var")]
        builder.node("BatchNormalization", inputs, node.outputs, node.name, epsilon=node.attrs["epsilon"],
                     momentum=1.0 - node.attrs["momentum"])

    def from_onnx(self, onnx_node, context):
        attrs = context.attrs(onnx_node)
        if attrs.get("training_mode", 0):
            raise Unsupported(f"BatchNormalization '{context.name(onnx_node)}': training_mode=1 is not supported")
        names = ("scale", "B", "input_mean", "input_var")
        named = {key: context.weight(onnx_node, i + 1) for i, key in enumerate(names)}
        params = self.params_from("onnx", named, context.name(onnx_node))
        return [self.node(context.name(onnx_node), [onnx_node.input[0]], list(onnx_node.output)[:1], params,
                          attrs.get("epsilon", 1e-5), 1.0 - attrs.get("momentum", 0.9))]


class KerasNormalization(KerasReader):
    """Keras ``Normalization``: (x - mean) / max(sqrt(var), 1e-7), read as a BatchNorm with epsilon 0.

    Clamping the variance at 1e-14 reproduces Keras' max(sqrt(var), 1e-7) exactly.
    """

    input_kind = views.CHANNELS_FIRST

    @staticmethod
    def keras_weight_names(config):
        return [] if config.get("mean") is not None else ["mean", "variance", "count"]

    @staticmethod
    def from_keras(layer):
        config = layer.config
        if config.get("invert"):
            raise Unsupported(f"layer '{layer.name}' (Normalization): invert=True is not supported")
        channels = _channels(layer)
        mean = config["mean"] if config.get("mean") is not None else layer.weights["mean"]
        variance = config["variance"] if config.get("variance") is not None else layer.weights["variance"]
        mean, variance = _per_channel(layer, "mean", mean, channels), _per_channel(layer, "variance", variance, channels)
        params = {"mean": mean, "var": np.maximum(variance, np.float32(1e-14))}
        return [BATCHNORM.node(layer.name, layer.inputs, layer.outputs, params, 0.0, 0.1)]


class KerasRescaling(KerasReader):
    """Keras ``Rescaling``: x * scale + offset, read as a BatchNorm with mean 0, variance 1, epsilon 0."""

    input_kind = views.CHANNELS_FIRST

    @staticmethod
    def keras_weight_names(config):
        return []

    @staticmethod
    def from_keras(layer):
        channels = _channels(layer)
        scale = _per_channel(layer, "scale", layer.config.get("scale", 1.0), channels)
        offset = _per_channel(layer, "offset", layer.config.get("offset", 0.0), channels)
        params = {"scale": scale, "bias": offset, "mean": np.zeros(channels, np.float32),
                  "var": np.ones(channels, np.float32)}
        return [BATCHNORM.node(layer.name, layer.inputs, layer.outputs, params, 0.0, 0.1)]


def _channels(layer) -> int:
    shape = layer.input_shapes[0] if layer.input_shapes else None
    if shape is None or shape[1] is None:
        raise Unsupported(f"layer '{layer.name}' ({layer.class_name}): needs a known channel count")
    axis = layer.config.get("axis", -1)
    axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
    if axis not in (-1, len(shape) - 1):
        raise Unsupported(f"layer '{layer.name}' ({layer.class_name}): axis={axis}; only the channel axis converts")
    return int(shape[1])


def _per_channel(layer, what: str, value, channels: int) -> np.ndarray:
    """A scalar, or one value per channel (leading axes of size 1 allowed, as Keras broadcasts them)."""
    array = np.asarray(value, dtype=np.float32)
    if array.size == 1:
        return np.full(channels, float(array.reshape(())), np.float32)
    if array.size != channels or any(d != 1 for d in array.shape[:-1]):
        raise ShapeMismatch(f"layer '{layer.name}' ({layer.class_name}): {what} of shape {array.shape} is not one "
                            f"value per channel ({channels})")
    return array.reshape(channels)


def from_onnx_shift(onnx_node, context, constant: str):
    """An ONNX Add or Sub of a constant that broadcasts over channels only (tf2onnx's spelling of Keras'
    Normalization, x - mean) as the BatchNorm it equals: mean 0, variance 1, epsilon 0; else None."""
    from .layer_scale import channel_vector

    position = list(onnx_node.input).index(constant)
    value = onnx_node.input[1 - position]
    shift = channel_vector(np.asarray(context.initializers[constant], np.float32), context.shape(value))
    if shift is None:
        return None
    context.used.add(constant)
    negated = onnx_node.op_type == "Sub"
    scale = np.full(len(shift), -1.0 if negated and position == 0 else 1.0, np.float32)
    bias = -shift if negated and position == 1 else shift
    params = {"scale": scale, "bias": bias, "mean": np.zeros_like(shift), "var": np.ones_like(shift)}
    return [BATCHNORM.node(context.name(onnx_node), [value], list(onnx_node.output), params, 0.0, 0.1)]


BATCHNORM = register_op(BatchNorm())
register_keras("Normalization", KerasNormalization())
register_keras("Rescaling", KerasRescaling())
register_keras("BatchNormalization", BATCHNORM)
for _dims in (1, 2, 3):
    register_torch_module(f"BatchNorm{_dims}d", BATCHNORM.from_torch)
register_onnx("BatchNormalization", BATCHNORM.from_onnx)
