"""Cropping of the spatial axes: Cropping1D/2D/3D (Keras), slicing (torch), Slice (ONNX).

A crop right after a transposed convolution is folded into that convolution's own crop
(``passes.py``), which is how torch's padding/output_padding reaches Keras and back.
"""

from __future__ import annotations

import numpy as np

from ..errors import Unsupported
from ..ir import Node
from . import padding
from .base import Convention, KerasSpec, OpDef
from .registry import register_keras, register_op
from .. import views


class Crop(OpDef):
    name = "crop"
    input_kind = views.CHANNELS_FIRST
    summary = "Remove rows at the beginning and end of each spatial axis; crop is (begins..., ends...)."
    conventions = {
        "keras": Convention(("Cropping1D", "Cropping2D", "Cropping3D"), {},
                            {"crop": "cropping=((top, bottom), (left, right))"}),
        "torch": Convention(("x[:, :, b:-e]",), {}, {"crop": "slicing of the spatial axes, step 1"}),
        "onnx": Convention(("Slice",), {}, {"crop": "starts/ends on the spatial axes, steps 1"}),
    }

    def output_shapes(self, node, input_shapes):
        return [padding.grow(node.name, input_shapes[0], [-c for c in node.attrs["crop"]])]

    def node(self, name, inputs, outputs, crop) -> Node:
        return Node(self.name, name, inputs, outputs, attrs={"crop": [int(c) for c in crop]})

    def keras_weight_names(self, config):
        return []

    def from_keras(self, layer):
        crop = padding.from_keras_pairs(layer.config["cropping"], int(layer.class_name[-2]))
        return [self.node(layer.name, layer.inputs, layer.outputs, crop)]

    def to_keras(self, node, graph):
        crop = node.attrs["crop"]
        return KerasSpec(f"Cropping{len(crop) // 2}D", {"cropping": padding.to_keras_pairs(crop)})

    def torch_module(self, node, graph):
        return None

    def torch_forward(self, node, graph, module, args):
        crop = node.attrs["crop"]
        n = len(crop) // 2
        crop = [int(c) for c in crop]
        slices = [f"{crop[i] or ''}:{-crop[n + i] if crop[n + i] else ''}" for i in range(n)]
        return f"{args[0]}[:, :, {', '.join(slices)}]"

    def to_onnx(self, node, builder):
        crop = node.attrs["crop"]
        n = len(crop) // 2
        shape = builder.graph.shape(node.inputs[0])
        ends = [size - crop[n + i] for i, size in enumerate(shape[2:])]
        constants = [builder.initializer(f"{node.name}.{key}", np.array(values, dtype=np.int64))
                     for key, values in (("starts", crop[:n]), ("ends", ends), ("axes", list(range(2, n + 2))))]
        builder.node("Slice", [node.inputs[0], *constants], node.outputs, node.name)

    def from_onnx(self, onnx_node, context):
        name = context.name(onnx_node)
        shape = context.shape(onnx_node.input[0])
        starts, ends, axes, steps = slice_inputs(onnx_node, context)
        rank = len(shape) if shape else 0
        axes = [a % rank for a in (axes or range(len(starts)))] if rank else []
        if not axes or sorted(axes) != list(range(2, rank)) or (steps and any(s != 1 for s in steps)):
            raise Unsupported(f"Slice '{name}': only slicing every spatial axis with step 1 converts")
        by_axis = {a: (b, e) for a, b, e in zip(axes, starts, ends)}
        sizes = shape[2:]
        begins = [max(by_axis[a][0], 0) for a in range(2, rank)]
        stops = [min(by_axis[a][1] if by_axis[a][1] >= 0 else size + by_axis[a][1], size)
                 for a, size in zip(range(2, rank), sizes)]
        crop = begins + [size - stop for size, stop in zip(sizes, stops)]
        return [self.node(name, [onnx_node.input[0]], list(onnx_node.output), crop)]


    def from_torch_function(self, call):
        """``x[:, :, b:-e, ...]``: every spatial axis sliced with step 1, batch and channels whole."""
        shape = call.input_shapes[0]
        index = call.args[1] if len(call.args) > 1 else None
        whole = slice(None, None, None)
        if shape is None or not isinstance(index, tuple) or len(index) != len(shape) or index[:2] != (whole, whole) \
                or not all(isinstance(s, slice) and s.step in (None, 1) for s in index[2:]):
            raise Unsupported(f"'{call.name}': indexing {index!r}; only x[:, :, b:e, ...] crops of every spatial "
                              "axis convert")
        begins, ends = [], []
        for part, size in zip(index[2:], shape[2:]):
            start, stop = part.start or 0, part.stop
            if start < 0 or (stop is not None and stop >= 0 and size is None):
                raise Unsupported(f"'{call.name}': slice {part} needs a known size and a non-negative start")
            begins.append(start)
            ends.append(0 if stop is None else -stop if stop < 0 else size - stop)
        return [self.node(call.name, call.inputs[:1], call.outputs, begins + ends)]


def slice_inputs(onnx_node, context) -> list:
    """An ONNX Slice's starts, ends, axes and steps (constants; None where absent)."""
    return [[int(v) for v in context.weight(onnx_node, i)] if len(onnx_node.input) > i and onnx_node.input[i]
            else None for i in range(1, 5)]


CROP = register_op(Crop())
for _rank in (1, 2, 3):
    register_keras(f"Cropping{_rank}D", CROP)
