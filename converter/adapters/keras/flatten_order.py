"""Flatten -> Dense in channels-last Keras: the kernel's rows follow (h, w, c), the IR's (c, h, w).

Keras flattens a feature map in channels-last order. Where every path from a Flatten leads
(through element-wise ops) into Dense layers, the Dense kernels' input rows are permuted
instead, so that neither side needs a transpose at run time. Any other Flatten keeps
``order='channels_last'`` and the writers emit the transpose it needs.
"""

from __future__ import annotations

import copy

from ...ir import Graph
from ... import views
from ...layouts import permute
from ...ops import OPS


def to_canonical(graph: Graph) -> Graph:
    """After reading Keras: turn channels-last Flattens into canonical ones where Dense follows."""
    for flatten, denses in _flatten_groups(graph, "channels_last"):
        for dense in denses:
            dense.params["kernel"] = _permute_rows(dense, graph, flatten.inputs[0], to_keras=False)
        flatten.attrs["order"] = "channels_first"
    return graph


def to_keras(graph: Graph) -> Graph:
    """Before writing Keras: a copy whose Dense kernels after Flatten have Keras' row order."""
    graph = copy.deepcopy(graph)
    for flatten, denses in _flatten_groups(graph, "channels_first"):
        for dense in denses:
            dense.params["kernel"] = _permute_rows(dense, graph, flatten.inputs[0], to_keras=True)
        flatten.attrs["order"] = "channels_last"
    return graph


def _flatten_groups(graph: Graph, order: str):
    """(flatten node, the Dense nodes it feeds) where every path ends in a Dense."""
    for node in graph.nodes:
        layout = graph.layout(node.inputs[0]) if node.inputs else None
        if node.op != "flatten" or node.attrs.get("order") != order or layout is None or \
                views.view(layout, "keras") == layout:
            continue
        denses = _dense_consumers(graph, node.outputs[0])
        if denses is not None:
            yield node, denses


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


def _permute_rows(dense, graph: Graph, flattened: str, to_keras: bool):
    """The kernel's input rows between the IR's order of the flattened axes and Keras' view of them."""
    layout = views.axes(graph.layout(flattened))[1:]
    keras = views.axes(views.view(graph.layout(flattened), "keras"))[1:]
    sizes = dict(zip(layout, graph.shape(flattened)[1:]))
    canonical, held = f"o ({' '.join(layout)})", f"o ({' '.join(keras)})"
    source, target = (canonical, held) if to_keras else (held, canonical)
    return permute(dense.params["kernel"], source, target, what=f"layer '{dense.name}' kernel after Flatten", **sizes)
