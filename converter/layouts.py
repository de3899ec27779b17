"""Axis-label layouts: every permutation is derived from two labelled patterns.

A layout is an einops pattern such as ``"o i"`` or ``"h w i o"``; merged axes
such as ``"(i m) 1 h w"`` are allowed. Nothing here knows about frameworks:
the op table says which pattern each framework uses.
"""

import einops
import numpy as np

from .errors import ShapeMismatch, first_line


def rank(pattern: str) -> int:
    """Number of array axes a pattern describes (a merged group counts once)."""
    depth, count = 0, 0
    for token in pattern.replace("(", " ( ").replace(")", " ) ").split():
        if token == "(":
            depth += 1
            count += depth == 1
        elif token == ")":
            depth -= 1
        elif depth == 0:
            count += 1
    return count


def permute(array: np.ndarray, source: str, target: str, what: str = "tensor", **sizes) -> np.ndarray:
    """Rearrange ``array`` from layout ``source`` to ``target``.

    A rank that does not fit the pattern is an error naming both, never a reshape.
    """
    array = np.asarray(array)
    if array.ndim != rank(source):
        raise ShapeMismatch(
            f"{what}: layout '{source}' needs {rank(source)} axes, found shape {tuple(array.shape)}"
        )
    if source == target:
        return array
    try:
        return np.ascontiguousarray(einops.rearrange(array, f"{source} -> {target}", **sizes))
    except einops.EinopsError as error:
        raise ShapeMismatch(
            f"{what}: cannot map shape {tuple(array.shape)} from '{source}' to '{target}': {first_line(error)}"
        ) from None



# -- activations: Keras is channels-last, the canonical IR channels-first -------------
# Tensors of rank >= 3 are feature maps (N, spatial..., C) in Keras and (N, C, spatial...)
# canonically; rank 2 (N, features) is the same in both.


def channels_first_order(rank: int) -> list[int]:
    """Axis ``i`` of the canonical tensor is axis ``order[i]`` of the channels-last one."""
    return [0, rank - 1, *range(1, rank - 1)] if rank >= 3 else list(range(rank))


def channels_last_order(rank: int) -> list[int]:
    """Axis ``i`` of the channels-last tensor is axis ``order[i]`` of the canonical one."""
    return [0, *range(2, rank), 1] if rank >= 3 else list(range(rank))


def shape_to_channels_first(shape):
    return None if shape is None else tuple(shape[i] for i in channels_first_order(len(shape)))


def shape_to_channels_last(shape):
    return None if shape is None else tuple(shape[i] for i in channels_last_order(len(shape)))


def axis_to_channels_first(axis: int, rank: int) -> int:
    """A Keras (channels-last) axis, possibly negative, as a canonical axis (non-negative)."""
    return channels_first_order(rank).index(axis % rank)


def axis_to_channels_last(axis: int, rank: int) -> int:
    """A canonical axis as a Keras (channels-last) axis, negative for the channel axis as Keras writes it."""
    keras_axis = channels_first_order(rank)[axis % rank]
    return -1 if keras_axis == rank - 1 else keras_axis


def to_channels_last(array: np.ndarray) -> np.ndarray:
    """A canonical (channels-first) array as Keras holds it."""
    return np.ascontiguousarray(np.transpose(array, channels_last_order(array.ndim)))


def to_channels_first(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(array, channels_first_order(array.ndim)))
