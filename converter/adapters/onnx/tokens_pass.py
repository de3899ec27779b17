"""Class tokens as exporters write them, read back as one node: learned rows put before a sequence.

torch.onnx writes ``torch.cat([self.class_token.expand(n, -1, -1), x], dim=1)`` as ``Concat(axis=1)`` of an
``Expand`` of the (1, k, f) parameter and ``x``. With a free batch, the Expand's target shape is arithmetic on
``Shape(x)``, which ``layout_trace.Tracer`` evaluates for batches 2 and 3; with a fixed batch, the constant folder has
already made the Expand a constant of (n, k, f) with equal rows. Where every sample gets the same rows, the Concat
and its Expands become one class-tokens IR node (``ops/tokens.py``), lifted; the shape arithmetic that sized the
Expands goes with them. Anything else stays as it is, to be refused.
"""

from __future__ import annotations

import numpy as np

from ...ops.tokens import CLASS_TOKENS
from ...rewrite import Lifted, Match, Rule
from .layout_trace import Tracer, Untraceable
from .shape_pass import BATCH, BATCHES, concrete
from .wiring import Wiring, int_attr

FUSED_OP = "WconvClassTokens"  # the op type this pass once made: still refused in a file (reader.RESERVED)


def candidates(nodes: list, constants: dict) -> bool:
    """Whether a Concat reads an Expand or a rank-3 constant (so that sizes are worth inferring for ``rule``)."""
    expanded = {name for node in nodes if node.op_type == "Expand" for name in node.output}
    return any(node.op_type == "Concat" and any(name in expanded or np.ndim(constants.get(name)) == 3
                                                for name in node.input) for node in nodes)


def rule(sizes: dict) -> Rule:
    """The rule, for a graph whose values have ``sizes`` (``shape_pass.static_sizes``)."""
    def match(wiring: Wiring, concat) -> Match | None:
        if int_attr(concat, "axis") not in (1, -2) or len(concat.input) < 2:
            return None
        *leading, value = concat.input
        dims = sizes.get(value)
        if value in wiring.constants or dims is None or len(dims) != 3:
            return None
        tracer = Tracer(wiring)
        rows = [_rows(name, wiring, tracer, dims, sizes) for name in leading]
        if any(row is None for row in rows) or len({row.shape[1] for row in rows} | {dims[2]}) != 1:
            return None
        expands = [wiring.producer[name] for name in leading if name not in wiring.constants]
        if any(wiring.only_consumer(expand.output[0]) is not concat for expand in expands):
            return None
        tokens = CLASS_TOKENS.node(concat.name or concat.output[0], [value], list(concat.output), np.concatenate(rows))
        return Match([*expands, concat], [Lifted.of(tokens)], feeding=list(tracer.arithmetic.values()))

    return Rule("class tokens", ("Concat",), match)


def _rows(name: str, wiring: Wiring, tracer: Tracer, dims, sizes) -> np.ndarray | None:
    """The (k, f) rows every sample gets from ``name``: a constant (n, k, f) with equal rows for the file's batch,
    or a (1, ...) constant expanded to (batch, k, f). None for anything else."""
    constant = wiring.constants.get(name)
    if constant is not None:
        batch = concrete(dims, 0)[0] if dims[0] is not BATCH else None
        same = np.ndim(constant) == 3 and constant.shape[0] in (1, batch) and (constant == constant[:1]).all()
        return np.asarray(constant[0]) if same else None
    expand = wiring.producer.get(name)
    data = wiring.constants.get(expand.input[0]) if expand is not None and expand.op_type == "Expand" else None
    if data is None or np.ndim(data) != 3 or data.shape[0] != 1:
        return None
    shape = None
    for run in range(len(BATCHES) if BATCH in dims else 1):
        tracer.shape_of = lambda value: concrete(sizes.get(value), run)
        try:
            target = [int(size) for size in np.ravel(tracer.evaluate(expand.input[1], {}))]
            shape = np.broadcast_shapes(data.shape, tuple(target))
        except (Untraceable, ValueError):
            return None
        if shape[0] != concrete(dims, run)[0]:
            return None  # not one copy per sample
    return np.broadcast_to(data, (1, *shape[1:]))[0].copy()  # the rows as expanded, repeats included
