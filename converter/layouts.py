"""Axis-label layouts: every permutation is derived from two labelled patterns.

Weights: a layout is an einops pattern such as ``"o i"`` or ``"h w i o"``; merged axes such as
``"(i m) 1 h w"`` are allowed, and the op table says which pattern each framework uses.

Activations: every IR value carries a pattern of its axes in IR order (``"n c h w"``, ``"n t f"``,
``"n f"``); how a framework holds the value (its *view*) is derived from the pattern alone, in
``views.py``.
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



def reorder_blocks(array: np.ndarray, source: str, target: str, axis: int = 0, what: str = "tensor") -> np.ndarray:
    """Reorder equal blocks along ``axis``, named by letters: the gates of a recurrent layer, stacked
    ``source="ifgo"`` in Keras and torch and ``target="iofg"`` in ONNX."""
    array = np.asarray(array)
    if sorted(source) != sorted(target) or array.shape[axis] % len(source):
        raise ShapeMismatch(f"{what}: cannot reorder {array.shape[axis]} rows as blocks '{source}' -> '{target}'")
    blocks = dict(zip(source, np.split(array, len(source), axis=axis)))
    return np.ascontiguousarray(np.concatenate([blocks[letter] for letter in target], axis=axis))
