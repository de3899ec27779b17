"""Rows embedded from constant ids and expanded over the batch, read as the one table they add to each sample.

torch.onnx writes BERT's token types (a buffer of zeros, ``buffer.expand(batch, T)``, embedded and added to the word
embeddings) as ``Add(x, Gather(table, Expand(ids, Shape arithmetic)))`` with a free batch (at a fixed batch the
constant folder makes it a constant already, ``ops/tokens.py``). Where the Expand only repeats the (1, T) ids for
each sample (its target evaluated for batches 2 and 3), the rows are the same for every sample: the Add takes the
(1, T, F) rows, a new constant, and reads as a position table; the Expand, the Gather and the shape arithmetic that
sized the Expand go.
"""

from __future__ import annotations

import numpy as np

from ...rewrite import Match, Rule
from .layout_trace import Tracer, Untraceable
from .shape_pass import BATCH, BATCHES, concrete
from .wiring import Wiring, feeds, int_attr


def candidates(nodes: list) -> bool:
    """Whether a Gather reads an Expand (so that sizes are worth inferring for ``rule``)."""
    return feeds(nodes, "Expand", "Gather", 1)


def rule(sizes: dict) -> Rule:
    def match(wiring: Wiring, expand) -> Match | None:
        ids = wiring.constants.get(expand.input[0])
        gather = wiring.only_consumer(expand.output[0])
        if ids is None or np.ndim(ids) != 2 or ids.shape[0] != 1 or gather is None or gather.op_type != "Gather" or \
                gather.input[1] != expand.output[0] or int_attr(gather, "axis", 0) != 0:
            return None
        table = wiring.constants.get(gather.input[0])
        add = wiring.only_consumer(gather.output[0])
        tracer = Tracer(wiring)
        if table is None or np.ndim(table) != 2 or add is None or add.op_type != "Add" or \
                not np.issubdtype(np.asarray(ids).dtype, np.integer) or not _per_sample(wiring, expand, sizes, tracer):
            return None
        from onnx import helper

        rows = f"{gather.output[0]}/rows"
        other = next(name for name in add.input if name != gather.output[0])
        return Match([expand, gather, add], [helper.make_node("Add", [other, rows], list(add.output), name=add.name)],
                     constants={rows: np.asarray(table)[np.asarray(ids)]}, feeding=list(tracer.arithmetic.values()))

    return Rule("constant rows embedded over the batch", ("Expand",), match)


def _per_sample(wiring: Wiring, expand, sizes: dict, tracer: Tracer) -> bool:
    """Whether the Expand's target is (batch, T) for batches 2 and 3: one copy of the ids per sample."""
    dims = sizes.get(expand.output[0])
    if dims is None or len(dims) != 2 or dims[0] is not BATCH:
        return False
    for run in range(len(BATCHES)):
        tracer.shape_of = lambda value, run=run: concrete(sizes.get(value), run)
        try:
            target = [int(size) for size in np.ravel(tracer.evaluate(expand.input[1], {}))]
        except (Untraceable, ValueError):
            return False
        if target[:1] != [concrete(dims, run)[0]] or len(target) != 2:
            return False
    return True
