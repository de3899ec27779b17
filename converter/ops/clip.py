"""Clip to bounds other than relu6's: min(max(x, low), high), either bound optional (torch.clamp, F.hardtanh,
ONNX Clip, Keras 3's ops.clip). Clip(0, 6) stays relu6, which every framework has as a layer."""

from __future__ import annotations

import numpy as np

from ..codetext import literal
from ..errors import Unsupported
from ..ir import Node
from .base import Convention, KerasSpec, OpDef
from .registry import register_keras, register_op, register_torch_function, register_torch_module


class Clip(OpDef):
    name = "clip"
    elementwise = True
    summary = "min(max(x, low), high); a bound may be absent."
    conventions = {
        "keras": Convention(("ops.clip (Clip)",), {}, {"bounds": "x_min, x_max"}),
        "torch": Convention(("torch.clamp", "F.hardtanh", "Hardtanh"), {}, {"bounds": "min, max"}),
        "onnx": Convention(("Clip",), {}, {"bounds": "min, max inputs (attributes before opset 11)"}),
    }

    def node(self, name, inputs, outputs, low, high) -> Node:
        if low is None and high is None:
            raise Unsupported(f"layer '{name}': a clip with no bounds")
        if low is not None and high is not None and low > high:
            raise Unsupported(f"layer '{name}': clip bounds {low} > {high}, which frameworks order differently")
        return Node(self.name, name, list(inputs), list(outputs),
                    attrs={"low": None if low is None else float(low), "high": None if high is None else float(high)})

    def keras_weight_names(self, config):
        return []

    def from_keras(self, layer):
        return [self.node(layer.name, layer.inputs, layer.outputs, layer.config.get("x_min"), layer.config.get("x_max"))]

    def to_keras(self, node, graph):
        low, high = node.attrs["low"], node.attrs["high"]
        return KerasSpec("ops.Clip", {"x_min": float("-inf") if low is None else low,
                                      "x_max": float("inf") if high is None else high})

    def torch_module(self, node, graph):
        return None

    def torch_forward(self, node, graph, module, args):
        bounds = [f"{key}={literal(node.attrs[attr])}" for key, attr in (("min", "low"), ("max", "high"))
                  if node.attrs[attr] is not None]
        return f"torch.clamp({args[0]}, {', '.join(bounds)})"

    def from_torch_function(self, call):
        if call.function in ("torch.nn.functional.hardtanh",):
            low, high = call.argument("min_val", 1, -1.0), call.argument("max_val", 2, 1.0)
        else:
            low, high = call.argument("min", 1, None), call.argument("max", 2, None)
        if not all(bound is None or isinstance(bound, (int, float)) for bound in (low, high)):
            raise Unsupported(f"'{call.name}': {call.function} with tensor bounds; only numbers convert")
        return [self.node(call.name, call.inputs[:1], call.outputs, low, high)]

    def from_torch(self, layer):
        return [self.node(layer.name, layer.inputs, layer.outputs, layer.module.min_val, layer.module.max_val)]

    def to_onnx(self, node, builder):
        inputs = [node.inputs[0]]
        for attr in ("low", "high"):
            value = node.attrs[attr]
            inputs.append("" if value is None else builder.initializer(f"{node.name}.{attr}", np.float32(value)))
        while inputs[-1] == "":
            inputs.pop()
        builder.node("Clip", inputs, node.outputs, node.name)

    def from_onnx_bounds(self, onnx_node, context, bounds):
        return [self.node(context.name(onnx_node), [onnx_node.input[0]], list(onnx_node.output), *bounds)]


CLIP = register_op(Clip())
register_keras("ops.Clip", CLIP)
for _function in ("torch.clamp", "clamp", "torch.clip", "clip", "torch.nn.functional.hardtanh"):
    register_torch_function(_function, CLIP.from_torch_function)
register_torch_module("Hardtanh", CLIP.from_torch)
