"""Zero padding of the spatial axes: ZeroPadding (Keras), ZeroPad / F.pad (torch), Pad (ONNX)."""

from __future__ import annotations

import numpy as np

from ..codetext import literal
from ..errors import BadInput, Unsupported
from ..ir import Node
from . import padding
from .base import Convention, KerasSpec, OpDef
from .registry import register_keras, register_onnx, register_op, register_torch_function, register_torch_module
from .. import views


class Pad(OpDef):
    name = "pad"
    input_kind = views.CHANNELS_FIRST
    summary = "Constant padding (0, or -inf before max pooling) of the spatial axes; pads are (begins..., ends...)."
    elementwise = False
    conventions = {
        "keras": Convention(("ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "ops.pad (Pad)"), {},
                            {"pads": "padding=((top, bottom), (left, right))"}),
        "torch": Convention(("ZeroPad1d", "ZeroPad2d", "ZeroPad3d", "F.pad"), {},
                            {"pads": "(left, right, top, bottom): last axis first"}),
        "onnx": Convention(("Pad",), {}, {"pads": "pads input over all axes, mode='constant'"}),
    }

    def output_shapes(self, node, input_shapes):
        return [padding.grow(node.name, input_shapes[0], node.attrs["pads"])]

    def node(self, name, inputs, outputs, pads, value=0.0) -> Node:
        value = float(value or 0.0)
        if value not in (0.0, float("-inf")):
            raise Unsupported(f"layer '{name}': padding with {value} is not supported; only 0 (or -inf before "
                              "max pooling)")
        return Node(self.name, name, inputs, outputs, attrs={"pads": [int(p) for p in pads], "value": value})

    # -- Keras ------------------------------------------------------------------------
    def keras_weight_names(self, config):
        return []

    def from_keras(self, layer):
        if layer.class_name == "ops.Pad":
            return self._from_keras_op(layer)
        pads = padding.from_keras_pairs(layer.config["padding"], int(layer.class_name[-2]))
        return [self.node(layer.name, layer.inputs, layer.outputs, pads)]

    def _from_keras_op(self, layer):
        """Keras 3's ``ops.pad`` node (channels-last ``pad_width`` over every axis, the fill value a call option)."""
        widths = layer.config.get("pad_width")
        if layer.config.get("mode", "constant") != "constant" or not isinstance(widths, list) or len(widths) < 3 \
                or any(not isinstance(w, list) or len(w) != 2 for w in widths):
            raise Unsupported(f"layer '{layer.name}' (ops.pad): mode {layer.config.get('mode')!r}, pad_width "
                              f"{str(widths)[:80]}; only constant padding of the spatial axes converts")
        if widths[0] != [0, 0] or widths[-1] != [0, 0]:
            raise Unsupported(f"layer '{layer.name}' (ops.pad): pads the batch or channel axis ({widths})")
        pads = padding.from_keras_pairs(widths[1:-1], len(widths) - 2)
        return [self.node(layer.name, layer.inputs, layer.outputs, pads, layer.call_options.get("constant_values"))]

    def to_keras(self, node, graph):
        """ZeroPadding; a negative pad (torch's ZeroPad2d((-1, 1, -1, 1)), NASNet's shift) crops that end first."""
        pads, rank = node.attrs["pads"], len(node.attrs["pads"]) // 2
        if min(pads) < 0 and node.attrs["value"] != 0.0:
            raise Unsupported(f"layer '{node.name}': -inf padding with negative pads {pads} has no Keras layer")
        if node.attrs["value"] != 0.0:  # -inf, before a max pool that does not take these pads itself
            return neg_inf_pad(pads)
        grown = KerasSpec(f"ZeroPadding{rank}D", {"padding": padding.to_keras_pairs([max(p, 0) for p in pads])})
        if min(pads) < 0:
            grown.pre = KerasSpec(f"Cropping{rank}D", {"cropping": padding.to_keras_pairs([max(-p, 0) for p in pads])})
        return grown

    # -- torch ------------------------------------------------------------------------
    def torch_module(self, node, graph):
        return None

    def torch_forward(self, node, graph, module, args):
        value = ", value=float('-inf')" if node.attrs["value"] else ""
        return f"F.pad({args[0]}, {literal(padding.torch_pad_order(node.attrs['pads']))}{value})"

    def from_torch(self, layer):
        return [self.node(layer.name, layer.inputs, layer.outputs,
                          padding.from_torch_pad_order(list(layer.module.padding)))]

    def from_torch_function(self, call):
        mode, value = call.argument("mode", 2, "constant"), call.argument("value", 3, None)
        if mode != "constant":
            raise Unsupported(f"'{call.name}': F.pad(mode={mode!r}) is not supported; only constant padding")
        pad = list(call.argument("pad", 1, None))
        rank = len(call.input_shapes[0]) if call.input_shapes and call.input_shapes[0] else None
        if rank is not None and len(pad) != 2 * (rank - 2):
            raise Unsupported(f"'{call.name}': F.pad over {len(pad) // 2} axes; only the spatial axes convert")
        return [self.node(call.name, call.inputs[:1], call.outputs, padding.from_torch_pad_order(pad), value)]

    # -- ONNX -------------------------------------------------------------------------
    def to_onnx(self, node, builder):
        pads = node.attrs["pads"]
        n = len(pads) // 2
        full = [0, 0, *pads[:n], 0, 0, *pads[n:]]
        name = builder.initializer(f"{node.name}.pads", np.array(full, dtype=np.int64))
        value = builder.initializer(f"{node.name}.value", np.array(node.attrs["value"], dtype=np.float32))
        builder.node("Pad", [node.inputs[0], name, value], node.outputs, node.name, mode="constant")

    def from_onnx(self, onnx_node, context):
        attrs = context.attrs(onnx_node)
        name = context.name(onnx_node)
        if attrs.get("mode", "constant") != "constant":
            raise Unsupported(f"Pad '{name}': mode={attrs['mode']} is not supported; only zero padding")
        if len(onnx_node.input) < 2 or not onnx_node.input[1]:  # opset < 11: pads and value are attributes
            if "pads" not in attrs:
                raise BadInput(f"Pad '{name}': no pads (neither an input nor an attribute)")
            full, value = [int(p) for p in attrs["pads"]], float(attrs.get("value", 0.0))
        else:
            full = [int(p) for p in context.weight(onnx_node, 1)]
            value = float(context.weight(onnx_node, 2)) if len(onnx_node.input) > 2 and onnx_node.input[2] else 0.0
        n = len(full) // 2
        if full[:2] != [0, 0] or full[n:n + 2] != [0, 0]:
            raise Unsupported(f"Pad '{name}': only padding of the spatial axes converts, found pads {full}")
        return [self.node(name, [onnx_node.input[0]], list(onnx_node.output), full[2:n] + full[n + 2:], value)]


def neg_inf_pad(pads) -> KerasSpec:
    """Keras 3's ``ops.pad`` node filling with -inf (Keras' padding layers fill with zeros only)."""
    n = len(pads) // 2
    pairs = [[int(pads[i]), int(pads[n + i])] for i in range(n)]
    return KerasSpec("ops.Pad", {"pad_width": [[0, 0], *pairs, [0, 0]], "mode": "constant"},
                     call_options={"constant_values": float("-inf")})


PAD = register_op(Pad())
register_keras("ops.Pad", PAD)
for _rank in (1, 2, 3):
    register_keras(f"ZeroPadding{_rank}D", PAD)
    register_torch_module(f"ZeroPad{_rank}d", PAD.from_torch)
register_torch_function("torch.nn.functional.pad", PAD.from_torch_function)
register_onnx("Pad", PAD.from_onnx)
