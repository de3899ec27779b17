"""The rule lifting multi-head attention written around ``F.scaled_dot_product_attention`` into the attention op.

What transformers' BERT, RoBERTa, ViT and others compute (and torch.export records):

    q = self.query(x).view(N, T, heads, d).transpose(1, 2)       # and k, v from their own Linear
    out = F.scaled_dot_product_attention(q, k, v, scale=d ** -0.5)
    out = out.transpose(1, 2).reshape(N, T, heads * d)           # (a reshape to the same shape may come first)
    y = self.output(out)                                          # the output projection

The four Linear calls are the op's projections (their weights are its ``wq``... ``bo``, rows grouped by head as the
IR keeps them); the call is named after the module that holds the attention. GPT-2 packs q, k and v into one
projection (transformers' ``Conv1D``, its weight stored (in, out)) split three ways, ``c_attn(x).split(E, dim=2)``:
each takes its third of the rows. Llama's and Qwen2's rotate q and k by position and repeat k and v from fewer
heads (``repeat_kv``, or the call's ``enable_gqa``): head_moves.py reads both, the op's rotary tables and kv_heads.
No mask, or ``is_causal=True``, or a padding mask (padding_masks.py), or a float mask that is a constant of the
weights (T5's relative position bias, computed from its table for the declared length: computed_weights.py), added
to the scores as the op's ``score_bias``; any scale (T5's is 1). Dropout, a float mask that hides steps (-inf or the
dtype's lowest), any other mask or other moves leave the call as it is, which the reader then refuses by name.
"""

from __future__ import annotations

import operator

import numpy as np

from ...layouts import permute
from ...ops.attention import ATTENTION, ZEROS, score_bias
from ...ops.dense import CONV1D_WEIGHT
from ...rewrite import Lifted, Match, Rule
from .head_moves import unrepeated, unrotated
from .ops_view import sizes
from .padding_masks import attention_mask, hiding_where

SDPA = "aten.scaled_dot_product_attention.default"
PROJECTIONS = {"module:Linear": lambda module: module.out_features, "module:Conv1D": lambda module: module.nf}
SPLITS = ("torch.functional.split", "torch.split", "split")


def _argument(node, keyword: str, position: int, default):
    if keyword in node.kwargs:
        return node.kwargs[keyword]
    return node.args[position] if len(node.args) > position else default


def _swaps(op, first: int, second: int) -> bool:
    return op is not None and op.op_type == "transpose" and sorted(op.node.args[1:3]) == [first, second]


def _heads(view, value):
    """(the projection's op, which of its parts (None: all of it), its input, heads, head size, the ops between,
    steps) for ``linear(x).view(N, T, h, d).transpose(1, 2)`` or ``packed(x).split(E, dim=-1)[part].view(...)...``."""
    swap = view.op(value)
    if not _swaps(swap, 1, 2):
        return None
    split = view.op(swap.node.args[0])
    if split is None or split.op_type not in ("reshape", "view") or len(sizes(split)) != 4:
        return None
    heads, size = sizes(split)[2:]
    if not isinstance(heads, int) or not isinstance(size, int):
        return None
    projection, part, between = view.op(split.node.args[0]), None, [swap, split]
    if projection is not None and projection.op_type == "operator.getitem":
        projection, part, parts = _packed(view, projection, heads * size)
        between += parts
    if projection is None or projection.op_type not in PROJECTIONS:
        return None
    if PROJECTIONS[projection.op_type](projection.module) != heads * size * (1 if part is None else 3):
        return None
    return projection, part, projection.node.args[0], heads, size, between, sizes(split)[1]


def _packed(view, item, width: int):
    """(the projection, the part, the split and item ops) for ``projection(x).split(width, dim=-1)[part]``."""
    split = view.op(item.node.args[0])
    if split is None or split.op_type not in SPLITS or item.node.target is not operator.getitem:
        return None, None, []
    args = list(split.node.args) + [split.node.kwargs.get("dim", 0)] * (3 - len(split.node.args))
    projection = view.op(args[0])
    if args[1] != width or args[2] not in (2, -1) or projection is None or projection.op_type not in PROJECTIONS \
            or PROJECTIONS[projection.op_type](projection.module) != 3 * width:
        return None, None, []
    return projection, item.node.args[1], [item, split]


