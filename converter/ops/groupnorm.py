"""GroupNorm: statistics over each group of channels and every spatial axis; epsilon 1e-3 (Keras) vs 1e-5.

Keras ``GroupNormalization(groups, axis=-1)`` on its channels-last view, torch ``nn.GroupNorm`` on
(N, C, ...). ONNX opset 20 has no per-channel group norm: it is written as Reshape to (N, groups, -1),
InstanceNormalization (the group statistics), Reshape back, Mul and Add by the per-channel gamma and
beta. Read from ONNX: ``GroupNormalization`` (opset 18's per-group scale and bias repeat over each
group's channels; opset 21's are per channel), and the decomposed form above (wconv's, and torch.onnx's
before opset 18), which ``adapters/onnx/groupnorm_pass.py`` reads as one GroupNormalization.
"""

from __future__ import annotations

import numpy as np

from .. import views
from ..codetext import literal
from ..errors import Unsupported
from ..ir import Node
from .base import Convention, KerasSpec, OpDef, expect_dim
from .layernorm import AFFINE, keras_affine_names
from .registry import register_keras, register_onnx, register_op, register_torch_module


class GroupNorm(OpDef):
    name = "groupnorm"
    input_kind = views.CHANNELS_FIRST
    summary = "y = (x - mean) / sqrt(var + epsilon) * scale + bias, statistics per sample over each channel group."
    params = {"scale": "c", "bias": "c"}
    optional = AFFINE
    conventions = {
        "keras": Convention(("GroupNormalization",), {"scale": ("gamma", "c"), "bias": ("beta", "c")},
                            {"groups": "groups", "epsilon": "epsilon=1e-3", "axis": "axis=-1"}),
        "torch": Convention(("GroupNorm",), {"scale": ("weight", "c"), "bias": ("bias", "c")},
                            {"groups": "num_groups", "epsilon": "eps=1e-5", "affine": "affine=True"}),
        "onnx": Convention(("GroupNormalization", "Reshape+InstanceNormalization+Reshape+Mul+Add"),
                           {"scale": ("scale", "c"), "bias": ("bias", "c")},
                           {"groups": "num_groups", "epsilon": "epsilon=1e-5"}),
    }

    def node(self, name, inputs, outputs, params, groups, epsilon) -> Node:
        return Node(self.name, name, list(inputs[:1]), list(outputs), params,
                    {"groups": int(groups), "epsilon": float(epsilon)})

    def output_shapes(self, node, input_shapes):
        shape = input_shapes[0]
        channels = shape[1] if shape and len(shape) > 1 else None
        for param in node.params.values():
            expect_dim(node.name, "channels (axis 1)", len(param), channels)
        if channels is not None and channels % node.attrs["groups"]:
            raise Unsupported(f"layer '{node.name}': {channels} channels do not split into {node.attrs['groups']} groups")
        return [shape]

    # -- Keras ------------------------------------------------------------------
    def keras_weight_names(self, config):
        return keras_affine_names(config)

    def from_keras(self, layer):
        layout = layer.input_layouts[0]
        axis = layer.config.get("axis", -1)
        if layout is None or not isinstance(axis, int) or views.axis_from(axis, layout, "keras") != 1:
            raise Unsupported(f"layer '{layer.name}' (GroupNormalization): axis={axis} is not the channel axis")
        params = self.params_from("keras", layer.weights, layer.name)
        return [self.node(layer.name, layer.inputs, layer.outputs, params, layer.config["groups"],
                          layer.config.get("epsilon", 1e-3))]

    def to_keras(self, node, graph):
        config = {"groups": node.attrs["groups"], "axis": -1, "epsilon": node.attrs["epsilon"],
                  "scale": "scale" in node.params, "center": "bias" in node.params}
        named = self.params_to("keras", node)
        return KerasSpec("GroupNormalization", config, [named[n] for n in self.keras_weight_names(config)])

    # -- torch ------------------------------------------------------------------
    def torch_module(self, node, graph):
        channels = int(graph.shape(node.inputs[0])[1])
        affine = set(node.params)
        if affine not in (set(), set(AFFINE)):
            raise Unsupported(f"layer '{node.name}': torch's GroupNorm has gamma and beta together or neither")
        extra = "" if affine else ", affine=False"
        return f"nn.GroupNorm({node.attrs['groups']}, {channels}, eps={literal(node.attrs['epsilon'])}{extra})"

    def from_torch(self, layer):
        module = layer.module
        params = self.params_from("torch", layer.weights, layer.name)
        return [self.node(layer.name, layer.inputs, layer.outputs, params, module.num_groups, module.eps)]

    # -- ONNX -------------------------------------------------------------------
    def to_onnx(self, node, builder):
        name, groups = node.name, node.attrs["groups"]
        shape = builder.graph.shape(node.inputs[0])
        spatial = list(shape[2:])
        if sum(d is None for d in spatial) > 1:
            raise Unsupported(f"layer '{name}': GroupNorm over more than one axis of unknown size has no ONNX form here")
        grouped = builder.initializer(f"{name}.grouped", np.array([0, groups, -1], np.int64))
        builder.node("Reshape", [node.inputs[0], grouped], [f"{name}/grouped"], f"{name}/group")
        ones = builder.initializer(f"{name}.ones", np.ones(groups, np.float32))
        zeros = builder.initializer(f"{name}.zeros", np.zeros(groups, np.float32))
        builder.node("InstanceNormalization", [f"{name}/grouped", ones, zeros], [f"{name}/normalized"],
                     f"{name}/normalize", epsilon=node.attrs["epsilon"])
        back = builder.initializer(f"{name}.shape", np.array([0, shape[1], *[-1 if d is None else d for d in spatial]],
                                                             np.int64))
        builder.node("Reshape", [f"{name}/normalized", back], [f"{name}/ungrouped"], f"{name}/ungroup")
        current = f"{name}/ungrouped"
        per_channel = (shape[1], *[1] * len(spatial))
        for param, op in (("scale", "Mul"), ("bias", "Add")):
            if param in node.params:
                value = builder.initializer(f"{name}.{param}", node.params[param].reshape(per_channel))
                builder.node(op, [current, value], [f"{name}/{param}"], f"{name}/{param}")
                current = f"{name}/{param}"
        builder.node("Identity", [current], node.outputs, f"{name}/output")

    def from_onnx(self, onnx_node, context):
        name, attrs = context.name(onnx_node), context.attrs(onnx_node)
        groups = attrs["num_groups"]
        shape = context.shape(onnx_node.input[0])
        channels = shape[1] if shape and len(shape) > 1 else None
        if channels is None:
            raise Unsupported(f"GroupNormalization '{name}': needs the input's channel count")
        params = {}
        for index, param in ((1, "scale"), (2, "bias")):
            value = context.weight(onnx_node, index)
            if value.shape == (groups,) and channels != groups:  # opset 18: one value per group
                value = np.repeat(value, channels // groups)
            params[param] = value
        return [self.node(name, onnx_node.input[:1], onnx_node.output[:1], params, groups, attrs.get("epsilon", 1e-5))]


GROUPNORM = register_op(GroupNorm())
register_keras("GroupNormalization", GROUPNORM)
register_torch_module("GroupNorm", GROUPNORM.from_torch)
register_onnx("GroupNormalization", GROUPNORM.from_onnx)
