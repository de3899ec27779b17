"""Flatten -> Dense in channels-last Keras: the kernel's rows follow (h, w, c), the IR's (c, h, w).

Keras flattens a feature map in channels-last order. Where every path from a Flatten leads
(through element-wise ops) into Dense layers, the Dense kernels' input rows are permuted
instead, so that neither side needs a transpose at run time. Any other Flatten keeps
``order='channels_last'`` and the writers emit the transpose it needs.
"""

from __future__ import annotations

import copy

from ...ir import Graph
from ...layouts import permute
from ...ops import OPS

SPATIAL = ("s1", "s2", "s3")


def to_canonical(graph: Graph) -> Graph:
    """After reading Keras: turn channels-last Flattens into canonical ones where Dense follows."""
    for flatten, denses in _flatten_groups(graph, "channels_last"):
        for dense in denses:
            dense.params["kernel"] = _permute_rows(dense, graph.shape(flatten.inputs[0]), to_keras=False)
        flatten.attrs["order"] = "channels_first"
    return graph


def to_keras(graph: Graph) -> Graph:
    """Before writing Keras: a copy whose Dense kernels after Flatten have Keras' row order."""
    graph = copy.deepcopy(graph)
    for flatten, denses in _flatten_groups(graph, "channels_first"):
        for dense in denses:
            dense.params["kernel"] = _permute_rows(dense, graph.shape(flatten.inputs[0]), to_keras=True)
        flatten.attrs["order"] = "channels_last"
    return graph


def _flatten_groups(graph: Graph, order: str):
    """(flatten node, the Dense nodes it feeds) where every path ends in a Dense."""
    for node in graph.nodes:
        shape = graph.shape(node.inputs[0]) if node.inputs else None
        if node.op != "flatten" or node.attrs.get("order") != order or shape is None or len(shape) < 3:
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


def _permute_rows(dense, feature_shape, to_keras: bool):
    channels, *spatial = feature_shape[1:]
    names = SPATIAL[: len(spatial)]
    canonical = f"o (c {' '.join(names)})"
    keras = f"o ({' '.join(names)} c)"
    sizes = dict(zip(names, spatial), c=channels)
    source, target = (canonical, keras) if to_keras else (keras, canonical)
    return permute(dense.params["kernel"], source, target, what=f"layer '{dense.name}' kernel after Flatten", **sizes)
