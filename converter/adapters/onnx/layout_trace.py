"""Where each element of a tensor came from, through the ops that only move elements.

Exporters spell one rearrangement many ways: torch.onnx splits attention heads with a Reshape to (T, N*heads, d),
unpacks q, k and v with Unsqueeze/Transpose/Squeeze/Gather, and computes the reshape targets from ``Shape``.
Rather than match each spelling, a pass runs those ops on element *indices* (``Tracer.run``): the result says,
for every element, which element of the start tensor it is, and checking that against the layout the IR means is
exact for any arrangement of moves. The shape arithmetic that feeds the moves is evaluated alongside, for the
concrete sizes of the run, with ONNX's reference implementation and the constant folder's budget.
"""

from __future__ import annotations

import math

import numpy as np

from ...errors import BadInput
from ...limits import FOLD_ELEMENTS
from .constants import check_budget
from .rotary_pass import OP_TYPE as ROTATION
from .shape_pass import shape_output
from .wiring import Wiring

# Expand repeats elements (grouped key/value heads repeated for their query heads). A rotation (rotary_pass.py)
# keeps each element in its place, as far as where elements come from goes: the attention rule reads its tables.
MOVES = {"Reshape", "Transpose", "Unsqueeze", "Squeeze", "Gather", "Flatten", "Identity", "Slice", "Split", "Expand",
         ROTATION}
ARITHMETIC = {"Shape", "Gather", "Concat", "Unsqueeze", "Squeeze", "Cast", "Div", "Mul", "Add", "Sub", "Sqrt",
              "Slice", "Reshape", "Identity", "Reciprocal", "Floor", "Ceil", "Size", "Neg", "Range"}
SCALES = {"Mul", "Div"}


class Untraceable(Exception):
    """The moves cannot be run on indices (an input that is neither a moved tensor, a constant nor shape
    arithmetic, or a size over the budget): the caller matches nothing."""


class Tracer:
    """Runs a graph's moves on indices. ``arithmetic`` collects the shape-arithmetic nodes a run evaluated."""

    def __init__(self, wiring: Wiring):
        self.wiring = wiring
        self.arithmetic: dict = {}  # id(node) -> node
        self.shape_of = lambda name: None  # the run's shape of a tensor it does not hold, if known

    def is_move(self, node) -> bool:
        """A node that only moves its first input's elements (the other inputs are sizes, axes or indices)."""
        return node is not None and node.op_type in MOVES and node.domain in ("", "ai.onnx") and \
            node.input[0] not in self.wiring.constants

    def scale_factor(self, node):
        """(the scaled operand, the factor) for a Mul or Div by a one-element constant, else None."""
        if node is None or node.op_type not in SCALES or len(node.input) != 2:
            return None
        constants = self.wiring.constants
        operands = [tuple(node.input)] + ([tuple(node.input[::-1])] if node.op_type == "Mul" else [])
        for data, factor in operands:
            if factor in constants and np.size(constants[factor]) == 1 and data not in constants:
                value = float(np.ravel(constants[factor])[0])
                return data, (1 / value if value else math.inf) if node.op_type == "Div" else value
        return None

    def moves_back(self, value, scales: bool = False) -> tuple[str, list]:
        """(where the moves start, the moves in order) ending at ``value`` (with ``scales``, Mul/Div by constants
        too: a run carries indices through them unchanged)."""
        nodes = []
        while True:
            node = self.wiring.producer.get(value)
            if self.is_move(node):
                nodes.insert(0, node)
                value = node.input[0]
            elif scales and self.scale_factor(node) is not None:
                nodes.insert(0, node)
                value = self.scale_factor(node)[0]
            else:
                return value, nodes

    def moves_forward(self, value) -> list:
        """The moves that follow ``value``, each the only consumer of the one before."""
        nodes = []
        while (node := self.wiring.only_consumer(value)) is not None and self.is_move(node) and \
                node.input[0] == value and len(node.output) == 1:
            nodes.append(node)
            value = node.output[0]
        return nodes

    def run(self, nodes: list, start: str, indices: np.ndarray, earlier: dict | None = None) -> dict:
        """value name -> the indices it holds, for ``start`` holding ``indices`` and each node of ``nodes`` run in
        order (scale nodes pass indices through). Shape arithmetic may read the tensors of an ``earlier`` run."""
        values = {**(earlier or {}), start: indices}
        for node in nodes:
            if node.op_type in SCALES:
                values[node.output[0]] = values[self.scale_factor(node)[0]]
                continue
            if node.input[0] not in values:
                raise Untraceable(node.name)
            if node.op_type == ROTATION:
                values[node.output[0]] = values[node.input[0]]
                continue
            inputs = [values[node.input[0]]] + [self.evaluate(n, values) if n else None for n in node.input[1:]]
            values.update(zip(node.output, self._reference(node, inputs)))
        return values

    def evaluate(self, name: str, values: dict):
        """A size, axis or index input: a constant, or shape arithmetic on constants and the run's tensors."""
        if name in self.wiring.constants:
            return self.wiring.constants[name]
        if name in values:
            return values[name]
        node = self.wiring.producer.get(name)
        if node is None or node.op_type not in ARITHMETIC or node.domain not in ("", "ai.onnx"):
            raise Untraceable(name)
        if node.op_type == "Shape":
            held = values.get(node.input[0])
            shape = np.shape(held) if held is not None else self.shape_of(node.input[0])
            if shape is None:
                raise Untraceable(name)
            values[name] = shape_output(node, list(shape))
        else:
            inputs = [self.evaluate(n, values) if n else None for n in node.input]
            values.update(zip(node.output, self._reference(node, inputs)))
        self.arithmetic[id(node)] = node
        return values[name]

    @staticmethod
    def _reference(node, inputs: list) -> list:
        from onnx.reference import ReferenceEvaluator

        try:
            check_budget(node, inputs)
            return ReferenceEvaluator(node).run(None, {n: a for n, a in zip(node.input, inputs) if n})
        except BadInput:
            raise Untraceable(node.name) from None
        except Exception:  # the reference runtime raises many types for inputs the node does not take
            raise Untraceable(node.name) from None


def indices(shape) -> np.ndarray:
    """0, 1, 2, ... in ``shape``: each element's own flat index (within the folding budget)."""
    if math.prod(shape) > FOLD_ELEMENTS:
        raise Untraceable(f"{shape} is over the budget")
    return np.arange(math.prod(shape), dtype=np.int64).reshape(shape)


def rows(moved: np.ndarray, width: int):
    """The row of the start tensor each vector along the last axis of ``moved`` is, when every such vector is a
    whole row of ``width`` elements in order; else None."""
    if moved.ndim == 0 or moved.shape[-1] != width:
        return None
    first = moved[..., :1]
    if np.any(first % width) or not np.array_equal(moved, first + np.arange(width)):
        return None
    return first[..., 0] // width
