"""Convolutions 1D/2D/3D, grouped and depthwise: HWIO (Keras) versus OIHW (torch, ONNX).

A Keras DepthwiseConv kernel (h, w, c, m) is the canonical grouped kernel ((c m), 1, h, w)
with groups = c; the IR has one conv op per rank and keeps groups as an attribute.
"""

from __future__ import annotations

from ..codetext import literal
from ..errors import Unsupported
from ..ir import Node, fused_activation_name
from ..layouts import permute
from . import activations, padding
from .base import KerasReader, Convention, KerasSpec, OpDef, expect_dim
from .registry import register_keras, register_onnx, register_op, register_torch_module
from .. import views

SPATIAL = {1: "w", 2: "h w", 3: "d h w"}


class Conv(OpDef):
    input_kind = views.CHANNELS_FIRST
    def __init__(self, rank: int):
        self.rank = rank
        axes = SPATIAL[rank]
        self.name = f"conv{rank}d"
        self.summary = f"{rank}-D convolution (cross-correlation) over channels-first input, with groups."
        self.params = {"kernel": f"o i {axes}", "bias": "o"}
        self.optional = frozenset({"bias"})
        self.conventions = {
            "keras": Convention(
                (f"Conv{rank}D", *(f"DepthwiseConv{rank}D",) * (rank < 3)),
                {"kernel": ("kernel", f"{axes} i o"), "bias": ("bias", "o")},
                {"padding": "'valid', 'same' (TF: extra at the end), 'causal' (1D)",
                 "depthwise": f"depthwise_kernel '{axes} c m' = kernel '(c m) 1 {axes}', groups=c"},
            ),
            "torch": Convention(
                (f"Conv{rank}d",),
                {"kernel": ("weight", f"o i {axes}"), "bias": ("bias", "o")},
                {"padding": "symmetric ints, 'same' (stride 1); asymmetric via F.pad", "groups": "groups"},
            ),
            "onnx": Convention(
                ("Conv",),
                {"kernel": ("W", f"o i {axes}"), "bias": ("B", "o")},
                {"padding": "pads (begins, ends) or auto_pad", "groups": "group"},
            ),
        }

    # -- shapes -------------------------------------------------------------------------
    def output_shapes(self, node, input_shapes):
        shape = input_shapes[0]
        kernel = node.params["kernel"]
        out_channels, in_per_group = kernel.shape[:2]
        if shape is None:
            return [None]
        if len(shape) != self.rank + 2:
            raise Unsupported(f"layer '{node.name}': {self.name} needs a rank-{self.rank + 2} input, found {shape}")
        expect_dim(node.name, "input channels (kernel axis i x groups)", in_per_group * node.attrs["groups"], shape[1])
        sizes = padding.output_sizes(padding.spatial(shape), kernel.shape[2:], node.attrs["strides"],
                                     node.attrs["dilations"], node.attrs["pads"])
        return [(shape[0], out_channels, *sizes)]

    def node(self, name, inputs, outputs, params, input_shape, strides, dilations, groups, pad_spec) -> Node:
        kernel = params["kernel"].shape[2:]
        strides, dilations = padding.as_list(strides, self.rank), padding.as_list(dilations, self.rank)
        sizes = padding.spatial(input_shape) if input_shape else [None] * self.rank
        pads = padding.resolve(name, pad_spec, sizes, kernel, strides, dilations)
        attrs = {"strides": strides, "dilations": dilations, "groups": int(groups), "pads": pads}
        return Node(self.name, name, inputs, outputs, params, attrs)

    # -- Keras ------------------------------------------------------------------------
    def keras_weight_names(self, config):
        kernel = "depthwise_kernel" if "depth_multiplier" in config else "kernel"
        return [kernel, "bias"] if config.get("use_bias", True) else [kernel]

    def from_keras(self, layer):
        config = layer.config
        weights = dict(layer.weights)
        groups = config.get("groups", 1)
        if "depthwise_kernel" in weights:
            depthwise = weights.pop("depthwise_kernel")
            groups = depthwise.shape[-2]
            weights["kernel"] = _depthwise_to_hwio(depthwise, self.rank)
        params = self.params_from("keras", weights, layer.name)
        input_shape = layer.input_shapes[0] if layer.input_shapes else None
        conv = self.node(layer.name, layer.inputs, layer.outputs, params, input_shape, config.get("strides", 1),
                         config.get("dilation_rate", 1), groups, config.get("padding", "valid"))
        return _with_activation(conv, config, layer, self.rank)

    def to_keras(self, node, graph):
        shape = graph.shape(node.inputs[0])
        in_channels = shape[1]
        kernel = node.params["kernel"]
        attrs = node.attrs
        if any(s > 1 for s in attrs["strides"]) and any(d > 1 for d in attrs["dilations"]):
            raise Unsupported(f"layer '{node.name}': Keras convolutions take strides > 1 or dilations > 1, not both "
                              f"(strides {attrs['strides']}, dilations {attrs['dilations']})")
        pad_name = padding.keras_name(attrs["pads"], padding.spatial(shape), kernel.shape[2:], attrs["strides"],
                                      attrs["dilations"])
        pre = None
        if pad_name is None:
            pre = _keras_zero_padding(self.rank, attrs["pads"])
            pad_name = "valid"
        common = {"kernel_size": list(kernel.shape[2:]), "strides": attrs["strides"], "padding": pad_name,
                  "dilation_rate": attrs["dilations"], "use_bias": "bias" in node.params}
        named = self.params_to("keras", node)
        depthwise = attrs["groups"] == in_channels and attrs["groups"] > 1 and self.rank < 3
        if depthwise:
            multiplier = kernel.shape[0] // in_channels
            weights = [_hwio_to_depthwise(named["kernel"], self.rank, in_channels)]
            config = {**common, "depth_multiplier": multiplier}
            class_name = f"DepthwiseConv{self.rank}D"
        else:
            weights = [named["kernel"]]
            config = {**common, "filters": int(kernel.shape[0]), "groups": attrs["groups"]}
            class_name = f"Conv{self.rank}D"
        if "bias" in named:
            weights.append(named["bias"])
        return KerasSpec(class_name, config, weights, pre=pre)

    # -- torch ------------------------------------------------------------------------
    def torch_module(self, node, graph):
        kernel = node.params["kernel"]
        attrs = node.attrs
        out_channels = kernel.shape[0]
        in_channels = kernel.shape[1] * attrs["groups"]
        pads = attrs["pads"][: self.rank] if padding.symmetric(attrs["pads"]) else [0] * self.rank
        options = [f"{in_channels}, {out_channels}, kernel_size={_tuple(kernel.shape[2:])}"]
        options += _options(stride=(attrs["strides"], 1), padding=(pads, 0), dilation=(attrs["dilations"], 1))
        if attrs["groups"] != 1:
            options.append(f"groups={attrs['groups']}")
        if "bias" not in node.params:
            options.append("bias=False")
        return f"nn.Conv{self.rank}d({', '.join(options)})"

    def torch_forward(self, node, graph, module, args):
        if padding.symmetric(node.attrs["pads"]):
            return f"{module}({args[0]})"
        return f"{module}(F.pad({args[0]}, {literal(padding.torch_pad_order(node.attrs['pads']))}))"

    def from_torch(self, layer, pad_spec=None):
        """An nn conv; ``pad_spec``: its padding where forward() pads otherwise (timm's Conv2dSame: 'same')."""
        module = layer.module
        if module.padding_mode != "zeros":
            raise Unsupported(f"layer '{layer.name}' ({layer.class_name}): padding_mode='{module.padding_mode}' "
                              "has no equivalent; only 'zeros' converts")
        params = self.params_from("torch", layer.weights, layer.name)
        if pad_spec is None:
            pad_spec = module.padding if isinstance(module.padding, str) else list(module.padding) * 2
        input_shape = layer.input_shapes[0] if layer.input_shapes else None
        return [self.node(layer.name, layer.inputs, layer.outputs, params, input_shape, module.stride,
                          module.dilation, module.groups, pad_spec)]

    def from_timm_same(self, layer):
        """timm's ``Conv2dSame`` (its TF-ported models): TensorFlow's 'SAME' padding, which its forward() computes
        from the input's size, then a conv with no padding of its own."""
        return self.from_torch(layer, pad_spec="same")

    # -- ONNX -------------------------------------------------------------------------
    def to_onnx(self, node, builder):
        inputs = [node.inputs[0], builder.initializer(f"{node.name}.weight", node.params["kernel"])]
        if "bias" in node.params:
            inputs.append(builder.initializer(f"{node.name}.bias", node.params["bias"]))
        attrs = node.attrs
        builder.node("Conv", inputs, node.outputs, node.name, kernel_shape=list(node.params["kernel"].shape[2:]),
                     strides=attrs["strides"], dilations=attrs["dilations"], group=attrs["groups"], pads=attrs["pads"])


