"""Upsampling by integer factors: nearest (copies) and bilinear with half-pixel centers.

Keras' bilinear UpSampling2D is TensorFlow's resize with half-pixel centers, which is torch's
``align_corners=False`` and ONNX Resize's 'half_pixel'; ``align_corners=True`` has no Keras
equivalent and is refused.
"""

from __future__ import annotations

import numpy as np

from ..codetext import literal
from ..errors import Unsupported
from ..ir import Node
from .base import Convention, KerasSpec, OpDef
from .registry import register_keras, register_onnx, register_op, register_torch_function, register_torch_module
from .. import views

ONNX_MODES = {"nearest": "nearest", "bilinear": "linear"}


class Upsample(OpDef):
    name = "upsample"
    input_kind = views.CHANNELS_FIRST
    summary = "Enlarge each spatial axis by an integer factor: nearest copies, or bilinear (half-pixel centers)."
    conventions = {
        "keras": Convention(("UpSampling1D", "UpSampling2D", "UpSampling3D"), {},
                            {"scale": "size", "mode": "interpolation='nearest' | 'bilinear' (2D)"}),
        "torch": Convention(("Upsample", "F.interpolate"), {},
                            {"scale": "scale_factor", "mode": "mode='nearest' | 'bilinear', align_corners=False"}),
        "onnx": Convention(("Resize",), {}, {"scale": "scales input",
                                            "mode": "nearest (asymmetric, floor; or half_pixel, round) | "
                                                    "linear (half_pixel)"}),
    }

    def output_shapes(self, node, input_shapes):
        shape = input_shapes[0]
        if shape is None:
            return [None]
        scale = node.attrs["scale"]
        if len(shape) != len(scale) + 2:
            raise Unsupported(f"layer '{node.name}': scale {scale} does not fit an input of shape {shape}")
        return [(*shape[:2], *[None if s is None else s * f for s, f in zip(shape[2:], scale)])]

    def node(self, name, inputs, outputs, scale, mode) -> Node:
        if mode not in ONNX_MODES:
            raise Unsupported(f"layer '{name}': interpolation '{mode}' is not supported (nearest, bilinear are)")
        scale = [float(f) for f in scale]
        if any(f != int(f) or f < 1 for f in scale):
            raise Unsupported(f"layer '{name}': scale {scale}; only whole factors convert")
        return Node(self.name, name, inputs, outputs, attrs={"scale": [int(f) for f in scale], "mode": mode})

    def keras_weight_names(self, config):
        return []

    def from_keras(self, layer):
        rank = int(layer.class_name[-2])
        size = layer.config.get("size", 2)
        scale = [size] * rank if isinstance(size, int) else list(size)
        return [self.node(layer.name, layer.inputs, layer.outputs, scale, layer.config.get("interpolation", "nearest"))]

    def to_keras(self, node, graph):
        scale, mode = node.attrs["scale"], node.attrs["mode"]
        if len(scale) != 2 and mode != "nearest":
            raise Unsupported(f"layer '{node.name}': Keras interpolates only 2-D upsampling ({mode})")
        config = {"size": scale[0] if len(scale) == 1 else scale}
        if len(scale) == 2:
            config["interpolation"] = mode
        return KerasSpec(f"UpSampling{len(scale)}D", config)

    def torch_module(self, node, graph):
        scale, mode = node.attrs["scale"], node.attrs["mode"]
        factor = scale[0] if len(set(scale)) == 1 else tuple(scale)
        corners = ", align_corners=False" if mode == "bilinear" else ""
        return f"nn.Upsample(scale_factor={literal(factor)}, mode={literal(mode)}{corners})"

    def from_torch(self, layer):
        module = layer.module
        return [self._from_torch_options(layer.name, layer.inputs, layer.outputs, layer.input_shapes[0],
                                         module.scale_factor, module.size, module.mode, module.align_corners)]

    def from_torch_function(self, call):
        options = [call.argument(key, index, None) for index, key in
                   enumerate(("size", "scale_factor", "mode", "align_corners"), start=1)]
        options[2] = options[2] or "nearest"
        return [self._from_torch_options(call.name, call.inputs[:1], call.outputs, call.input_shapes[0],
                                         options[1], options[0], options[2], options[3])]

    def _from_torch_options(self, name, inputs, outputs, shape, scale, size, mode, align_corners):
        if size is not None or scale is None:
            raise Unsupported(f"layer '{name}': upsampling to a fixed size; give scale_factor")
        if mode == "bilinear" and align_corners:
            raise Unsupported(f"layer '{name}': align_corners=True has no Keras or half-pixel equivalent")
        rank = len(shape) - 2 if shape else 2
        scale = [scale] * rank if isinstance(scale, (int, float)) else list(scale)
        return self.node(name, inputs, outputs, scale, mode)

    def to_onnx(self, node, builder):
        scales = builder.initializer(f"{node.name}.scales", np.array([1, 1, *node.attrs["scale"]], dtype=np.float32))
        nearest = node.attrs["mode"] == "nearest"
        extra = {"nearest_mode": "floor"} if nearest else {}
        builder.node("Resize", [node.inputs[0], "", scales], node.outputs, node.name,
                     mode=ONNX_MODES[node.attrs["mode"]],
                     coordinate_transformation_mode="asymmetric" if nearest else "half_pixel", **extra)

    def from_onnx(self, onnx_node, context):
        attrs = context.attrs(onnx_node)
        name = context.name(onnx_node)
        mode = {"nearest": "nearest", "linear": "bilinear"}.get(attrs.get("mode", "nearest"))
        transform = attrs.get("coordinate_transformation_mode", "half_pixel")
        # For a whole factor s, output i of a half-pixel nearest Resize reads k + (r - (s - 1) / 2) / s, for i = k s + r:
        # within half a pixel of k, so either rounding gives k, which is what asymmetric + floor (torch) gives.
        halves = {(transform, rounding) for transform in ("half_pixel", "pytorch_half_pixel")
                  for rounding in ("round_prefer_floor", "round_prefer_ceil")}
        exact = {"nearest": {("asymmetric", "floor")} | halves,
                 "bilinear": {("half_pixel", None), ("pytorch_half_pixel", None)}}
        key = (transform, attrs.get("nearest_mode", "round_prefer_floor") if mode == "nearest" else None)
        if mode is None or key not in exact[mode]:
            raise Unsupported(f"Resize '{name}': mode={attrs.get('mode')} with {key} is not supported")
        if len(onnx_node.input) < 3 or not onnx_node.input[2]:
            raise Unsupported(f"Resize '{name}': only scales (not sizes) convert")
        scales = [float(s) for s in context.weight(onnx_node, 2)]
        if scales[:2] != [1.0, 1.0]:
            raise Unsupported(f"Resize '{name}': scales {scales} resize the batch or channel axis")
        return [self.node(name, [onnx_node.input[0]], list(onnx_node.output), scales[2:], mode)]


UPSAMPLE = register_op(Upsample())
for _rank in (1, 2, 3):
    register_keras(f"UpSampling{_rank}D", UPSAMPLE)
register_torch_module("Upsample", UPSAMPLE.from_torch)
register_torch_function("torch.nn.functional.interpolate", UPSAMPLE.from_torch_function)
register_onnx("Resize", UPSAMPLE.from_onnx)
