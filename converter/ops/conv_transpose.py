"""Transposed convolutions 1D/2D/3D: kernel (k..., out, in) in Keras, (in, out/groups, k...) in torch and ONNX.

Canonical padding is a crop of the full transposed convolution, whose size per axis is
``(size - 1) * stride + (kernel - 1) * dilation + 1``: ``crop`` lists the begins, then the ends;
a negative end adds rows that only the bias reaches (Keras' and torch's output_padding).
"""

from __future__ import annotations

from ..errors import Unsupported
from ..ir import Node
from . import padding
from .base import Convention, KerasSpec, OpDef, expect_dim
from .conv import SPATIAL, _options, _tuple, _with_activation
from .registry import register_keras, register_onnx, register_op, register_torch_module
from .. import views


def keras_crop(kernel, stride, dilation, mode, output_padding) -> tuple[int, int]:
    """(begin, end) crop for Keras' padding mode and output_padding (Keras' own JAX-backend rule)."""
    effective = (kernel - 1) * dilation + 1
    if mode == "valid":
        extra = max(effective, stride) - effective if output_padding is None else output_padding
        left, right = effective - 1, effective - 1 + extra
    else:
        total = stride + effective - 2 if output_padding is None else effective + effective % 2 - 2 + output_padding
        left = min(total // 2 + total % 2, effective - 1)
        right = total - left
    return effective - 1 - left, effective - 1 - right


class ConvTranspose(OpDef):
    input_kind = views.CHANNELS_FIRST
    def __init__(self, rank: int):
        self.rank = rank
        axes = SPATIAL[rank]
        self.name = f"conv_transpose{rank}d"
        self.summary = f"{rank}-D transposed convolution; 'crop' trims the full output (negative: extends it)."
        self.params = {"kernel": f"i o {axes}", "bias": "o"}
        self.optional = frozenset({"bias"})
        self.conventions = {
            "keras": Convention((f"Conv{rank}DTranspose",), {"kernel": ("kernel", f"{axes} o i"), "bias": ("bias", "o")},
                                {"crop": "padding ('valid'/'same') with output_padding", "groups": "1 only"}),
            "torch": Convention((f"ConvTranspose{rank}d",), {"kernel": ("weight", f"i o {axes}"), "bias": ("bias", "o")},
                                {"crop": "padding (both ends), output_padding (end)", "groups": "groups"}),
            "onnx": Convention(("ConvTranspose",), {"kernel": ("W", f"i o {axes}"), "bias": ("B", "o")},
                               {"crop": "pads, output_padding", "groups": "group"}),
        }

    def output_shapes(self, node, input_shapes):
        shape = input_shapes[0]
        if shape is None:
            return [None]
        kernel = node.params["kernel"]
        a = node.attrs
        expect_dim(node.name, "input channels (kernel axis i)", kernel.shape[0], shape[1])
        n = self.rank
        sizes = [None if size is None else (size - 1) * s + (k - 1) * d + 1 - a["crop"][i] - a["crop"][n + i]
                 for i, (size, k, s, d) in enumerate(zip(shape[2:], kernel.shape[2:], a["strides"], a["dilations"]))]
        return [(shape[0], kernel.shape[1] * a["groups"], *sizes)]

    def node(self, name, inputs, outputs, params, strides, dilations, groups, crop) -> Node:
        attrs = {"strides": padding.as_list(strides, self.rank), "dilations": padding.as_list(dilations, self.rank),
                 "groups": int(groups), "crop": [int(c) for c in crop]}
        return Node(self.name, name, inputs, outputs, params, attrs)

    # -- Keras ------------------------------------------------------------------------
    def keras_weight_names(self, config):
        return ["kernel", "bias"] if config.get("use_bias", True) else ["kernel"]

    def from_keras(self, layer):
        config = layer.config
        params = self.params_from("keras", layer.weights, layer.name)
        kernel = params["kernel"].shape[2:]
        strides, dilations = padding.as_list(config.get("strides", 1), self.rank), padding.as_list(
            config.get("dilation_rate", 1), self.rank)
        extra = config.get("output_padding")
        extra = [None] * self.rank if extra is None else padding.as_list(extra, self.rank)
        pairs = [keras_crop(k, s, d, config.get("padding", "valid").lower(), e)
                 for k, s, d, e in zip(kernel, strides, dilations, extra)]
        crop = [b for b, _ in pairs] + [e for _, e in pairs]
        node = self.node(layer.name, layer.inputs, layer.outputs, params, strides, dilations, 1, crop)
        return _with_activation(node, config, layer, self.rank)

    def to_keras(self, node, graph):
        a = node.attrs
        if a["groups"] != 1:
            raise Unsupported(f"layer '{node.name}': Keras transposed convolutions have no groups ({a['groups']})")
        kernel = node.params["kernel"].shape[2:]
        mode, extra, post = self._keras_padding(node, kernel)
        named = self.params_to("keras", node)
        config = {"filters": int(node.params["kernel"].shape[1]), "kernel_size": list(kernel),
                  "strides": a["strides"], "padding": mode, "output_padding": extra,
                  "dilation_rate": a["dilations"], "use_bias": "bias" in node.params}
        weights = [named[k] for k in ("kernel", "bias") if k in named]
        return KerasSpec(f"Conv{self.rank}DTranspose", config, weights, post=post)

    def _keras_padding(self, node, kernel):
        """(padding, output_padding, Cropping layer or None) that Keras needs for this crop."""
        a = node.attrs
        n = self.rank
        wanted = [(a["crop"][i], a["crop"][n + i]) for i in range(n)]
        for mode in ("valid", "same"):
            for extras in ([None] * n, *[[e] * n for e in range(max(a["strides"]))]):
                found = [keras_crop(k, s, d, mode, e)
                         for k, s, d, e in zip(kernel, a["strides"], a["dilations"], extras)]
                if found == wanted:
                    return mode, None if extras[0] is None else extras, None
        # torch's padding=1, output_padding=1 crops the beginning, which Keras' padding never does:
        # a 'valid' transposed conv extended at the end as needed, then a Cropping layer.
        extras = [max(0, -end) for _, end in wanted]
        if any(begin < 0 for begin, _ in wanted) or any(e >= s for e, s in zip(extras, a["strides"])):
            raise Unsupported(f"layer '{node.name}': crop {a['crop']} has no Keras equivalent")
        crop = [begin for begin, _ in wanted] + [end + e for (_, end), e in zip(wanted, extras)]
        crop = KerasSpec(f"Cropping{n}D", {"cropping": padding.to_keras_pairs(crop)})
        return "valid", extras, crop  # explicit output_padding: Keras' default may extend when stride > kernel

    # -- torch ------------------------------------------------------------------------
    def _torch_padding(self, node):
        """(padding, output_padding, end trim) per axis: torch crops both ends equally, then extends the end."""
        a = node.attrs
        n = self.rank
        result = []
        for i in range(n):
            begin, end = a["crop"][i], a["crop"][n + i]
            extra = begin - end
            if begin < 0:
                raise Unsupported(f"layer '{node.name}': a negative crop at the beginning has no torch equivalent")
            if extra >= max(a["strides"][i], a["dilations"][i]):
                raise Unsupported(f"layer '{node.name}': output_padding {extra} must be below stride or dilation")
            result.append((begin, max(extra, 0), max(-extra, 0)))
        return result

    def torch_module(self, node, graph):
        kernel = node.params["kernel"]
        a = node.attrs
        pads = self._torch_padding(node)
        options = [f"{kernel.shape[0]}, {kernel.shape[1] * a['groups']}, kernel_size={_tuple(kernel.shape[2:])}"]
        options += _options(stride=(a["strides"], 1), padding=([p for p, _, _ in pads], 0),
                            output_padding=([e for _, e, _ in pads], 0), dilation=(a["dilations"], 1))
        if a["groups"] != 1:
            options.append(f"groups={a['groups']}")
        if "bias" not in node.params:
            options.append("bias=False")
        return f"nn.ConvTranspose{self.rank}d({', '.join(options)})"

    def torch_forward(self, node, graph, module, args):
        trims = [t for _, _, t in self._torch_padding(node)]
        call = f"{module}({args[0]})"
        if not any(trims):
            return call
        return call + "[:, :, " + ", ".join(f":-{t}" if t else ":" for t in trims) + "]"

    def from_torch(self, layer):
        module = layer.module
        if module.padding_mode != "zeros" or isinstance(module.padding, str):
            raise Unsupported(f"layer '{layer.name}' ({layer.class_name}): padding {module.padding!r} "
                              f"mode {module.padding_mode!r} is not supported")
        params = self.params_from("torch", layer.weights, layer.name)
        pads, extra = list(module.padding), list(module.output_padding)
        crop = pads + [p - e for p, e in zip(pads, extra)]
        return [self.node(layer.name, layer.inputs, layer.outputs, params, module.stride, module.dilation,
                          module.groups, crop)]

    # -- ONNX -------------------------------------------------------------------------
    def to_onnx(self, node, builder):
        a = node.attrs
        n = self.rank
        if any(c < 0 for c in a["crop"][:n]):
            raise Unsupported(f"layer '{node.name}': a negative crop at the beginning has no ONNX equivalent")
        ends = a["crop"][n:]
        inputs = [node.inputs[0], builder.initializer(f"{node.name}.weight", node.params["kernel"])]
        if "bias" in node.params:
            inputs.append(builder.initializer(f"{node.name}.bias", node.params["bias"]))
        builder.node("ConvTranspose", inputs, node.outputs, node.name,
                     kernel_shape=list(node.params["kernel"].shape[2:]), strides=a["strides"],
                     dilations=a["dilations"], group=a["groups"], pads=a["crop"][:n] + [max(e, 0) for e in ends],
                     output_padding=[max(-e, 0) for e in ends])


def from_onnx_conv_transpose(onnx_node, context):
    attrs = context.attrs(onnx_node)
    name = context.name(onnx_node)
    kernel = context.weight(onnx_node, 1)
    rank = kernel.ndim - 2
    if attrs.get("auto_pad", "NOTSET") != "NOTSET" or "output_shape" in attrs or rank not in TRANSPOSES:
        raise Unsupported(f"ConvTranspose '{name}': auto_pad, output_shape or rank {rank} are not supported")
    op = TRANSPOSES[rank]
    named = {"W": kernel}
    if len(onnx_node.input) > 2 and onnx_node.input[2]:
        named["B"] = context.weight(onnx_node, 2)
    pads = attrs.get("pads", [0] * 2 * rank)
    extra = attrs.get("output_padding", [0] * rank)
    crop = pads[:rank] + [p - e for p, e in zip(pads[rank:], extra)]
    return [op.node(name, [onnx_node.input[0]], list(onnx_node.output), op.params_from("onnx", named, name),
                    attrs.get("strides", 1), attrs.get("dilations", 1), attrs.get("group", 1), crop)]


TRANSPOSES = {rank: register_op(ConvTranspose(rank)) for rank in (1, 2, 3)}
for _rank, _op in TRANSPOSES.items():
    register_keras(f"Conv{_rank}DTranspose", _op)
    register_torch_module(f"ConvTranspose{_rank}d", _op.from_torch)
register_onnx("ConvTranspose", from_onnx_conv_transpose)
