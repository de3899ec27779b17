"""Shape and layout inference over the IR: every param is checked against the tensor it meets, and every
value gets the axis pattern its producer gives it."""

from __future__ import annotations

from .errors import Unsupported
from .ir import Graph, Value
from .ops import OPS
from .passes import fold_crops, fold_pads
from . import relayout


class Shapes:
    """Shapes and layouts (IR order) of the values seen so far, for readers that need them while reading."""

    def __init__(self, inputs):
        self.known = {value.name: value.shape for value in inputs}
        self.layouts = {value.name: value.layout for value in inputs}

    def of(self, names) -> list:
        return [self.known.get(name) for name in names]

    def layouts_of(self, names) -> list:
        return [self.layouts.get(name) for name in names]

    def add(self, nodes) -> None:
        for node in nodes:
            if node.op not in OPS:
                raise Unsupported(f"unknown op '{node.op}'")
            op = OPS[node.op]
            shapes = op.output_shapes(node, self.of(node.inputs))
            layouts = op.output_layouts(node, self.layouts_of(node.inputs), shapes)
            for name, shape, layout in zip(node.outputs, shapes, layouts):
                self.known[name] = None if shape is None else tuple(shape)
                self.layouts[name] = layout


def finish(graph: Graph, framework: str = "torch") -> Graph:
    """Check the wiring, fold paddings into the layers they feed, give every value its layout (relayouts
    where a value meets an op of another kind, kept as ``framework`` holds the values), infer and check
    every shape."""
    graph.check()
    fold_pads(graph)
    fold_crops(graph)
    relayout.assign(graph, framework)
    shapes = Shapes(graph.inputs)
    shapes.add(graph.nodes)
    graph.values = {name: Value(name, shape, layout=shapes.layouts[name]) for name, shape in shapes.known.items()}
    for value in graph.inputs:
        graph.values[value.name] = value
    return graph
