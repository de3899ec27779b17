"""BatchNormalization at inference: epsilon 1e-3 (Keras) vs 1e-5 (torch, ONNX); momentum 0.99 vs 0.1."""

from __future__ import annotations

import numpy as np

from ..errors import Unsupported
from ..ir import Node
from ..layouts import axis_to_channels_first
from .base import Convention, KerasSpec, OpDef, expect_dim
from .registry import register_keras, register_onnx, register_op, register_torch_module


AFFINE = frozenset({"scale", "bias"})  # Keras scale/center=False, torch affine=False leave them out


class BatchNorm(OpDef):
    name = "batchnorm"
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
        shape = layer.input_shapes[0] if layer.input_shapes else None
        axis = layer.config.get("axis", -1)
        axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
        if not isinstance(axis, int) or shape is None or axis_to_channels_first(axis, len(shape)) != 1:
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
        return f"nn.BatchNorm{dims}d({channels}, eps={node.attrs['epsilon']!r}, momentum={node.attrs['momentum']!r})"

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


BATCHNORM = register_op(BatchNorm())
register_keras("BatchNormalization", BATCHNORM)
for _dims in (1, 2, 3):
    register_torch_module(f"BatchNorm{_dims}d", BATCHNORM.from_torch)
register_onnx("BatchNormalization", BATCHNORM.from_onnx)
