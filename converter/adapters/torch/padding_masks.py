"""transformers' padding mask, whatever code builds it, read as what it computes: ``attention_mask != 0`` for each
key step, and the causal mask too where the model has one.

transformers builds an attention's boolean mask from the ``attention_mask`` input with indexing, ``vmap`` and
version-dependent helpers (``masking_utils.py``); torch.export records whichever ops ran. What matters is the value.
So every input pattern is tried: the nodes a mask is computed from (only those: the model never sees the probe's
rows) run once on a batch holding each 0/1 row of the key length (2^S rows; for S > 10, 1024 seeded random rows with
the all-ones and all-zeros rows) and 256 rows of values from -3 to 5 (transformers reads any nonzero value as a
token), and each distinct mask the attentions get is compared with ``(mask != 0)[n, None, s]`` alone and with the
causal mask. Where one of them is exactly what the
module computed for every row, the mask's ops are replaced by that spelling (runnable, so validate runs it):

    tokens = attention_mask.ne(0).unsqueeze(1).expand(-1, T, -1)      # the padding_mask op (padding_mask rule)
    mask = tokens.unsqueeze(1)                                        # per attention, read by sdpa_attention.py
    mask = mask & causal                                              # where causal: a (T, S) constant

Anything else (a mask that depends on the ids' values beyond zero or not, on other rows, ...) is left as it is, and
the reader refuses it by name.
"""

from __future__ import annotations

import itertools

import numpy as np

from ...frameworks import require
from ...ops.padding_mask import PADDING_MASK
from ...rewrite import Lifted, Match, Rule
from .probes import read_input, run_on_rows
from .static_shapes import SDPA

EXHAUSTIVE = 10  # key lengths up to this are tried with every 0/1 row
ROWS = 1024  # else this many seeded random rows
OTHER_ROWS = 256  # and rows of values from -3 to 5: ``ids > 0`` is not ``ids != 0``
CAUSAL = "wconv_causal_mask"  # the (T, S) constant a causal padding mask is combined with


def fold(traced, input_shapes, input_dtypes) -> None:
    """Replace, in ``traced``, each attention mask built from one input's values by the padding-mask spelling."""
    torch = require("torch")
    calls = [node for node in traced.graph.nodes if str(node.target) == SDPA and _mask(node) is not None]
    placeholders = [node for node in traced.graph.nodes if node.op == "placeholder"]
    found, kinds = {}, {}
    for call in calls:
        probed = _probed(call)
        source = read_input(probed)
        if source is None or source not in placeholders:
            continue
        index = placeholders.index(source)
        shape = input_shapes[index]
        if len(shape) != 1 or shape[0] is None:
            continue  # a (batch, key steps) mask of a known length
        if probed not in kinds:  # the layers of a model share one mask: probed once
            rows = _rows(shape[0])
            mask = (run_on_rows(traced, input_shapes, input_dtypes, index, rows, probed) or {}).get(probed)
            kinds[probed] = _kind_of(mask, rows, torch), tuple(getattr(mask, "shape", ())[-2:])
        kind, steps = kinds[probed]
        if kind is not None:
            found.setdefault(source, []).append((call, kind, steps))
    for source, uses in found.items():
        _respell(traced, source, uses, torch)
    traced.recompile()


def _mask(call):
    return call.args[3] if len(call.args) > 3 else call.kwargs.get("attn_mask")


HIDING = "aten.where.ScalarOther"  # T5: where(keep, position_bias, lowest), a float mask that hides steps


def _hiding(mask):
    """The ``where(keep, scores_bias, lowest)`` an attention gets as its float mask, else None."""
    if getattr(mask, "op", None) != "call_function" or str(mask.target) != HIDING or len(mask.args) != 3 or \
            not isinstance(mask.args[2], float) or mask.args[2] > -1e30 or not hasattr(mask.args[0], "op"):
        return None
    return mask


def _probed(call):
    """What of an attention's mask says where it may attend: the mask, or the ``keep`` of a hiding where."""
    hiding = _hiding(_mask(call))
    return hiding.args[0] if hiding is not None else _mask(call)


def _rows(steps: int) -> np.ndarray:
    """Every 0/1 row (or many), then rows of other values: a mask must treat every nonzero value as a token."""
    rng = np.random.default_rng(0)
    others = rng.integers(-3, 6, (OTHER_ROWS, steps))
    if steps <= EXHAUSTIVE:
        return np.concatenate([np.array(list(itertools.product([0, 1], repeat=steps)), dtype=np.int64), others])
    return np.concatenate([np.ones((1, steps), np.int64), np.zeros((1, steps), np.int64),
                           rng.integers(0, 2, (ROWS, steps)), others])


