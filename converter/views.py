"""How each framework holds an IR value, derived from the value's axis pattern alone.

Every IR value carries a pattern of its axes in IR order: ``"n c h w"`` (a feature map),
``"n t f"`` (a sequence), ``"n f"`` (a vector), ``"n t"`` (token ids). torch and ONNX hold a
value in IR order. Keras holds it with the channel axis ``c`` last (its ``channels_last``
data format) and every other axis in IR order: ``"n c h w"`` is ``"n h w c"`` in Keras, while a
sequence ``"n t f"`` has no channel axis and is held alike everywhere.

Ops declare the *kind* of pattern they compute on (``CHANNELS_FIRST`` for convs and pools,
``FEATURES_LAST`` for Dense and recurrent layers, ``VIEW_FREE`` for reshapes, whose element order
must be the same in every framework). Where a value of one kind meets an op of another, one
relayout is inserted (``relayout.py``); every activation transpose of every writer is derived from
the patterns on either side, here.
"""

from __future__ import annotations

import numpy as np

from .errors import ShapeMismatch, Unsupported

BATCH = "n"
CHANNEL = "c"  # last in Keras, second (after the batch) in torch and ONNX

CHANNELS_FIRST = "channels_first"  # the channel axis is axis 1 (convs, pools, BatchNorm)
FEATURES_LAST = "features_last"  # the axis the op reduces is last in every framework (Dense, LSTM, LayerNorm)
VIEW_FREE = "view_free"  # every framework holds the value in IR order (Reshape: its element order)
KINDS = (CHANNELS_FIRST, FEATURES_LAST, VIEW_FREE)

_DEFAULTS = {
    CHANNELS_FIRST: {1: "n", 2: "n c", 3: "n c w", 4: "n c h w", 5: "n c d h w"},
    FEATURES_LAST: {1: "n", 2: "n f", 3: "n t f", 4: "n h w f", 5: "n d h w f"},
}
_DEFAULTS[VIEW_FREE] = _DEFAULTS[FEATURES_LAST]
VECTOR = "n f"
TOKENS = "n t"  # integer ids, one per step


def axes(pattern: str) -> list[str]:
    return pattern.split()


def default(kind: str, rank: int) -> str:
    """The pattern of a value of ``kind`` and ``rank`` that nothing else describes."""
    if rank not in _DEFAULTS[kind]:
        raise Unsupported(f"a value of rank {rank} is beyond what wconv converts (ranks 1 to 5)")
    return _DEFAULTS[kind][rank]


def order(pattern: str, framework: str) -> list[int]:
    """Axis ``k`` of the framework's tensor is IR axis ``order[k]``."""
    letters = axes(pattern)
    ir = list(range(len(letters)))
    if framework != "keras" or CHANNEL not in letters:
        return ir
    channel = letters.index(CHANNEL)
    return [a for a in ir if a != channel] + [channel]


def view(pattern: str, framework: str) -> str:
    """The pattern of the framework's tensor: ``view("n c h w", "keras") == "n h w c"``."""
    letters = axes(pattern)
    return " ".join(letters[a] for a in order(pattern, framework))


def is_kind(pattern: str | None, kind: str | None) -> bool:
    """Whether a value of ``pattern`` can enter an op that computes on ``kind``."""
    if kind is None or pattern is None or len(axes(pattern)) <= 2:
        return True  # (batch, features) is held alike everywhere
    if kind == CHANNELS_FIRST:
        return axes(pattern)[1] == CHANNEL
    if kind == FEATURES_LAST:
        return order(pattern, "keras")[-1] == len(axes(pattern)) - 1
    return order(pattern, "keras") == list(range(len(axes(pattern))))


def held_alike(pattern: str, kind: str) -> str:
    """A pattern of ``kind`` that Keras holds as it holds ``pattern`` (the same Keras tensor, other IR order):
    what a Keras layer of that kind sees in a value it is given. Keras' last axis is the channel axis of
    a CHANNELS_FIRST op and the feature axis of the others."""
    keras = axes(view(pattern, "keras"))
    if len(keras) <= 2 or kind is None:
        return pattern
    if kind == CHANNELS_FIRST:
        return " ".join([BATCH, CHANNEL, *[a for a in keras[1:-1]]])
    return " ".join(keras)


# -- arrays and shapes -----------------------------------------------------------------------------
def to_framework(array: np.ndarray, pattern: str | None, framework: str) -> np.ndarray:
    """An IR-ordered array as ``framework`` holds it."""
    if pattern is None:
        return array
    _check_rank(array, pattern)
    return np.ascontiguousarray(np.transpose(array, order(pattern, framework)))


def from_framework(array: np.ndarray, pattern: str | None, framework: str) -> np.ndarray:
    """A framework's array in IR order."""
    if pattern is None:
        return array
    _check_rank(array, pattern)
    return np.ascontiguousarray(np.transpose(array, np.argsort(order(pattern, framework))))


def moves_elements(order, shape) -> bool:
    """Whether taking the axes of a tensor of ``shape`` in ``order`` puts any element elsewhere in memory: only
    where it reorders two axes of size other than 1 (an unknown size counts as other than 1)."""
    kept = [axis for axis in order if shape is None or shape[axis] != 1]
    return kept != sorted(kept)


def shape_to(shape, pattern: str | None, framework: str):
    if shape is None or pattern is None:
        return shape
    return tuple(shape[a] for a in order(pattern, framework))


def shape_from(shape, pattern: str | None, framework: str):
    if shape is None or pattern is None:
        return shape
    return tuple(shape[a] for a in np.argsort(order(pattern, framework)))


def axis_to(axis: int, pattern: str, framework: str) -> int:
    """An IR axis as the framework numbers it; Keras' last axis is written -1, as Keras writes it."""
    rank = len(axes(pattern))
    found = order(pattern, framework).index(axis % rank)
    return -1 if framework == "keras" and found == rank - 1 else found


def axis_from(axis: int, pattern: str, framework: str) -> int:
    """A framework's axis (possibly negative) as the IR axis, non-negative."""
    rank = len(axes(pattern))
    return order(pattern, framework)[axis % rank]


def transpose_in(perm, source: str, target: str, framework: str) -> list[int]:
    """An IR transpose from a value of pattern ``source`` to one of ``target``, as the framework's own
    permutation of its tensors (identity where the framework holds both alike)."""
    source_order, target_order = order(source, framework), order(target, framework)
    inverse = list(np.argsort(source_order))
    return [int(inverse[perm[target_order[k]]]) for k in range(len(target_order))]


def transpose_from(framework_perm, source: str, target: str, framework: str) -> list[int]:
    """The IR permutation from ``source`` to ``target`` that a framework's own permutation of its tensors
    (``framework_perm``; the identity for a relayout) amounts to: the inverse of ``transpose_in``."""
    source_order, target_order = order(source, framework), order(target, framework)
    perm = [0] * len(target_order)
    for k, axis in enumerate(target_order):
        perm[axis] = source_order[framework_perm[k]]
    return perm


def _check_rank(array, pattern: str) -> None:
    if np.ndim(array) != len(axes(pattern)):
        raise ShapeMismatch(f"a value of layout '{pattern}' needs {len(axes(pattern))} axes, "
                            f"found shape {tuple(np.shape(array))}")
