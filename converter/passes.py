"""Canonicalizing passes run on every graph a reader produces.

A padding layer in front of a convolution or pooling (how torch spells TF's asymmetric
'same', and how wconv writes it for targets without asymmetric padding) is folded into that
layer's explicit pads, so that every format reads the same model as the same graph. A relayout right after
a reshape that only adds or removes axes of size 1 (a squeeze-excite's ``Reshape((1, 1, C))``) is folded into
that reshape, which then gives the layout its consumer wants: no transpose runs in the port.
"""

from __future__ import annotations

from . import views
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


def fold_unit_relayouts(graph: Graph) -> Graph:
    """A reshape read only by a transpose that moves no element (it moves axes of size 1 only: a squeeze-excite's
    (N, C) to (N, 1, 1, C), then to (N, C, 1, 1)): the reshape gives the transpose's output directly, if Keras'
    view of it moves no element either, so that Keras' Reshape to its view is the same tensor."""
    for transpose in [node for node in graph.nodes if node.op == "transpose"]:
        reshape = graph.producer(transpose.inputs[0])
        if (reshape is None or reshape.op != "reshape" or transpose.inputs[0] in graph.outputs
                or len(graph.consumers(transpose.inputs[0])) != 1 or transpose.attrs.get("layout") is None):
            continue
        shape = [None, *reshape.attrs["shape"]]
        permuted = [shape[a] for a in transpose.attrs["perm"]]
        if views.moves_elements(transpose.attrs["perm"], shape) or \
                views.moves_elements(views.order(transpose.attrs["layout"], "keras"), permuted):
            continue
        reshape.attrs["shape"] = permuted[1:]
        reshape.attrs["layout"] = transpose.attrs["layout"]
        graph.nodes.remove(transpose)
        _rename_value(graph, transpose.outputs[0], reshape.outputs[0])
    return graph


def _rename_value(graph: Graph, old: str, new: str) -> None:
    """Every reader of ``old`` (layers and the model's outputs) reads ``new`` instead."""
    for node in graph.nodes:
        node.inputs = [new if name == old else name for name in node.inputs]
    graph.outputs = [new if name == old else name for name in graph.outputs]
