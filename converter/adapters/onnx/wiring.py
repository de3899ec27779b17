"""Who makes and who uses each value of an ONNX node list: what the reader's pattern passes walk."""

from __future__ import annotations

import numpy as np

from ...rewrite import View


class Wiring(View):
    """The rewrite view of ONNX nodes: what the reader's rules and passes walk, and how ONNX spells axes."""

    def axes(self, node):
        """A node's axes: its constant second input (opset 13 on), else its ``axes`` attribute; None if neither."""
        if len(node.input) > 1 and node.input[1]:
            axes = self.constants.get(node.input[1])
            return None if axes is None else [int(a) for a in np.ravel(axes)]
        return next(([int(a) for a in attribute.ints] for attribute in node.attribute if attribute.name == "axes"),
                    None)


def int_attr(node, name, default=None):
    return next((a.i for a in node.attribute if a.name == name), default)


def is_transpose(node, perm) -> bool:
    return node is not None and node.op_type == "Transpose" and \
        next((list(a.ints) for a in node.attribute if a.name == "perm"), None) == perm


def feeds(nodes: list, producer_type: str, consumer_type: str, position: int) -> bool:
    """Whether a ``consumer_type`` node reads, as its input ``position``, what a ``producer_type`` node makes (a
    rule's quick test of whether a graph is worth inferring sizes for)."""
    made = {name for node in nodes if node.op_type == producer_type for name in node.output}
    return any(node.op_type == consumer_type and len(node.input) > position and node.input[position] in made
               for node in nodes)
