"""Layout inference: every value gets an axis pattern, and where a value meets an op that computes on
another kind of pattern, one transpose (a *relayout*) goes between them.

A relayout keeps the tensor as the source framework holds it and changes only the IR order: reading
Keras, a sequence ``"n t f"`` entering a Conv1D becomes ``"n c w"`` (a transpose in the IR and in
torch, nothing in Keras); reading torch, the same meeting is the identity in the IR and a Permute in
Keras. Writers derive each framework's permutation from the patterns on either side
(``views.transpose_in``) and write nothing where it is the identity, so consecutive convs never get
transposes between them.
"""

from __future__ import annotations

from . import views
from .ir import Graph, Node

SAME = "same"  # an input kind: every input in the first input's layout (element-wise merges, concatenation)


def _ops():
    from .ops import OPS  # ops import this module's constants

    return OPS


def target(pattern: str, kind: str, framework: str) -> str:
    """The pattern of ``kind`` that ``framework`` holds as it holds ``pattern``."""
    if framework == "keras":
        return views.held_alike(pattern, kind)
    return views.default(kind, len(views.axes(pattern)))


def conform(inputs: list[str], kind: str | None, layouts: dict, framework: str, made: dict) -> list[Node]:
    """Relayout nodes that must run before an op of input ``kind`` so that each of ``inputs`` has that kind;
    ``inputs`` is rewired to them. ``made``: (value, pattern) -> relayout output, shared by consumers."""
    if kind is None:
        return []
    created = []
    for index, value in enumerate(inputs):
        pattern = layouts.get(value)
        if pattern is None:
            continue
        if kind == SAME:
            wanted = layouts.get(inputs[0]) if index else pattern
            if wanted is None or len(views.axes(wanted)) != len(views.axes(pattern)):
                continue
        elif views.is_kind(pattern, kind):
            continue
        else:
            wanted = target(pattern, kind, framework)
        if wanted == pattern:
            continue
        key = (value, wanted)
        if key not in made:
            output = f"{value}/as_{wanted.replace(' ', '')}"
            unchanged = list(range(len(views.axes(pattern))))  # the framework's tensor is left as it is
            perm = views.transpose_from(unchanged, pattern, wanted, framework)
            created.append(_ops()["transpose"].node(output, [value], [output], perm, layout=wanted))
            made[key] = output
            layouts[output] = wanted
        inputs[index] = made[key]
    return created


def preferred_kind(consumers: dict, value: str, op_of) -> str | None:
    """The layout kind that the nearest layer consuming ``value`` computes on, looking through layers that take
    any layout (breadth first); None if none says. ``consumers``: value -> the IR nodes or Keras layer entries
    reading it; ``op_of``: one of those -> its op or Keras reader (None for a class wconv does not know)."""
    queue, seen = [value], set()
    while queue:
        for consumer in consumers.get(queue.pop(0), []):
            if id(consumer) in seen:
                continue
            seen.add(id(consumer))
            op = op_of(consumer)
            if op is None:
                continue
            if op.input_kind in views.KINDS:
                return op.input_kind
            if not op.free_layout:
                queue.extend(consumer.outputs)
    return None


def preferred(consumers: dict, value: str, rank: int) -> str | None:
    """The pattern of ``rank`` that the IR nodes consuming ``value`` compute on (``preferred_kind``)."""
    kind = preferred_kind(consumers, value, lambda node: _ops()[node.op])
    return views.default(kind, rank) if kind else None


def consumers_of(layers) -> dict:
    """value -> the IR nodes (or Keras layer entries) that read it."""
    found = {}
    for layer in layers:
        for value in layer.inputs:
            found.setdefault(value, []).append(layer)
    return found


def assign(graph: Graph, framework: str) -> None:
    """Give inputs and free outputs (transposes, reshapes) their preferred layouts and insert the relayouts
    the graph needs, in one walk in graph order."""
    from .shapes import Shapes

    consumers = consumers_of(graph.nodes)
    for value in graph.inputs:
        if value.layout is None and value.shape is not None:
            value.layout = _preferred_or_map(consumers, value.name, len(value.shape))
    shapes, nodes, made = Shapes(graph.inputs), [], {}
    for node in graph.nodes:
        inserted = conform(node.inputs, _ops()[node.op].input_kind, shapes.layouts, framework, made)
        shapes.add(inserted)
        nodes.extend(inserted)
        op = _ops()[node.op]
        if op.free_layout and node.attrs.get("layout") is None:
            shape = op.output_shapes(node, shapes.of(node.inputs))[0]
            if shape is not None:
                node.attrs["layout"] = _preferred_or_map(consumers, node.outputs[0], len(shape))
        shapes.add([node])
        nodes.append(node)
    graph.nodes = nodes


def _preferred_or_map(consumers: dict, value: str, rank: int) -> str:
    return preferred(consumers, value, rank) or views.default(views.CHANNELS_FIRST, rank)
