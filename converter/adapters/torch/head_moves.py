"""What transformers does to the query, key and value heads between their split and the attention call, read back
for the attention rule (sdpa_attention.py): rotary position embeddings and the repeat of grouped key/value heads.

    q = q * cos + rotate_half(q) * sin      # rotate_half(x) = cat(-x[..., d/2:], x[..., :d/2], dim=-1)
    k = repeat_kv(k, heads // kv_heads)     # k[:, :, None].expand(N, g, times, T, d).reshape(N, g * times, T, d)

``cos`` and ``sin`` are tensors forward() computes from positions alone, so torch.export's constants (folded by
computed_weights.py): the IR takes them as the attention's rotary tables (ops/rotary.py). Each reader returns the
value before the move, what it found, and the ops it read; None where the spelling is another.
"""

from __future__ import annotations

import numpy as np

from .ops_view import ADD, MULTIPLY, sizes

NEGATE = ("aten.neg.default", "neg", "torch.neg", "operator.neg")
CONCATENATE = ("torch.cat", "torch.concat", "torch.concatenate", "aten.cat.default")
GETITEM = ("operator.getitem",)


def unrepeated(view, value):
    """(the value before ``repeat_kv``, how many times each head is repeated, the ops, the ops reading the batch
    size for the expand) for ``x.unsqueeze(2).expand(N, g, times, T, d).reshape(N, g * times, T, d)``; else
    (value, 1, [], [])."""
    reshape = view.op(value)
    expand = view.op(reshape.node.args[0]) if _is(reshape, ("reshape", "view")) else None
    unsqueeze = view.op(expand.node.args[0]) if _is(expand, ("expand",)) else None
    if not _is(unsqueeze, ("unsqueeze",)) or unsqueeze.node.args[1:2] not in ((2,), (-3,)):
        return value, 1, [], []
    expanded, shape = sizes(expand), sizes(reshape)
    if len(expanded) != 5 or len(shape) != 4 or not all(isinstance(each, int) and each > 0 for each in expanded[1:]):
        return value, 1, [], []
    groups, times, steps, size = expanded[1:]
    if shape[1:] != [groups * times, steps, size]:
        return value, 1, [], []
    feeding = [view.op(size_node) for size_node in expanded if hasattr(size_node, "op")]  # the batch size read
    return unsqueeze.node.args[0], times, [reshape, expand, unsqueeze], [op for op in feeding if op is not None]


def unrotated(view, value):
    """(the value before the rotation, its cos table (steps, d), its sin table, the ops) for
    ``x * cos + rotate_half(x) * sin`` on a (N, heads, T, d) value, either operand order; else None."""
    add = view.op(value)
    if not _is(add, ADD) or len(add.node.args) != 2:
        return None
    for by_cos, by_sin in (add.node.args, add.node.args[::-1]):
        cos = _scaled(view, by_cos)
        sin = _scaled(view, by_sin)
        if cos is None or sin is None:
            continue
        (x, cos_table, cos_ops), (turned, sin_table, sin_ops) = cos, sin
        found = _rotated_half(view, turned)
        if found is None or found[0] is not x:
            continue
        cos_rows, sin_rows = _table(cos_table, 2 * found[2]), _table(sin_table, 2 * found[2])
        if cos_rows is None or sin_rows is None or cos_rows.shape != sin_rows.shape:
            return None
        return x, cos_rows, sin_rows, [add, view.op(by_cos), view.op(by_sin), *cos_ops, *sin_ops, *found[1]]
    return None


def _scaled(view, value):
    """(the tensor, the constant table, the constant's ops) for ``tensor * constant``, either order."""
    multiply = view.op(value)
    if not _is(multiply, MULTIPLY) or len(multiply.node.args) != 2:
        return None
    for tensor, constant in (multiply.node.args, multiply.node.args[::-1]):
        getter = view.op(constant)
        if _is(getter, ("get_attr",)) and getter.input[0] in view.constants and hasattr(tensor, "op"):
            return tensor, view.constants[getter.input[0]], [getter]
    return None


def _rotated_half(view, value):
    """(x, the ops, d/2) for ``cat([-x[..., d/2:], x[..., :d/2]], dim=-1)``."""
    cat = view.op(value)
    if not _is(cat, CONCATENATE):
        return None
    parts = cat.node.args[0]
    axis = cat.node.args[1] if len(cat.node.args) > 1 else cat.node.kwargs.get("dim", 0)
    if not isinstance(parts, (list, tuple)) or len(parts) != 2 or axis not in (-1, 3):
        return None
    negate, first = view.op(parts[0]), view.op(parts[1])
    second = view.op(negate.node.args[0]) if _is(negate, NEGATE) else None
    if second is None or not _is(first, GETITEM):
        return None
    x, (start, half), rest = first.node.args[0], _last_axis_slice(first) or (None, None), _last_axis_slice(second)
    if second.node.args[0] is not x or start not in (None, 0) or not isinstance(half, int) or half < 1 or \
            rest not in ((half, None), (half, 2 * half)):
        return None  # a slice to the end that is not the second half leaves the table's width unequal: refused
    return x, [cat, negate, first, second], half


def _last_axis_slice(item):
    """(start, stop) of ``x[..., start:stop]`` (the last axis sliced, step 1, the others whole), else None."""
    if not _is(item, GETITEM):
        return None
    index = item.node.args[1]
    index = index if isinstance(index, tuple) else (index,)
    if not index or not isinstance(index[-1], slice) or index[-1].step not in (None, 1):
        return None
    whole = all(each is Ellipsis or each == slice(None) for each in index[:-1])
    if not whole or Ellipsis not in index[:-1] and len(index) != 4:
        return None
    return index[-1].start, index[-1].stop


def _table(constant, size: int):
    """A rotary table (steps, size) from a constant that broadcasts over the batch and heads alone."""
    array = np.asarray(constant)
    if array.ndim < 2 or array.shape[-1] != size or any(axis != 1 for axis in array.shape[:-2]):
        return None
    return np.ascontiguousarray(array.reshape(-1, size))


def _is(op, types) -> bool:
    return op is not None and op.op_type in types
