"""Canonicalizing passes run on every graph a reader produces.

A padding layer in front of a convolution or pooling (how torch spells TF's asymmetric
'same', and how wconv writes it for targets without asymmetric padding) is folded into that
layer's explicit pads, so that every format reads the same model as the same graph.
"""

from __future__ import annotations

from .ir import Graph

FOLDS = {  # pad value -> ops whose padding means exactly that value
    0.0: ("conv1d", "conv2d", "conv3d"),
    float("-inf"): ("max_pool1d", "max_pool2d", "max_pool3d"),
}


def fold_pads(graph: Graph) -> Graph:
    for pad in [node for node in graph.nodes if node.op == "pad"]:
        consumers = graph.consumers(pad.outputs[0])
        if len(consumers) != 1 or pad.outputs[0] in graph.outputs:
            continue
        target = consumers[0]
        if target.op not in FOLDS.get(pad.attrs["value"], ()):
            continue
        target.attrs["pads"] = [a + b for a, b in zip(target.attrs["pads"], pad.attrs["pads"])]
        target.inputs = [pad.inputs[0] if name == pad.outputs[0] else name for name in target.inputs]
        graph.nodes.remove(pad)
    return graph
