"""Flatten -> Dense: the Dense kernel's input rows follow the order its Flatten takes the features in.

An IR Flatten flattens its input in IR order (as torch and ONNX do). Keras flattens its own view, channels
last, so a Keras Flatten reads as a relayout to that view and then a Flatten (``KerasFlatten``), and a
Flatten written to Keras whose input Keras holds otherwise gets a Permute first. Where every path from a
Flatten leads (through element-wise ops) into Dense layers, no transpose needs to run: ``prefer`` moves
the permutation into the Dense kernels' rows, leaving the Flatten's input as ``framework`` holds it (torch:
IR order, the canonical form the readers leave; Keras: its view, for the Keras writer). The graph computes
the same either way; this is the one place Flatten's row order is handled.
"""

from __future__ import annotations

from . import views
from .ir import Graph, Value
from .layouts import permute
from .ops import OPS


def prefer(graph: Graph, framework: str) -> Graph:
    """``graph`` (changed in place) with each Flatten that feeds only Dense layers taking its input as
    ``framework`` holds it, the transpose before it (if any) folded into the Dense rows."""
    for flatten in [node for node in graph.nodes if node.op == "flatten"]:
        source, flattened = _unpermuted(graph, flatten)
        pattern, shape = graph.layout(source), graph.shape(source)
        if pattern is None or shape is None or None in shape[1:]:
            continue
        held = views.order(pattern, framework)
        denses = _dense_consumers(graph, flatten.outputs[0]) if held != flattened else None
        if denses is None:
            continue
        for dense in denses:
            dense.params["kernel"] = _rows(dense, shape, flattened, held)
        _feed(graph, flatten, source, framework)
    return graph


def _unpermuted(graph: Graph, flatten):
    """(the value before a transpose that only this Flatten reads, that value's axes in the order the Flatten
    takes them); without such a transpose, the Flatten's input in IR order."""
    value = flatten.inputs[0]
    producer = graph.producer(value)
    if producer is not None and producer.op == "transpose" and graph.consumers(value) == [flatten] and \
            value not in graph.outputs:
        return producer.inputs[0], list(producer.attrs["perm"])
    return value, list(range(len(graph.shape(value) or ())))


def _feed(graph: Graph, flatten, source: str, framework: str) -> None:
    """Rewire the Flatten to ``source`` as ``framework`` holds it: directly, or through a transpose that is the
    identity there; the transpose it read before goes if nothing else reads it."""
    old = graph.producer(flatten.inputs[0])
    if old is not None and old.op == "transpose" and flatten.inputs[0] != source:
        graph.nodes.remove(old)
        graph.values.pop(flatten.inputs[0], None)
    flatten.inputs = [source]
    take_as(graph, flatten, framework)


def take_as(graph: Graph, flatten, framework: str) -> None:
    """Put a transpose before ``flatten`` so that it takes its input's features in the order ``framework`` holds
    them (nothing where that is IR order)."""
    source = flatten.inputs[0]
    pattern = graph.layout(source)
    held = views.order(pattern, framework)
    if not views.moves_elements(held, graph.shape(source)):
        return
    name, layout = f"{flatten.name}/as_{framework}", views.view(pattern, framework)
    relayout = OPS["transpose"].node(name, [source], [name], held, layout=layout)
    graph.nodes.insert(graph.nodes.index(flatten), relayout)
    graph.values[name] = Value(name, views.shape_to(graph.shape(source), pattern, framework), layout=layout)
    flatten.inputs = [name]


def _rows(dense, shape, flattened: list, held: list):
    """The kernel with its input rows moved from the order ``flattened`` to ``held`` (both: axes of the value
    before the Flatten, batch first)."""
    names = {axis: f"a{axis}" for axis in range(1, len(shape))}
    sizes = {names[axis]: int(shape[axis]) for axis in names}
    source = f"o ({' '.join(names[a] for a in flattened[1:])})"
    target = f"o ({' '.join(names[a] for a in held[1:])})"
    return permute(dense.params["kernel"], source, target, what=f"layer '{dense.name}' kernel after Flatten", **sizes)


def _dense_consumers(graph: Graph, value: str):
    """The Dense nodes reached from ``value`` through element-wise ops, or None if anything else is."""
    if value in graph.outputs:
        return None
    found = []
    for consumer in graph.consumers(value):
        if consumer.op == "dense":
            found.append(consumer)
        elif getattr(OPS[consumer.op], "elementwise", False):
            further = _dense_consumers(graph, consumer.outputs[0])
            if further is None:
                return None
            found.extend(further)
        else:
            return None
    return found or None
