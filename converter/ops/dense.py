"""Dense / Linear / Gemm: the classic (in, out) versus (out, in) question."""

from __future__ import annotations

import numpy as np

from ..errors import Unsupported
from ..ir import Node, fused_activation_name
from ..layouts import permute
from . import activations
from .base import Convention, KerasSpec, OpDef, expect_dim
from .registry import register_keras, register_onnx, register_op, register_torch_module
from .. import views


CONV1D_WEIGHT = "i o"  # transformers' Conv1D stores its weight as Keras does


class Dense(OpDef):
    name = "dense"
    input_kind = views.FEATURES_LAST
    summary = "Fully connected layer: y = x @ kernel.T + bias, over the last axis."
    params = {"kernel": "o i", "bias": "o"}
    optional = frozenset({"bias"})
    conventions = {
        "keras": Convention(
            ("Dense",),
            {"kernel": ("kernel", "i o"), "bias": ("bias", "o")},
            {"units": "units (= o)", "bias": "use_bias=True", "activation": "activation='linear' (fused)"},
        ),
        "torch": Convention(
            ("Linear",),
            {"kernel": ("weight", "o i"), "bias": ("bias", "o")},
            {"units": "out_features (= o), in_features (= i)", "bias": "bias=True"},
        ),
        "onnx": Convention(
            ("Gemm", "MatMul+Add"),
            {"kernel": ("B", "o i"), "bias": ("C", "o")},
            {"bias": "C input (optional)"},
        ),
    }
    notes = (
        "Keras applies a fused activation after the kernel; wconv reads it as a separate node "
        "and writes it back fused where the target allows.",
        "ONNX: Gemm transB=1 takes B as 'o i' (what wconv writes); Gemm transB=0 and MatMul(+Add) take 'i o'.",
        f"transformers' Conv1D (GPT-2's projections) is a Linear whose weight is stored '{CONV1D_WEIGHT}', as Keras "
        "stores it (nf = o); read, never written.",
    )

    def output_shapes(self, node, input_shapes):
        shape = input_shapes[0]
        out_features, in_features = node.params["kernel"].shape
        expect_dim(node.name, "input features (kernel axis i)", in_features, shape[-1] if shape else None)
        return [tuple(shape[:-1]) + (out_features,) if shape else None]

    # -- Keras ------------------------------------------------------------------
    def keras_weight_names(self, config):
        return ["kernel", "bias"] if config.get("use_bias", True) else ["kernel"]

    def from_keras(self, layer):
        params = self.params_from("keras", layer.weights, layer.name)
        expect_dim(layer.name, "units", layer.config.get("units"), params["kernel"].shape[0])
        activation = layer.config.get("activation", "linear")
        if activation in (None, "linear"):
            return [Node(self.name, layer.name, layer.inputs, layer.outputs, params)]
        hidden = f"{layer.name}/linear"
        return [
            Node(self.name, layer.name, layer.inputs, [hidden], params),
            activations.from_keras_activation(activation, fused_activation_name(layer.name), [hidden], layer.outputs, fused=True,
                                              keras_version=layer.keras_version),
        ]

    def to_keras(self, node, graph):
        named = self.params_to("keras", node)
        config = {"units": int(node.params["kernel"].shape[0]), "use_bias": "bias" in node.params}
        return KerasSpec("Dense", config, [named[n] for n in self.keras_weight_names(config)])

    # -- torch ------------------------------------------------------------------
    def torch_module(self, node, graph):
        out_features, in_features = node.params["kernel"].shape
        bias = "" if "bias" in node.params else ", bias=False"
        return f"nn.Linear({in_features}, {out_features}{bias})"

    def from_torch(self, layer):
        params = self.params_from("torch", layer.weights, layer.name)
        expect_dim(layer.name, "out_features", layer.module.out_features, params["kernel"].shape[0])
        expect_dim(layer.name, "in_features", layer.module.in_features, params["kernel"].shape[1])
        return [Node(self.name, layer.name, layer.inputs, layer.outputs, params)]

    def from_conv1d(self, layer):
        """transformers' ``Conv1D`` (GPT-2's projections): ``addmm(bias, x, weight)``, a Linear whose weight is
        stored (in, out)."""
        weight = layer.weights["weight"]
        params = {"kernel": permute(weight, CONV1D_WEIGHT, self.params["kernel"], what=f"layer '{layer.name}' weight")}
        if "bias" in layer.weights:
            params["bias"] = layer.weights["bias"]
        expect_dim(layer.name, "nf", layer.module.nf, params["kernel"].shape[0])
        return [Node(self.name, layer.name, layer.inputs, layer.outputs, params)]

    # -- ONNX -------------------------------------------------------------------
    def to_onnx(self, node, builder):
        """Gemm for (batch, features); MatMul (+ Add) over the last axis of a sequence, where Gemm cannot go."""
        shape = builder.graph.shape(node.inputs[0])
        if shape is None or len(shape) == 2:
            inputs = [node.inputs[0], builder.initializer(f"{node.name}.weight", node.params["kernel"])]
            if "bias" in node.params:
                inputs.append(builder.initializer(f"{node.name}.bias", node.params["bias"]))
            builder.node("Gemm", inputs, node.outputs, node.name, transB=1)
            return
        kernel = builder.initializer(f"{node.name}.weight", permute(node.params["kernel"], "o i", "i o"))
        if "bias" not in node.params:
            builder.node("MatMul", [node.inputs[0], kernel], node.outputs, node.name)
            return
        product = f"{node.name}/matmul"
        builder.node("MatMul", [node.inputs[0], kernel], [product], product)
        builder.node("Add", [product, builder.initializer(f"{node.name}.bias", node.params["bias"])], node.outputs,
                     node.name)

    def from_gemm(self, onnx_node, context):
        """Y = alpha A B + beta C: alpha and beta scale the (constant) kernel and bias."""
        attrs = context.attrs(onnx_node)
        if attrs.get("transA", 0):
            raise Unsupported(f"Gemm '{context.name(onnx_node)}': transA=1 multiplies the input's transpose, whose "
                              "first axis is not the batch")
        has_bias = len(onnx_node.input) > 2 and onnx_node.input[2]
        bias = context.bias(onnx_node, 2) if has_bias else None
        if bias is not None:
            bias = bias * np.float32(attrs.get("beta", 1.0))
        kernel_axes = "o i" if attrs.get("transB", 0) else "i o"
        node = self._from_onnx(context, onnx_node, kernel_axes, bias, list(onnx_node.output))
        node.params["kernel"] = node.params["kernel"] * np.float32(attrs.get("alpha", 1.0))
        return [node]

    def from_matmul(self, onnx_node, context):
        bias, outputs = context.bias_add_after(onnx_node)
        return [self._from_onnx(context, onnx_node, "i o", bias, outputs or list(onnx_node.output))]

    def _from_onnx(self, context, onnx_node, kernel_axes, bias, outputs):
        name = context.name(onnx_node)
        kernel = context.weight(onnx_node, 1)
        if kernel.ndim != 2:  # valid ONNX (MatMul broadcasts), not a dense layer's kernel
            raise Unsupported(f"{onnx_node.op_type} '{name}': a constant B of shape {kernel.shape}; only a matrix "
                              "converts")
        params = {"kernel": permute(kernel, kernel_axes, self.params["kernel"], what=f"layer '{name}' B")}
        if bias is not None:
            params["bias"] = permute(bias, "o", self.params["bias"], what=f"layer '{name}' bias")
            if params["bias"].shape[0] != params["kernel"].shape[0]:  # valid ONNX: one value broadcast to all
                raise Unsupported(f"{onnx_node.op_type} '{name}': a bias of {params['bias'].shape[0]} value(s) for "
                                  f"{params['kernel'].shape[0]} outputs broadcasts; only one value per output converts")
        return Node(self.name, name, [onnx_node.input[0]], outputs, params)


DENSE = register_op(Dense())
register_keras("Dense", DENSE)
register_torch_module("Linear", DENSE.from_torch)
register_torch_module("Conv1D", DENSE.from_conv1d)
register_onnx("Gemm", DENSE.from_gemm)
register_onnx("MatMul", DENSE.from_matmul)
