"""IR -> a checked ``.onnx`` (opset 20: Gelu is one op there). Weights are permuted ahead of time.

A model is one protobuf message, which cannot be serialized at 2 GiB or more. Past ``INLINE_LIMIT`` bytes of
weights (or when asked, ``--external-data``), every tensor of ``EXTERNAL_MIN`` bytes or more goes to
``<name>.onnx.data`` beside the model, as the ONNX spec's external data (location, offset, length; what
onnxruntime, onnx and wconv's reader read), and the model's structure is checked without them.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np

from ...progress import steps
from ...frameworks import require
from ...ir import Graph
from ... import views
from ...ops import OPS
from ...outputs import atomic_path, refuse_existing

OPSET = 20
INLINE_LIMIT = 2 ** 31 - 2 ** 27  # bytes of weights a model file holds itself: 2 GiB less room for the rest
EXTERNAL_MIN = 1024  # smaller tensors (the constants op writers add) stay in the model
ALIGNMENT = 4096  # each external tensor starts at a multiple: a page, as onnx aligns them for mapping


class Builder:
    """Collects ONNX nodes and initializers as op writers emit them."""

    def __init__(self, onnx, graph: Graph):
        self.onnx = onnx
        self.graph = graph  # for shapes: op writers may need their input's rank
        self.nodes, self.initializers = [], []

    def initializer(self, name: str, array) -> str:
        from onnx import numpy_helper

        # np.require keeps 0-d arrays 0-d (Clip's bounds must be scalars); ascontiguousarray would not.
        self.initializers.append(numpy_helper.from_array(np.require(array, requirements="C"), name))
        return name

    def node(self, op_type: str, inputs, outputs, name: str, **attrs) -> None:
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), list(outputs), name=name, **attrs))


def build(graph: Graph, check: bool = True):
    """The IR as a ModelProto, checked (the full check) unless ``check`` is False."""
    onnx = require("onnx")
    builder = Builder(onnx, graph)
    for node in steps(graph.nodes, "writing ONNX nodes"):
        OPS[node.op].to_onnx(node, builder)
    if graph.channels_last_interface():
        _transpose_interface(builder, graph)
    model = onnx.helper.make_model(
        onnx.helper.make_graph(builder.nodes, _name(graph), [_info(onnx, graph, v.name) for v in graph.inputs],
                               [_info(onnx, graph, name) for name in graph.outputs], builder.initializers),
        opset_imports=[onnx.helper.make_opsetid("", OPSET)],
        producer_name="wconv",
    )
    onnx.helper.set_model_props(model, {"wconv_interface": graph.interface or "channels_first"})
    if check:
        onnx.checker.check_model(model, full_check=True)
    return model


def _transpose_interface(builder: Builder, graph: Graph) -> None:
    """One Transpose at each input and output that the interface holds otherwise than the IR."""
    for value in graph.inputs:
        order = _interface_order(graph, value.name)
        if order != sorted(order):
            inner = f"{value.name}/ir_order"
            _rename(builder.nodes, value.name, inner, outputs=False)
            builder.nodes.insert(0, builder.onnx.helper.make_node(
                "Transpose", [value.name], [inner], name=f"{value.name}/to_ir_order", perm=[int(a) for a in np.argsort(order)]))
    for name in graph.outputs:
        order = _interface_order(graph, name)
        if order != sorted(order):
            inner = f"{name}/ir_order"
            _rename(builder.nodes, name, inner, outputs=True)
            builder.node("Transpose", [inner], [name], f"{name}/to_interface", perm=order)


def _interface_order(graph: Graph, value: str) -> list[int]:
    pattern = graph.layout(value)
    return list(range(len(graph.shape(value)))) if pattern is None else views.order(pattern, graph.interface_view("onnx"))


def _rename(nodes, old: str, new: str, outputs: bool) -> None:
    for node in nodes:
        names = node.output if outputs else node.input
        for index, name in enumerate(names):
            if name == old:
                names[index] = new
        if outputs:
            for index, name in enumerate(node.input):
                if name == old:
                    node.input[index] = new


def write(graph: Graph, path: str | PathLike, external_data: bool = False) -> list[Path]:
    """Write the IR as an opset-20 ``.onnx`` file, checked with ``onnx.checker`` (full check); past INLINE_LIMIT
    bytes of weights, or with ``external_data``, the weights in ``<name>.data`` beside it. Returns the files
    written besides ``path``."""
    onnx = require("onnx")
    model = build(graph, check=False)
    if not external_data and not too_big(model):
        onnx.checker.check_model(model, full_check=True)
        with atomic_path(path) as temp:
            onnx.save(model, temp)
        return []
    data = Path(path).with_name(f"{Path(path).name}.data")
    refuse_existing(data)
    with atomic_path(data) as temp_data, atomic_path(path) as temp:
        moved = _move_out(model, temp_data)
        _locate(moved, Path(temp_data).name)  # the temps checked together (the checker finds the data by name)
        onnx.save(model, temp)
        onnx.checker.check_model(temp, full_check=True)
        _locate(moved, data.name)  # then the name the data file gets beside the model
        onnx.save(model, temp)
    return [data]


def too_big(model) -> bool:
    """Whether the weights ``model`` holds in itself are past INLINE_LIMIT (it would not serialize whole)."""
    return sum(len(tensor.raw_data) for tensor in model.graph.initializer) > INLINE_LIMIT


def _move_out(model, data_path) -> list:
    """Each initializer of EXTERNAL_MIN bytes or more written to ``data_path`` (aligned), its bytes dropped from the
    model; returns them with their (offset, length)."""
    from onnx import TensorProto

    moved = []
    with open(data_path, "wb") as data:
        for tensor in model.graph.initializer:
            if len(tensor.raw_data) < EXTERNAL_MIN:
                continue
            offset = -data.tell() % ALIGNMENT + data.tell()
            data.seek(offset)
            data.write(tensor.raw_data)
            moved.append((tensor, offset, len(tensor.raw_data)))
            tensor.data_location = TensorProto.EXTERNAL
            tensor.ClearField("raw_data")
    return moved


def _locate(moved: list, location: str) -> None:
    """Where each moved tensor's bytes are: ``location`` (a bare file name in the model's folder), offset, length."""
    for tensor, offset, length in moved:
        del tensor.external_data[:]
        for key, value in (("location", location), ("offset", str(offset)), ("length", str(length))):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value


def _info(onnx, graph: Graph, name: str):
    view = graph.interface_view("onnx")
    shape, pattern = views.shape_to(graph.shape(name), graph.layout(name), view), graph.layout(name)
    letters = views.axes(views.view(pattern, view)) if pattern else ["n"] * len(shape or ())
    # A size the source leaves free is a named dynamic axis: N for the batch, T for time, ...
    dims = None if shape is None else [letter.upper() if d is None else int(d) for d, letter in zip(shape, letters)]
    value = graph.values.get(name)
    dtype = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(value.dtype if value is not None else "float32"))
    return onnx.helper.make_tensor_value_info(name, dtype, dims)


def _name(graph: Graph) -> str:
    return graph.name or "wconv"
