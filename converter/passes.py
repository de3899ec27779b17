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


def fold_crops(graph: Graph) -> Graph:
    """A crop right after a transposed convolution becomes part of that convolution's crop."""
    for crop in [node for node in graph.nodes if node.op == "crop"]:
        source = graph.producer(crop.inputs[0])
        if (source is None or not source.op.startswith("conv_transpose") or crop.inputs[0] in graph.outputs
                or len(graph.consumers(crop.inputs[0])) != 1):
            continue
        source.attrs["crop"] = [a + b for a, b in zip(source.attrs["crop"], crop.attrs["crop"])]
        source.outputs = list(crop.outputs)
        graph.nodes.remove(crop)
    return graph
