"""transformers' padding mask as torch.onnx exports it, read as what it computes (the ONNX twin of
``adapters/torch/padding_masks.py``).

The exporters write the mask transformers builds from ``attention_mask`` as whatever ops its code ran (``Cast``,
``Flatten``, ``Gather`` of computed indices, ``Reshape``, ``And``, ``Expand``), then add it to each attention's scores
as ``Where(mask, 0, -inf)``. What matters is the value: the ops the mask is computed from are evaluated (one node at a
time, by the constant folder's evaluator and under its size budget, nothing else of the model) on every 0/1 row of
the key length (for more than 7 steps, 256 seeded rows) and 64 rows of values from -3 to 5, at the file's own batch
where it has one. Where the mask is exactly ``attention_mask != 0`` for each key, for every row, the Add of the
Where becomes wconv's spelling of that (``padding_mask_pass.py`` then the attention rule read it):
``Where(Unsqueeze(Expand(Unsqueeze(Not(Equal(attention_mask, 0)), 1), [1, T, 1]), 1), scores, -inf)``, the file's
hidden score kept. A mask a model without ``attention_mask`` builds from its ids' size alone (GPT-2's, Llama's at a
free batch) is probed the same way: where it is the causal mask for every row, it becomes wconv's causal spelling
(``Where(Cast(Trilu(Expand(1, Shape(scores)), upper=0), bool), scores, hidden)``); where it is both, the padding
mask and the causal one (GPT-2's and Llama's exported with attention_mask), both spellings, causal first. Anything
else (a mask reading more than zeros, ...) stays, to be refused.
"""

from __future__ import annotations

import itertools

import numpy as np

from ...rewrite import Match, Rule
from .probes import computed_from, evaluated
from .wiring import Wiring

EXHAUSTIVE, ROWS, OTHER_ROWS = 7, 256, 64


def rule(inputs: dict) -> Rule:
    """The rule, for a graph whose inputs are ``inputs`` (name -> (shape, numpy dtype))."""
    probed = {}

    def match(wiring: Wiring, add) -> Match | None:
        where = next((wiring.producer.get(value) for value in add.input
                      if getattr(wiring.producer.get(value), "op_type", None) == "Where"), None)
        if where is None or len(add.input) != 2:
            return None
        mask, zero, hidden = where.input  # dynamo shares one Where among the attentions: each Add is a match
        if not _scalar(wiring, zero, lambda v: v == 0) or not _scalar(wiring, hidden, lambda v: v <= -1e9) or \
                where.output[0] in wiring.outputs:
            return None
        nodes, source, sized = computed_from(wiring, mask, inputs)
        if source is None:
            return None
        if mask not in probed:
            probed[mask] = _kind(nodes, source, sized, mask, inputs, wiring.constants)
        kind, steps = probed[mask] or (None, None)
        if kind is None:
            return None
        name = add.name or add.output[0]
        scores = next(value for value in add.input if value != where.output[0])
        if kind == CAUSAL:
            return Match([add], _causal(name, scores, hidden, add.output[0]), constants={f"{name}/causal.one": ONE},
                         feeding=[where, *nodes])
        if kind == PADDING_CAUSAL:  # the causal Where first, then the padding's, as wconv writes both
            spelled = _padding(name, source) + _causal(name, scores, hidden, f"{name}/causal/out") + \
                _masked(name, f"{name}/causal/out", hidden, add.output[0])
            return Match([add], spelled, constants={**_spelling_constants(name, steps), f"{name}/causal.one": ONE},
                         feeding=[where, *nodes])
        spelled = _padding(name, source) + _masked(name, scores, hidden, add.output[0])
        return Match([add], spelled, constants=_spelling_constants(name, steps), feeding=[where, *nodes])

    return Rule("padding mask, as exporters spell it", ("Add",), match)


def _scalar(wiring, name, test) -> bool:
    value = wiring.constants.get(name)
    return value is not None and np.size(value) == 1 and bool(test(float(np.ravel(value)[0])))