def _kind_of(mask, rows, torch) -> str | None:
    """'padding' or 'causal' where ``mask`` (rows, 1 or heads, T, S) is exactly that for every row, else None."""
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.ndim != 4 or \
            mask.shape[0] != len(rows) or mask.shape[-1] != rows.shape[1]:
        return None
    tokens = torch.from_numpy(rows != 0)[:, None, None, :]
    if bool((mask == tokens).all()):
        return "padding"
    causal = torch.ones(mask.shape[-2:], dtype=torch.bool).tril()
    return "causal" if bool((mask == (tokens & causal)).all()) else None


def _respell(traced, source, uses, torch) -> None:
    """``uses``: (the attention call, 'padding' or 'causal', its mask's (T, S))."""
    first = min((call for call, _, _ in uses), key=lambda node: list(traced.graph.nodes).index(node))
    with traced.graph.inserting_before(first):
        tokens = {}
        for _, _, (steps, _) in uses:
            if steps not in tokens:
                not_zero = traced.graph.call_method("ne", (source, 0))
                row = traced.graph.call_method("unsqueeze", (not_zero, 1))
                tokens[steps] = traced.graph.call_method("expand", (row, -1, steps, -1))
    for call, kind, (steps, keys) in uses:
        with traced.graph.inserting_before(call):
            mask = traced.graph.call_method("unsqueeze", (tokens[steps], 1))
            if kind == "causal":
                mask = traced.graph.call_function(torch.logical_and, (mask, _causal(traced, steps, keys, torch)))
            if (hiding := _hiding(_mask(call))) is not None:  # each attention its own where, around its mask
                mask = traced.graph.call_function(hiding.target, (mask, *hiding.args[1:]))
        _set_mask(call, mask)


def _causal(traced, steps: int, keys: int, torch):
    """A get_attr of the (T, S) causal mask, a buffer on the traced module."""
    name = f"{CAUSAL}_{steps}_{keys}"
    if not hasattr(traced, name):
        traced.register_buffer(name, torch.ones((steps, keys), dtype=torch.bool).tril(), persistent=False)
    return traced.graph.get_attr(name)


def _set_mask(call, mask) -> None:
    if len(call.args) > 3:
        call.args = (*call.args[:3], mask, *call.args[4:])
    else:
        call.kwargs = {**call.kwargs, "attn_mask": mask}


def _sizes(op) -> tuple:
    return tuple(op.node.args[1:]) if not op.node.kwargs else ()


def match(view, not_zero):
    """``input.ne(0).unsqueeze(1).expand(-1, T, -1)``, as fold() spells it: the padding_mask op."""
    source = not_zero.node.args[0] if not_zero.node.args else None
    if getattr(source, "op", None) != "placeholder" or not_zero.node.args[1:] != (0,) or not_zero.node.kwargs:
        return None
    row = view.only_user(not_zero)
    if row is None or row.op_type != "unsqueeze" or _sizes(row) != (1,):
        return None
    tokens = view.only_user(row)
    if tokens is None or tokens.op_type != "expand" or len(_sizes(tokens)) != 3 or \
            _sizes(tokens)[0::2] != (-1, -1) or not isinstance(_sizes(tokens)[1], int):
        return None
    padding = PADDING_MASK.node(f"{source.name}.padding", [source.name], list(tokens.output), _sizes(tokens)[1])
    return Match([not_zero, row, tokens], [Lifted.of(padding)])


def hiding_where(view, mask):
    """(the mask inside, the scores' bias, the where's op) for the ``where(mask, bias, lowest)`` fold() gives an
    attention whose float mask hid steps so (T5); else None."""
    op = view.op(mask)
    if op is None or op.op_type != HIDING or _hiding(op.node) is None:
        return None
    return op.node.args[0], op.node.args[1], op


def attention_mask(view, mask):
    """(the padding mask value, the ops between it and an attention, causal) for what fold() gives an attention:
    ``tokens.unsqueeze(1)``, and ``& causal`` where causal; else None."""
    op, between, causal = view.op(mask), [], False
    if op is not None and op.op_type == "torch.logical_and" and len(op.node.args) == 2:
        constant = view.op(op.node.args[1])
        if constant is None or constant.op_type != "get_attr" or not str(constant.node.target).startswith(CAUSAL):
            return None
        between, causal, op = [op, constant], True, view.op(op.node.args[0])
    if op is None or op.op_type != "unsqueeze" or _sizes(op) != (1,) or not hasattr(op.node.args[0], "name"):
        return None
    return op.node.args[0].name, [*between, op], causal  # the (N, T, S) mask, a head axis added


RULE = Rule("padding mask", ("ne",), match)
