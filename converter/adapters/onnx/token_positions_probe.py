"""Positions counted from the token ids, as any ONNX file computes them, read as the ``token_positions`` op (the
ONNX twin of ``adapters/torch/token_positions.py``).

torch.onnx writes RoBERTa's ``cumsum(ids != pad) * (ids != pad) + pad`` with the casts its code has
(``Not(Equal)``, ``Cast``, ``CumSum``, ``Mul``, ``Add``), wconv without them. What matters is the value: the
indices an embedding lookup (``Gather`` from a constant table) reads, where they are computed from one integer
input's values, are evaluated (the ops they come from alone, by the constant folder's evaluator under its size
budget) on the same probe rows as torch's; where they are exactly the positions for the padding id the all-zeros
row gives away, the node making them becomes the op, and the ops before it go where nothing else reads them.
"""

from __future__ import annotations

from ...ops.token_positions import TOKEN_POSITIONS
from ...rewrite import Lifted, Match, Rule
from ..torch.token_positions import padding_of, probe_rows
from .probes import computed_from, evaluated
from .wiring import Wiring


def rule(inputs: dict) -> Rule:
    """The rule, for a graph whose inputs are ``inputs`` (name -> (shape, numpy dtype))."""
    probed = {}

    def match(wiring: Wiring, gather) -> Match | None:
        positions = gather.input[1] if len(gather.input) > 1 else None
        made = wiring.producer.get(positions)
        if gather.input[0] not in wiring.constants or made is None or positions in inputs:
            return None
        nodes, source, sized = computed_from(wiring, positions, inputs)
        if source is None:
            return None
        if positions not in probed:
            probed[positions] = _padding(nodes, source, sized, positions, inputs, wiring.constants)
        padding = probed[positions]
        if padding is None:
            return None
        node = TOKEN_POSITIONS.node(f"{source}.positions", [source], [positions], padding)
        return Match([made], [Lifted.of(node)], feeding=[n for n in nodes if n is not made])

    return Rule("token positions, as files compute them", ("Gather",), match)


def _padding(nodes, source, sized, positions, inputs, constants) -> int | None:
    """The padding id for which ``positions`` is the positions of ``source`` for every probe row, else None."""
    found, rows = evaluated(nodes, source, sized, positions, inputs, constants, probe_rows(inputs[source][0][1]))
    return padding_of(found, rows) if found is not None and found.shape == rows.shape else None