def _rows(steps: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    ones = np.array(list(itertools.product([0, 1], repeat=steps))) if steps <= EXHAUSTIVE else \
        rng.integers(0, 2, (ROWS, steps))
    return np.concatenate([ones, rng.integers(-3, 6, (OTHER_ROWS, steps))])


CAUSAL, PADDING, PADDING_CAUSAL = "causal", "padding", "padding and causal"
ONE = np.array(1.0, np.float32)


def _kind(nodes, source, sized, mask, inputs, constants) -> tuple | None:
    """(PADDING, the query steps T) where ``mask`` is exactly ``source != 0`` for each key, for every probe row;
    (CAUSAL, None) where it is the causal mask for every row whatever the ids (transformers' mask builder run on the
    ids of a model called without attention_mask, at a free batch); (PADDING_CAUSAL, T) where it is both (GPT-2's,
    Llama's with attention_mask); else None."""
    found, rows = evaluated(nodes, source, sized, mask, inputs, constants, _rows(inputs[source][0][1]))
    if found is None or found.dtype != bool or found.ndim != 4 or found.shape[0] != len(rows) or \
            found.shape[-1] != rows.shape[1]:
        return None
    tokens = (rows != 0)[:, None, None, :]
    if bool((found == tokens).all()):
        return PADDING, int(found.shape[-2])
    if found.shape[-2] != found.shape[-1]:
        return None
    lower = np.tril(np.ones(found.shape[-2:], dtype=bool))
    if bool((found == lower).all()):
        return CAUSAL, None
    return (PADDING_CAUSAL, int(found.shape[-2])) if bool((found == (tokens & lower)).all()) else None


def _causal(name, scores, hidden, output) -> list:
    """The causal mask as wconv writes it (the attention rule reads it): Where(Cast(Trilu(Expand(1, Shape(scores)),
    upper=0), bool), scores, hidden)."""
    from onnx import helper

    n = f"{name}/causal"
    return [helper.make_node("Shape", [scores], [f"{n}/shape"], name=f"{n}/shape"),
            helper.make_node("Expand", [f"{n}.one", f"{n}/shape"], [f"{n}/ones"], name=f"{n}/ones"),
            helper.make_node("Trilu", [f"{n}/ones"], [f"{n}/lower"], name=f"{n}/lower", upper=0),
            helper.make_node("Cast", [f"{n}/lower"], [f"{n}/keep"], name=f"{n}/keep", to=9),  # BOOL
            helper.make_node("Where", [f"{n}/keep", scores, hidden], [output], name=n)]


def _padding(name, source) -> list:
    """The padding_mask op as wconv writes it (padding_mask_pass.py reads it): ``{name}/padding/mask``."""
    from onnx import helper

    n = f"{name}/padding"
    return [helper.make_node("Equal", [source, f"{n}.zero"], [f"{n}/is_padding"], name=f"{n}/is_padding"),
            helper.make_node("Not", [f"{n}/is_padding"], [f"{n}/tokens"], name=f"{n}/tokens"),
            helper.make_node("Unsqueeze", [f"{n}/tokens", f"{n}.axis"], [f"{n}/row"], name=f"{n}/row"),
            helper.make_node("Expand", [f"{n}/row", f"{n}.shape"], [f"{n}/mask"], name=n)]


def _masked(name, scores, hidden, output) -> list:
    """The attention's scores, hidden where the mask is False (the attention rule reads it)."""
    from onnx import helper

    return [helper.make_node("Unsqueeze", [f"{name}/padding/mask", f"{name}/padding.axis"], [f"{name}/heads"],
                             name=f"{name}/heads"),
            helper.make_node("Where", [f"{name}/heads", scores, hidden], [output], name=f"{name}/masked")]


def _spelling_constants(name, steps: int) -> dict:
    n = f"{name}/padding"
    return {f"{n}.zero": np.array(0, np.int64), f"{n}.axis": np.array([1], np.int64),
            f"{n}.shape": np.array([1, steps, 1], np.int64)}
