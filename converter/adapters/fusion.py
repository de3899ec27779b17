"""Pairs of (layer, fused activation) that a writer may emit as one layer."""

from __future__ import annotations

from ..ir import Graph, Node


def fused_pairs(graph: Graph) -> dict[str, Node]:
    """Layer name -> the activation node the source kept inside that layer."""
    pairs = {}
    for node in graph.nodes:
        if not node.fused:
            continue
        producer = graph.producer(node.inputs[0])
        if producer is not None and len(graph.consumers(node.inputs[0])) == 1 and node.inputs[0] not in graph.outputs:
            pairs[producer.name] = node
    return pairs
