"""Split one axis into consecutive parts: ``torch.split``/``chunk``, ``x[:, a:b]``, Keras' ``ops.split``, ONNX Split.

Model libraries split channels for mixed kernels (MixNet), cross-stage partial blocks (CSPNet) and partial
residuals (ReXNet, ``x[:, :c] + shortcut``). A slice of one axis is a split whose other parts go unused.
"""

from __future__ import annotations

import numpy as np

from ..codetext import literal
from ..errors import ShapeMismatch, Unsupported
from ..ir import Node
from .. import views
from ..relayout import SAME
from .base import Convention, KerasSpec, OpDef
from .crop import CROP, slice_inputs
from .registry import register_keras, register_onnx, register_op, register_torch_function

UNUSED = "/unused"  # the suffix of a part nobody reads


class Split(OpDef):
    input_kind = SAME
    name = "split"
    summary = "Cut one axis (canonical, channels-first: the channel axis is 1) into consecutive parts."
    conventions = {
        "keras": Convention(("ops.split (Split)",), {}, {"sizes": "indices_or_sections: where parts start"}),
        "torch": Convention(("torch.split", "chunk", "x[:, a:b]"), {}, {"sizes": "split_size_or_sections"}),
        "onnx": Convention(("Split", "Slice"), {}, {"sizes": "split input (sizes); one axis's Slice"}),
    }

    def node(self, name, inputs, outputs, axis, sizes, rank) -> Node:
        if len(sizes) == 1:  # x[:, :C] of a C-channel x (GhostNet's): x itself
            from .registry import OPS

            return OPS["identity"].node(name, list(inputs), list(outputs))
        if rank is None:
            raise Unsupported(f"layer '{name}': split needs its input's rank")
        if int(axis) % rank == 0:
            raise Unsupported(f"layer '{name}': splitting the batch axis (axis 0) is not converted")
        return Node(self.name, name, list(inputs), list(outputs),
                    attrs={"axis": int(axis) % rank, "sizes": [int(s) for s in sizes]})

    def output_shapes(self, node, input_shapes):
        shape, axis, sizes = input_shapes[0], node.attrs["axis"], node.attrs["sizes"]
        if shape is None:
            return [None] * len(sizes)
        if shape[axis] is not None and sum(sizes) != shape[axis]:
            raise ShapeMismatch(f"layer '{node.name}': parts {sizes} of axis {axis} do not add up to its size "
                                f"{shape[axis]}")
        return [tuple(size if i == axis else d for i, d in enumerate(shape)) for size in sizes]

    def keras_weight_names(self, config):
        return []

    def from_keras(self, layer):
        layout = layer.input_layouts[0]
        shape = layer.input_shapes[0]
        if layout is None or shape is None:
            raise Unsupported(f"layer '{layer.name}' (Split): needs its input's shape")
        keras_axis = layer.config.get("axis", 0)
        size = views.shape_to(shape, layout, "keras")[keras_axis]
        given = layer.config["indices_or_sections"]
        if isinstance(given, int):
            if size % given:
                raise ShapeMismatch(f"layer '{layer.name}': {given} equal sections of an axis of {size}")
            starts = [size // given * k for k in range(1, given)]
        else:
            starts = list(given)
        bounds = [0, *starts, size]
        sizes = [end - start for start, end in zip(bounds, bounds[1:])]
        axis = views.axis_from(keras_axis, layout, "keras")
        outputs = [layer.outputs[0]] + [f"{layer.outputs[0]}:{index}" for index in range(1, len(sizes))]
        return [self.node(layer.name, layer.inputs, outputs, axis, sizes, len(shape))]

    def to_keras(self, node, graph):
        starts = list(np.cumsum(node.attrs["sizes"])[:-1].astype(int).tolist())
        return KerasSpec("ops.Split", {"indices_or_sections": starts,
                                   "axis": views.axis_to(node.attrs["axis"], graph.layout(node.inputs[0]), "keras")})

    def torch_module(self, node, graph):
        return None

    def torch_forward(self, node, graph, module, args):
        return f"torch.split({args[0]}, {literal(node.attrs['sizes'])}, dim={literal(node.attrs['axis'])})"

    def torch_unpack(self, node, result):
        return [f"{result}[{index}]" for index in range(len(node.outputs))]

    def from_torch_function(self, call):
        """``torch.split(x, size or sizes, dim)``, ``x.chunk(n, dim)``: outputs are the parts (reader.py names
        them after the items taken from the result)."""
        shape = call.input_shapes[0]
        if shape is None:
            raise Unsupported(f"'{call.name}': {call.function} needs its input's shape")
        axis = call.argument("dim", 2, 0) % len(shape)
        size = shape[axis]
        if call.function in ("chunk", "torch.chunk"):
            step = -(-size // call.argument("chunks", 1, None))  # torch.chunk: parts of ceil(size / n)
        else:
            step = call.argument("split_size_or_sections", 1, call.kwargs.get("split_size"))
        sizes = list(step) if isinstance(step, (list, tuple)) else \
            [min(step, size - start) for start in range(0, size, step)]
        return [self.node(call.name, call.inputs[:1], _parts(call, len(sizes)), axis, sizes, len(shape))]

    def from_torch_slice(self, call):
        """``x[:, a:b]`` (or ``x[..., a:b]`` over any one axis but the batch): the middle part of a split."""
        shape, index = call.input_shapes[0], call.args[1] if len(call.args) > 1 else None
        axis_slice = _one_axis_slice(index, shape)
        if axis_slice is None:
            return None
        return [self.slice_node(call.name, call.inputs[0], call.outputs[0], shape, *axis_slice)]

    def slice_node(self, name, source, output, shape, axis, start, stop) -> Node:
        """``source[start:stop]`` along ``axis`` as the middle part of a split; the parts around it go unused."""
        parts = [(start, f"{name}{UNUSED}0"), (stop - start, output), (shape[axis] - stop, f"{name}{UNUSED}1")]
        parts = [(size, part) for size, part in parts if size > 0]
        return self.node(name, [source], [part for _, part in parts], axis, [size for size, _ in parts], len(shape))

    def to_onnx(self, node, builder):
        sizes = builder.initializer(f"{node.name}.split", np.array(node.attrs["sizes"], dtype=np.int64))
        builder.node("Split", [node.inputs[0], sizes], node.outputs, node.name, axis=node.attrs["axis"])

    def from_onnx(self, onnx_node, context):
        name, shape = context.name(onnx_node), context.shape(onnx_node.input[0])
        attrs = context.attrs(onnx_node)
        axis = attrs.get("axis", 0) % len(shape) if shape else 0
        if shape is None or shape[axis] is None:
            raise Unsupported(f"Split '{name}': needs the size of the axis it splits")
        if len(onnx_node.input) > 1 and onnx_node.input[1]:
            sizes = [int(s) for s in context.weight(onnx_node, 1)]
        elif "split" in attrs:
            sizes = list(attrs["split"])
        else:
            count = len(onnx_node.output)
            step = -(-shape[axis] // count)  # opset 18: the last part may be smaller
            sizes = [min(step, shape[axis] - start) for start in range(0, shape[axis], step)]
        return [self.node(name, list(onnx_node.input[:1]), list(onnx_node.output), axis, sizes, len(shape))]


def _parts(call, count: int) -> list[str]:
    """The output name of each part: the item a user takes (``call.outputs``: index -> name, negative indices
    counted from the end), else a name of its own."""
    taken = {}
    for index, name in call.outputs.items():
        if not -count <= index < count:
            raise ShapeMismatch(f"'{call.name}': part {index} of {call.function} is taken, but it makes {count}")
        if taken.setdefault(index % count, name) != name:
            raise Unsupported(f"'{call.name}': part {index % count} is taken twice (as {taken[index % count]} and "
                              f"{name}); not converted")
    return [taken.get(k, f"{call.name}{UNUSED}{k}") for k in range(count)]


def _one_axis_slice(index, shape):
    """(axis, start, stop) when ``index`` slices one axis other than the batch with step 1, every other whole."""
    if shape is None or not isinstance(index, tuple) or len(index) > len(shape) or \
            not all(isinstance(part, slice) for part in index):
        return None
    whole = slice(None, None, None)
    cut = [axis for axis, part in enumerate(index) if part != whole]
    if len(cut) != 1 or cut[0] == 0 or index[cut[0]].step not in (None, 1) or shape[cut[0]] is None:
        return None
    axis, size = cut[0], shape[cut[0]]
    start, stop, _ = index[axis].indices(size)
    return (axis, start, stop) if 0 <= start < stop <= size else None


def read_onnx_slice(onnx_node, context):
    """ONNX Slice: a crop of every spatial axis, else a slice of one axis with step 1 (torch.onnx's chunk)."""
    try:
        return CROP.from_onnx(onnx_node, context)
    except Unsupported:
        name, shape = context.name(onnx_node), context.shape(onnx_node.input[0])
        starts, ends, axes, steps = slice_inputs(onnx_node, context)
        if shape is None or len(starts) != 1 or (steps and steps != [1]):
            raise
        axis = (axes or [0])[0] % len(shape)
        index = tuple(slice(starts[0], ends[0]) if a == axis else slice(None) for a in range(len(shape)))
        axis_slice = _one_axis_slice(index, shape)
        if axis_slice is None:
            raise
        return [SPLIT.slice_node(name, onnx_node.input[0], onnx_node.output[0], shape, *axis_slice)]


def read_indexing(call):
    """``x[...]``: a crop of every spatial axis (what a transposed conv's padding reads back as), else a slice of
    one axis, else one step (``x[:, 0]``)."""
    from .select import SELECT

    try:
        return CROP.from_torch_function(call)
    except Unsupported:
        read = SPLIT.from_torch_slice(call) or SELECT.from_torch_index(call)
        if read is None:
            raise
        return read


SPLIT = register_op(Split())
register_keras("ops.Split", SPLIT)
register_onnx("Split", SPLIT.from_onnx)
for _function in ("torch.functional.split", "split", "chunk", "torch.chunk"):
    register_torch_function(_function, SPLIT.from_torch_function)
register_torch_function("operator.getitem", read_indexing)
register_onnx("Slice", read_onnx_slice)
