"""IR -> a checked ``.onnx`` (opset 20: Gelu is one op there). Weights are permuted ahead of time."""

from __future__ import annotations

import numpy as np

from ...frameworks import require
from ...ir import Graph
from ...ops import OPS
from ...outputs import atomic_path

OPSET = 20


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


def build(graph: Graph):
    """The IR as a checked ModelProto."""
    onnx = require("onnx")
    builder = Builder(onnx, graph)
    for node in graph.nodes:
        OPS[node.op].to_onnx(node, builder)
    model = onnx.helper.make_model(
        onnx.helper.make_graph(builder.nodes, _name(graph), [_info(onnx, graph, v.name) for v in graph.inputs],
                               [_info(onnx, graph, name) for name in graph.outputs], builder.initializers),
        opset_imports=[onnx.helper.make_opsetid("", OPSET)],
        producer_name="wconv",
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def write(graph: Graph, path) -> None:
    onnx = require("onnx")
    model = build(graph)
    with atomic_path(path) as temp:
        onnx.save(model, temp)


def _info(onnx, graph: Graph, name: str):
    shape = graph.shape(name)
    dims = None if shape is None else ["N" if d is None else int(d) for d in shape]
    return onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, dims)


def _name(graph: Graph) -> str:
    return graph.name or "wconv"