def _depthwise_to_hwio(depthwise, rank: int):
    """Keras depthwise (k..., c, m) -> the Keras-style grouped kernel (k..., 1, c*m), channel-major."""
    axes = SPATIAL[rank]
    return permute(depthwise, f"{axes} c m", f"{axes} 1 (c m)", what="depthwise_kernel")


def _hwio_to_depthwise(kernel, rank: int, channels: int):
    axes = SPATIAL[rank]
    return permute(kernel, f"{axes} 1 (c m)", f"{axes} c m", what="depthwise_kernel", c=channels)


def _with_activation(node, config, layer, rank):
    activation = config.get("activation", "linear")
    if activation in (None, "linear"):
        return [node]
    hidden = f"{layer.name}/conv"
    node.outputs = [hidden]
    return [node, activations.from_keras_activation(activation, fused_activation_name(layer.name), [hidden],
                                                    layer.outputs, fused=True,
                                                    layout=views.default(views.CHANNELS_FIRST, rank + 2),
                                                    keras_version=layer.keras_version)]


def _keras_zero_padding(rank: int, pads) -> KerasSpec:
    return KerasSpec(f"ZeroPadding{rank}D", {"padding": padding.to_keras_pairs(pads)})


def _tuple(values) -> str:
    values = [int(v) for v in values]
    return literal(values[0]) if len(set(values)) == 1 else literal(tuple(values))


