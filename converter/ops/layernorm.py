"""LayerNormalization over the last axis: epsilon 1e-3 (Keras) vs 1e-5 (torch, ONNX).

Keras' ``center``/``scale`` and torch's ``elementwise_affine``/``bias`` may leave out beta and gamma;
the IR then holds zeros and ones, which compute the same, and writes them back left out where the
target can. Normalizing over several axes (Keras ``axis=[1, 2, 3]``, torch ``normalized_shape`` of
two or more sizes) and Keras' ``rms_scaling`` are refused.
"""

from __future__ import annotations

import numpy as np

from .. import views
from ..codetext import literal
from ..errors import Unsupported
from ..ir import Node
from .base import Convention, KerasSpec, OpDef, expect_dim
from .registry import register_keras, register_onnx, register_op, register_torch_module

AFFINE = frozenset({"scale", "bias"})


def keras_affine_names(config) -> list[str]:
    """A Keras normalization layer's weights: gamma unless scale=False, beta unless center=False."""
    return (["gamma"] if config.get("scale", True) else []) + (["beta"] if config.get("center", True) else [])


class LastAxisNorm(OpDef):
    """What the normalizations over the last axis share (LayerNorm, RMSNorm): an epsilon, params of the features'
    size, and torch's one-size ``normalized_shape``."""

    input_kind = views.FEATURES_LAST

    def node(self, name, inputs, outputs, params, epsilon) -> Node:
        return Node(self.name, name, list(inputs[:1]), list(outputs), params, {"epsilon": float(epsilon)})

    def output_shapes(self, node, input_shapes):
        shape = input_shapes[0]
        for param in node.params.values():
            expect_dim(node.name, "features (last axis)", len(param), shape[-1] if shape else None)
        return [shape]

    @staticmethod
    def refuse_other_axes(layer) -> None:
        shape = tuple(layer.module.normalized_shape)
        if len(shape) != 1:
            raise Unsupported(f"layer '{layer.name}' ({layer.class_name}): normalized_shape={shape}; only the last "
                              "axis (one size) converts")


class LayerNorm(LastAxisNorm):
    name = "layernorm"
    input_kind = views.FEATURES_LAST
    summary = "y = (x - mean) / sqrt(var + epsilon) * scale + bias, statistics over the last axis of each sample."
    params = {"scale": "f", "bias": "f"}
    optional = AFFINE
    conventions = {
        "keras": Convention(("LayerNormalization",), {"scale": ("gamma", "f"), "bias": ("beta", "f")},
                            {"epsilon": "epsilon=1e-3", "axis": "axis=-1", "scale/bias": "scale=False / center=False"}),
        "torch": Convention(("LayerNorm",), {"scale": ("weight", "f"), "bias": ("bias", "f")},
                            {"epsilon": "eps=1e-5", "axis": "normalized_shape=(f,)",
                             "scale/bias": "elementwise_affine=False / bias=False"}),
        "onnx": Convention(("LayerNormalization",), {"scale": ("Scale", "f"), "bias": ("B", "f")},
                           {"epsilon": "epsilon=1e-5", "axis": "axis=-1 (opset 17)"}),
    }
    notes = ("A left-out gamma/beta is held as ones/zeros, which computes the same.",)

    @staticmethod
    def _full(node, size: int) -> dict:
        """Both params, a left-out one as what it computes (ones, zeros)."""
        return {"scale": node.params.get("scale", np.ones(size, np.float32)),
                "bias": node.params.get("bias", np.zeros(size, np.float32))}

    # -- Keras ------------------------------------------------------------------
    def keras_weight_names(self, config):
        return keras_affine_names(config)

    def from_keras(self, layer):
        config, layout = layer.config, layer.input_layouts[0]
        axis = config.get("axis", -1)
        axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
        if not isinstance(axis, int) or layout is None or views.axis_from(axis, layout, "keras") != len(layout.split()) - 1:
            raise Unsupported(f"layer '{layer.name}' (LayerNormalization): axis={config.get('axis')}; only the last "
                              "axis converts")
        if config.get("rms_scaling"):
            raise Unsupported(f"layer '{layer.name}' (LayerNormalization): rms_scaling=True is not converted")
        params = self.params_from("keras", layer.weights, layer.name)
        return [self.node(layer.name, layer.inputs, layer.outputs, params, config.get("epsilon", 1e-3))]

    def to_keras(self, node, graph):
        config = {"axis": -1, "epsilon": node.attrs["epsilon"], "scale": "scale" in node.params,
                  "center": "bias" in node.params}
        named = self.params_to("keras", node)
        return KerasSpec("LayerNormalization", config, [named[n] for n in self.keras_weight_names(config)])

    # -- torch ------------------------------------------------------------------
    def torch_module(self, node, graph):
        size = int(graph.shape(node.inputs[0])[-1])
        options = [str(size), f"eps={literal(node.attrs['epsilon'])}"]
        if not node.params:
            options.append("elementwise_affine=False")
        elif "scale" not in node.params:
            raise Unsupported(f"layer '{node.name}': torch's LayerNorm has no bias without a weight")
        elif "bias" not in node.params:
            options.append("bias=False")
        return f"nn.LayerNorm({', '.join(options)})"

    def from_torch(self, layer):
        self.refuse_other_axes(layer)
        params = self.params_from("torch", layer.weights, layer.name)
        return [self.node(layer.name, layer.inputs, layer.outputs, params, layer.module.eps)]

    # -- ONNX -------------------------------------------------------------------
    def to_onnx(self, node, builder):
        full = self._full(node, int(builder.graph.shape(node.inputs[0])[-1]))
        inputs = [node.inputs[0], builder.initializer(f"{node.name}.weight", full["scale"])]
        if "bias" in node.params:
            inputs.append(builder.initializer(f"{node.name}.bias", full["bias"]))
        builder.node("LayerNormalization", inputs, node.outputs, node.name, axis=-1, epsilon=node.attrs["epsilon"])

    def from_onnx(self, onnx_node, context):
        name, attrs = context.name(onnx_node), context.attrs(onnx_node)
        shape = context.shape(onnx_node.input[0])
        axis = attrs.get("axis", -1)
        if shape is None:
            raise Unsupported(f"LayerNormalization '{name}': the rank of its input is unknown (an earlier node's "
                              "output shape could not be inferred), so which axis it normalizes is unknown")
        if axis % len(shape) != len(shape) - 1:
            raise Unsupported(f"LayerNormalization '{name}': axis={axis}; only the last axis converts")
        if attrs.get("stash_type", 1) != 1:
            raise Unsupported(f"LayerNormalization '{name}': stash_type={attrs['stash_type']}; only float32 converts")
        params = {"scale": context.weight(onnx_node, 1)} if len(onnx_node.input) > 1 and onnx_node.input[1] else {}
        if len(onnx_node.input) > 2 and onnx_node.input[2]:
            params["bias"] = context.weight(onnx_node, 2)
        return [self.node(name, [onnx_node.input[0]], onnx_node.output[:1], params, attrs.get("epsilon", 1e-5))]


LAYERNORM = register_op(LayerNorm())
register_keras("LayerNormalization", LAYERNORM)
register_torch_module("LayerNorm", LAYERNORM.from_torch)
register_onnx("LayerNormalization", LAYERNORM.from_onnx)
