"""Shape and layout inference over the IR: every param is checked against the tensor it meets, and every
value gets the axis pattern its producer gives it."""

from __future__ import annotations

from .errors import BadInput, Unsupported
from .ir import Graph, Value
from .ops import OPS
from .passes import fold_crops, fold_pads, fold_unit_relayouts
from . import relayout, views


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
    fold_unit_relayouts(graph)
    _input_dtypes(graph)
    shapes = Shapes(graph.inputs)
    shapes.add(graph.nodes)
    graph.values = {name: Value(name, shape, layout=shapes.layouts[name]) for name, shape in shapes.known.items()}
    for value in graph.inputs:
        graph.values[value.name] = value
    return graph


def _input_dtypes(graph: Graph) -> None:
    """Model inputs read by ops that take integer ids (Embedding) are int64 (torch's index type); those read as
    boolean masks (attention's) are bool."""
    for value in graph.inputs:
        masks = [node for node in graph.nodes for index in OPS[node.op].boolean_inputs
                 if index < len(node.inputs) and node.inputs[index] == value.name]
        if masks:
            if len(masks) != len(graph.consumers(value.name)):
                raise Unsupported(f"input '{value.name}' is read both as a boolean mask and as numbers")
            value.dtype = "bool"
            continue
        readers = [OPS[node.op] for node in graph.nodes if value.name in node.inputs]
        if readers and any(op.integer_input for op in readers):
            if not all(op.integer_input for op in readers):
                raise Unsupported(f"input '{value.name}' is read both as integer ids and as numbers")
            value.dtype = "int64"
            if value.shape is not None and len(value.shape) == 2:
                value.layout = views.TOKENS  # held alike everywhere, as any (batch, x) value; named for what it is


INPUT_DTYPES = ("float32", "int64")


def declare_input_dtype(graph: Graph, dtype: str | None) -> None:
    """Check a declared input dtype (--input-dtype) against the one the layers reading each input take."""
    if dtype is None:
        return
    if dtype not in INPUT_DTYPES:
        raise BadInput(f"--input-dtype {dtype!r}: expected one of {', '.join(INPUT_DTYPES)}")
    for value in graph.inputs:
        if value.dtype != dtype:
            readers = [f"'{node.name}' ({node.op})" for node in graph.consumers(value.name)]
            takes = "int64 token ids" if value.dtype == "int64" else "float32 numbers"
            raise BadInput(f"--input-dtype {dtype}: input '{value.name}' is read by {', '.join(readers)}, which "
                           f"take{'s' if len(readers) == 1 else ''} {takes}")


def token_limit(graph: Graph, value: str) -> int | None:
    """The number of rows of the smallest table that ids in ``value`` index (None if none does)."""
    rows = [int(node.params["table"].shape[0]) for node in graph.nodes
            if value in node.inputs and OPS[node.op].integer_input and "table" in node.params]
    return min(rows) if rows else None
