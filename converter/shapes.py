"""Shape inference over the IR: every param is checked against the tensor it meets."""

from __future__ import annotations

from .errors import Unsupported
from .ir import Graph, Value
from .ops import OPS
from .passes import fold_crops, fold_pads


class Shapes:
    """Canonical shapes of the values seen so far, for readers that need them while reading."""

    def __init__(self, inputs):
        self.known = {value.name: value.shape for value in inputs}

    def of(self, names) -> list:
        return [self.known.get(name) for name in names]

    def add(self, nodes) -> None:
        for node in nodes:
            if node.op not in OPS:
                raise Unsupported(f"unknown op '{node.op}'")
            shapes = OPS[node.op].output_shapes(node, self.of(node.inputs))
            for name, shape in zip(node.outputs, shapes):
                self.known[name] = None if shape is None else tuple(shape)


def finish(graph: Graph) -> Graph:
    """Check the wiring, fold paddings into the layers they feed, infer and check every shape."""
    graph.check()
    fold_pads(graph)
    fold_crops(graph)
    shapes = Shapes(graph.inputs)
    shapes.add(graph.nodes)
    graph.values = {name: Value(name, shape) for name, shape in shapes.known.items()}
    for value in graph.inputs:
        graph.values[value.name] = value
    return graph