def _options(**pairs) -> list[str]:
    """``name=value`` for each value that differs from torch's default."""
    return [f"{name}={_tuple(value)}" for name, (value, default) in pairs.items() if any(v != default for v in value)]


def from_onnx_conv(onnx_node, context):
    attrs = context.attrs(onnx_node)
    kernel = context.weight(onnx_node, 1)
    rank = kernel.ndim - 2
    op = CONVS.get(rank)
    if op is None:
        raise Unsupported(f"Conv '{context.name(onnx_node)}': {rank}-D convolution is not supported")
    named = {"W": kernel}
    if len(onnx_node.input) > 2 and onnx_node.input[2]:
        named["B"] = context.weight(onnx_node, 2)
    params = op.params_from("onnx", named, context.name(onnx_node))
    auto_pad = attrs.get("auto_pad", "NOTSET")
    pad_spec = {"NOTSET": attrs.get("pads", [0] * 2 * rank), "VALID": "valid", "SAME_UPPER": "same"}.get(auto_pad)
    if pad_spec is None:
        raise Unsupported(f"Conv '{context.name(onnx_node)}': auto_pad={auto_pad} is not supported")
    name = context.name(onnx_node)
    return [op.node(name, [onnx_node.input[0]], list(onnx_node.output), params,
                    context.shape(onnx_node.input[0]), attrs.get("strides", 1), attrs.get("dilations", 1),
                    attrs.get("group", 1), pad_spec)]


class KerasSeparable(KerasReader):
    input_kind = views.CHANNELS_FIRST
    """Keras SeparableConv1D/2D: a depthwise conv then a 1x1 conv, read as those two IR nodes."""

    def __init__(self, rank: int):
        self.rank = rank

    def keras_weight_names(self, config):
        return ["depthwise_kernel", "pointwise_kernel"] + (["bias"] if config.get("use_bias", True) else [])

    def from_keras(self, layer):
        config, weights, op = layer.config, layer.weights, CONVS[self.rank]
        depthwise = weights["depthwise_kernel"]
        hidden = f"{layer.name}/depthwise"
        first = op.node(hidden, layer.inputs, [hidden],
                        op.params_from("keras", {"kernel": _depthwise_to_hwio(depthwise, self.rank)}, hidden),
                        layer.input_shapes[0], config.get("strides", 1), config.get("dilation_rate", 1),
                        depthwise.shape[-2], config.get("padding", "valid"))
        pointwise = {"kernel": weights["pointwise_kernel"], **({"bias": weights["bias"]} if "bias" in weights else {})}
        second = op.node(layer.name, [hidden], layer.outputs, op.params_from("keras", pointwise, layer.name),
                         None, 1, 1, 1, "valid")
        return [first, *_with_activation(second, config, layer, self.rank)]


CONVS = {rank: register_op(Conv(rank)) for rank in (1, 2, 3)}
for _rank in (1, 2):
    register_keras(f"SeparableConv{_rank}D", KerasSeparable(_rank))
for _rank, _op in CONVS.items():
    register_keras(f"Conv{_rank}D", _op)
    register_torch_module(f"Conv{_rank}d", _op.from_torch)
    if _rank < 3:
        register_keras(f"DepthwiseConv{_rank}D", _op)
register_torch_module("Conv2dSame", CONVS[2].from_timm_same)  # kept whole by exported.py for timm's class only
register_onnx("Conv", from_onnx_conv)