def _kernel(view, projection, part):
    """A projection's (kernel as the IR keeps it, (o i), bias or None), or the rows of its ``part``."""
    weights = view.weights(projection)
    kernel, bias = weights["weight"], weights.get("bias")
    if projection.op_type == "module:Conv1D":
        kernel = permute(kernel, CONV1D_WEIGHT, "o i", what=f"layer '{projection.node.target}' weight")
    if part is not None:
        rows = slice(part * kernel.shape[0] // 3, (part + 1) * kernel.shape[0] // 3)
        kernel, bias = kernel[rows], None if bias is None else bias[rows]
    return kernel, bias


def _merged(view, sdpa, heads: int, steps, size: int):
    """(the ops merging the heads back, the output projection's op) after ``sdpa``."""
    between, current = [], view.only_user(sdpa)
    if current is not None and current.op_type == "reshape" and sizes(current)[1:] == [heads, steps, size]:
        between.append(current)  # a reshape to the shape it has (transformers' attention_interface)
        current = view.only_user(current)
    if not _swaps(current, 1, 2):
        return None
    between.append(current)
    current = view.only_user(current)
    if current is None or current.op_type != "reshape" or sizes(current)[1:] not in ([steps, heads * size],
                                                                                      [steps, -1]):
        return None
    between.append(current)
    projection = view.only_user(current)
    if projection is None or projection.op_type not in PROJECTIONS:
        return None
    return between, projection


def _operand(view, value, rotary: bool):
    """``_heads`` of one operand, with what head_moves.py reads before it: (heads found, times repeated, rotary
    tables (cos, sin) or None, the ops of the moves, the ops feeding them)."""
    inner, times, repeat_ops, feeding = unrepeated(view, value)
    tables, rotate_ops = None, []
    if rotary and (rotated := unrotated(view, inner)) is not None:
        inner, tables, rotate_ops = rotated[0], rotated[1:3], rotated[3]
    return _heads(view, inner), times, tables, repeat_ops + rotate_ops, feeding


def _tables(q_tables, k_tables):
    """The rotary params when q and k are rotated by the same tables, {} when neither is; None otherwise."""
    if q_tables is None and k_tables is None:
        return {}
    if q_tables is None or k_tables is None or any(a.shape != b.shape or not (a == b).all()
                                                   for a, b in zip(q_tables, k_tables)):
        return None
    return {"cos": q_tables[0], "sin": q_tables[1]}


def _score_bias(view, mask, heads: int):
    """(the (heads, T, S) bias, its get_attr) for a float mask that is a constant of the weights, of one sample (its
    batch axis 1, if any), as the attention op takes it (attention.score_bias); else None."""
    getter = view.op(mask)
    if getter is None or getter.op_type != "get_attr" or getter.input[0] not in view.constants:
        return None
    array = np.asarray(view.constants[getter.input[0]])
    table = score_bias(array, heads) if array.ndim != 4 or array.shape[0] == 1 else None
    return None if table is None else (table, getter)


def match(view, op):
    node = op.node
    if _argument(node, "dropout_p", 4, 0.0):
        return None
    causal, scale = bool(_argument(node, "is_causal", 5, False)), node.kwargs.get("scale")
    mask, mask_ops, score_bias = [], [], None  # a padding mask (padding_masks.py), or T5's bias, or both
    given, empty_rows = _argument(node, "attn_mask", 3, None), ZEROS  # SDPA: a query step masked whole: no value
    hiding = hiding_where(view, given) if given is not None else None
    if hiding is not None:  # where(mask, bias, lowest): a step masked whole averages every value
        given, hiding_op, empty_rows = hiding[0], hiding[2], None
    if given is not None and (found := attention_mask(view, given)) is not None:
        mask, mask_ops, causal = [found[0]], found[1], causal or found[2]
    if hiding is not None and not mask:
        return None
    bias_given = hiding[1] if hiding is not None else given if given is not None and not mask else None
    operands = [_operand(view, value, rotary) for value, rotary in zip(node.args[:3], (True, True, False))]
    found = [each[0] for each in operands]
    if None in found:
        return None
    (q, q_part, query, heads, size, q_ops, steps), (k, k_part, key, k_heads, k_size, k_ops, _), \
        (v, v_part, value, v_heads, v_size, v_ops, _) = found
    (_, q_times, q_tables, q_moves, _), (_, k_times, k_tables, k_moves, k_feeding), \
        (_, v_times, _, v_moves, v_feeding) = operands
    rotary = _tables(q_tables, k_tables)
    bias_feeding = []  # the bias's get_attr: the layers after the first may read it too (T5 shares one)
    if bias_given is not None:
        if (found_bias := _score_bias(view, bias_given, heads)) is None:
            return None
        score_bias, bias_feeding = found_bias[0], [found_bias[1]]
    if node.kwargs.get("enable_gqa", False) and k_times == v_times == 1 and k_heads and heads % k_heads == 0:
        k_times = v_times = heads // k_heads  # the call repeats the key/value heads itself
    grouped = q_times == 1 and k_heads == v_heads and k_times == v_times and heads == k_heads * k_times
    rotated = rotary is not None and (not rotary or rotary["cos"].shape == (steps, size))
    if not grouped or not rotated or size != k_size:
        return None
    parts = (q_part, k_part, v_part)
    if parts != (None, None, None) and (parts != (0, 1, 2) or not q is k is v):
        return None  # a packed projection: all three parts of one, in order
    merged = _merged(view, op, heads, steps, v_size)
    if merged is None:
        return None
    between, output = merged
    params = dict(rotary) | ({} if score_bias is None else {"score_bias": score_bias})
    for short, projection, part in (("q", q, q_part), ("k", k, k_part), ("v", v, v_part), ("o", output, None)):
        params[f"w{short}"], bias = _kernel(view, projection, part)
        if bias is not None:
            params[f"b{short}"] = bias
    name = node.meta.get("module_path") or node.name
    attention = ATTENTION.node(name, [query.name, key.name, value.name, *mask], list(output.output), params, heads,
                               causal=causal, empty_rows=empty_rows, kv_heads=k_heads, scale=scale)
    mask_ops += [hiding_op] if hiding is not None else []
    replaced = [q, *q_ops, *q_moves, k, *k_ops, *k_moves, v, *v_ops, *v_moves, *mask_ops, op, *between, output]
    return Match(list({id(each): each for each in replaced}.values()), [Lifted.of(attention)],
                 feeding=list({id(each): each for each in k_feeding + v_feeding + bias_feeding}.values()))


RULE = Rule("scaled dot-product attention", (SDPA,), match)
