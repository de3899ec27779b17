"""Who makes and who uses each value of an ONNX node list: what the reader's pattern passes walk."""

from __future__ import annotations


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
