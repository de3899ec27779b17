"""Who makes and who uses each value of an ONNX node list: what the reader's pattern passes walk."""

from __future__ import annotations

import numpy as np


class Wiring:
    def __init__(self, nodes, constants: dict, outputs: set):
        self.constants, self.outputs = constants, outputs
        self.producer = {name: n for n in nodes for name in n.output}
        self.consumers = {}
        for n in nodes:
            for name in n.input:
                self.consumers.setdefault(name, []).append(n)

    def only_consumer(self, value):
        """The one node using ``value``, which is not a graph output; else None."""
        users = self.consumers.get(value, [])
        return users[0] if len(users) == 1 and value not in self.outputs else None

    def used(self, value) -> bool:
        return bool(value) and (bool(self.consumers.get(value)) or value in self.outputs)

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
