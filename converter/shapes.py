"""Shape inference over the IR: every param is checked against the tensor it meets."""

from __future__ import annotations

from .errors import Unsupported
from .ir import Graph, Value
from .ops import OPS


def finish(graph: Graph) -> Graph:
    """Check the wiring, then infer every value's shape (raising on params that do not fit)."""
    graph.check()
    unknown = sorted({node.op for node in graph.nodes if node.op not in OPS})
    if unknown:
        raise Unsupported(f"unknown ops {unknown}")
    graph.values = {value.name: value for value in graph.inputs}
    for node in graph.nodes:
        shapes = OPS[node.op].output_shapes(node, [graph.shape(name) for name in node.inputs])
        for name, shape in zip(node.outputs, shapes):
            graph.values[name] = Value(name, None if shape is None else tuple(shape))
    return graph
