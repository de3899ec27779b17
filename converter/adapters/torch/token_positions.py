"""Positions counted from the token ids (RoBERTa's ``create_position_ids_from_input_ids``), whatever code computes
them, read as the ``token_positions`` op.

A value an Embedding reads that is computed from one int64 input's values alone is run (its ancestors only: the
model never sees the probe's rows) on rows of small ids, where the padding id is certain to appear, of larger ids,
and on rows of one id repeated. Where it is exactly ``cumsum(ids != p) * (ids != p) + p`` for every row, for the
padding id p the all-zeros row gives away (each position p + 1, 2, ...; or p everywhere when 0 is the padding id),
it is spelled anew as

    positions = ids.ne(p).cumsum(1).mul(ids.ne(p)).add(p)        # the token_positions op (RULE)

and else left as it is, which the reader refuses by name.
"""

from __future__ import annotations

import numpy as np

from ...frameworks import require
from ...ops.token_positions import TOKEN_POSITIONS
from ...rewrite import Lifted, Match, Rule
from .computed_weights import is_embedding
from .probes import read_input, run_on_rows

SMALL_IDS = 6  # rows of ids below this: a padding id among them appears often
ROWS = 512


def fold(traced, input_shapes, input_dtypes) -> None:
    """Replace, in ``traced``, each value computed as token positions by the spelling above."""
    torch = require("torch")
    placeholders = [node for node in traced.graph.nodes if node.op == "placeholder"]
    for node in list(traced.graph.nodes):
        source = read_input(node) if node.op in ("call_function", "call_method") else None
        if source not in placeholders or not any(is_embedding(traced, user) for user in node.users):
            continue
        index = placeholders.index(source)
        if input_dtypes[index] != "int64" or len(input_shapes[index]) != 1 or input_shapes[index][0] is None:
            continue
        rows = probe_rows(input_shapes[index][0])
        value = (run_on_rows(traced, input_shapes, input_dtypes, index, rows, node) or {}).get(node)
        found = value.numpy() if isinstance(value, torch.Tensor) and tuple(value.shape) == rows.shape else None
        padding = padding_of(found, rows)
        if padding is not None:
            _respell(traced, node, source, padding)
    traced.graph.eliminate_dead_code()
    traced.recompile()


def probe_rows(steps: int) -> np.ndarray:
    """The all-zeros row first, then rows of one id, of small ids (padding anywhere, left padding included) and of
    larger ids."""
    rng = np.random.default_rng(0)
    same = np.repeat(np.arange(SMALL_IDS, dtype=np.int64)[:, None], steps, axis=1)
    small = rng.integers(0, SMALL_IDS, (ROWS, steps))
    large = rng.integers(0, 1000, (ROWS // 4, steps))
    return np.concatenate([np.zeros((1, steps), np.int64), same, small, large]).astype(np.int64)


def padding_of(found, rows) -> int | None:
    """The padding id p for which ``found`` is the positions of every row, else None."""
    if found is None or not np.issubdtype(found.dtype, np.integer):
        return None
    first = found[0]  # the all-zeros row: p everywhere if 0 is the padding id, else p + 1, p + 2, ...
    padding = int(first[0]) if (first == first[0]).all() else int(first[0]) - 1
    tokens = rows != padding
    return padding if np.array_equal(found, np.cumsum(tokens, axis=1) * tokens + padding) else None


def _respell(traced, node, source, padding: int) -> None:
    with traced.graph.inserting_before(node):
        tokens = traced.graph.call_method("ne", (source, padding))
        counted = traced.graph.call_method("cumsum", (tokens, 1))
        kept = traced.graph.call_method("mul", (counted, tokens))
        positions = traced.graph.call_method("add", (kept, padding))
    node.replace_all_uses_with(positions)


def match(view, tokens):
    """``ids.ne(p).cumsum(1).mul(ids.ne(p)).add(p)``, as fold() spells it: the token_positions op."""
    source, padding = (list(tokens.node.args) + [None, None])[:2]
    if getattr(source, "op", None) != "placeholder" or not isinstance(padding, int) or tokens.node.kwargs:
        return None
    users = {user.node.target: user for user in view.consumers.get(tokens.output[0], [])
             if user.node.op == "call_method"}
    counted, kept = users.get("cumsum"), users.get("mul")
    if len(users) != 2 or counted is None or kept is None or counted.node.args[1:] != (1,) or \
            list(kept.node.args) != [counted.node, tokens.node] or view.only_user(counted) is not kept:
        return None
    positions = view.only_user(kept)
    if positions is None or positions.op_type != "add" or list(positions.node.args) != [kept.node, padding]:
        return None
    node = TOKEN_POSITIONS.node(f"{source.name}.positions", [source.name], list(positions.output), padding)
    return Match([tokens, counted, kept, positions], [Lifted.of(node)])


RULE = Rule("token positions", ("ne",), match)
