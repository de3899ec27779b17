"""What an ONNX op reader may ask about the graph around a node."""

from __future__ import annotations

import numpy as np

from ...errors import Unsupported


class OnnxContext:
    def __init__(self, nodes, initializers: dict[str, np.ndarray], shapes):
        self.shapes = shapes  # canonical shapes of the values read so far
        self.initializers = initializers
        self.used: set[str] = set()
        self.absorbed: set[int] = set()  # ids of nodes folded into an earlier one
        # The batch size every input of a file exported for one batch size declares (torch.onnx without dynamic
        # axes): a Reshape whose target starts with it keeps each batch entry's elements together, as 0 or -1
        # would (axis 0 of every IR value is the batch).
        self.static_batch: int | None = None
        self.consumers: dict[str, list] = {}
        for node in nodes:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)

    def shape(self, value: str):
        return self.shapes.known.get(value)

    @staticmethod
    def name(node) -> str:
        return node.name or node.output[0]

    @staticmethod
    def attrs(node) -> dict:
        from onnx import helper

        return {a.name: _plain(helper.get_attribute_value(a)) for a in node.attribute}

    def weight(self, node, index: int) -> np.ndarray:
        """The initializer feeding input ``index``; a computed tensor there is an error."""
        name = node.input[index]
        if name not in self.initializers:
            raise Unsupported(f"{node.op_type} '{self.name(node)}': input {index} ('{name}') is computed at run time; "
                              "wconv converts it only as a constant (an initializer)")
        self.used.add(name)
        return self.initializers[name]

    def axes(self, node) -> list[int] | None:
        """A reduction's or Squeeze's axes: the ``axes`` attribute (older opsets), else the constant second input;
        None when it has neither."""
        axes = self.attrs(node).get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = [int(a) for a in self.weight(node, 1)]
        return axes

    def bias(self, node, index: int) -> np.ndarray:
        bias = self.weight(node, index)
        # Gemm broadcasts C; (1, o) is the one other spelling exporters use for a per-output bias.
        if bias.ndim == 2 and bias.shape[0] == 1:
            return bias[0]
        if bias.ndim != 1:  # valid ONNX (C broadcasts), but not one value per output here
            raise Unsupported(f"{node.op_type} '{self.name(node)}': bias of shape {bias.shape} broadcasts; only one "
                              "value per output converts")
        return bias

    def bias_add_after(self, node):
        """``(bias, outputs)`` when the node's only consumer is ``Add(node, constant)``, else ``(None, None)``."""
        users = self.consumers.get(node.output[0], [])
        if len(users) != 1 or users[0].op_type != "Add":
            return None, None
        add = users[0]
        other = [name for name in add.input if name != node.output[0]]
        if len(other) != 1 or other[0] not in self.initializers or self.initializers[other[0]].ndim != 1:
            return None, None
        self.absorbed.add(id(add))
        return self.weight(add, list(add.input).index(other[0])), list(add.output)

    def unused_initializers(self) -> list[str]:
        return sorted(set(self.initializers) - self.used)


def _plain(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):  # strings (an RNN's activations); numbers stay as they are
        return [item.decode() if isinstance(item, bytes) else item for item in value]
    if isinstance(value, float):
        return float(f"{value:.7g}")  # float32 attribute: 0.1 rather than 0.10000000149011612
    return value
