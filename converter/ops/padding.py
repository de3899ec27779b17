"""Explicit padding, the one canonical form: ``pads`` lists the spatial begins, then the ends (ONNX order).

Keras' 'same' is TensorFlow's: the total padding is what keeps ``ceil(size / stride)`` outputs,
and an odd total puts the extra row or column at the end (ONNX auto_pad=SAME_UPPER). Readers
resolve every spelling to explicit pads with the input shape; writers turn them back into
whatever the target can say.
"""

from __future__ import annotations

import math

from ..errors import Unsupported


def same_pads(sizes, kernel, strides, dilations) -> list[int]:
    begins, ends = [], []
    for size, k, s, d in zip(sizes, kernel, strides, dilations):
        total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
        begins.append(total // 2)
        ends.append(total - total // 2)
    return begins + ends


def causal_pads(kernel, dilations) -> list[int]:
    """Keras Conv1D padding='causal': everything at the beginning."""
    return [(k - 1) * d for k, d in zip(kernel, dilations)] + [0] * len(kernel)


def resolve(layer: str, padding, sizes, kernel, strides, dilations) -> list[int]:
    """'valid' / 'same' / 'causal' / explicit list -> explicit pads; sizes are the input's spatial sizes."""
    if isinstance(padding, str):
        padding = padding.lower()
        if padding == "valid":
            return [0] * (2 * len(kernel))
        if padding == "causal":
            return causal_pads(kernel, dilations)
        if padding == "same":
            if any(size is None for size in sizes):
                raise Unsupported(f"layer '{layer}': padding='same' needs the input's spatial sizes; "
                                  "pass --input-shape")
            return same_pads(sizes, kernel, strides, dilations)
        raise Unsupported(f"layer '{layer}': padding '{padding}' has no equivalent")
    return [int(p) for p in padding]


def ceil_mode_pads(layer: str, sizes, kernel, strides, pads) -> list[int]:
    """``pads`` with the end padding that ceil_mode's last, partial windows read (torch's rule, which ONNX's
    MaxPool follows: a window starting beyond the input and its begin padding is dropped). For max pooling
    that padding is -inf, as every pooling pad is, so the explicit pads compute the same; average pooling that
    does not count padding divides by the input values a window holds, as torch does at partial windows."""
    if any(size is None for size in sizes):
        raise Unsupported(f"layer '{layer}': ceil_mode needs the input's spatial sizes; pass --input-shape")
    n = len(kernel)
    ends = []
    for i, (size, k, s) in enumerate(zip(sizes, kernel, strides)):
        begin, end = pads[i], pads[n + i]
        count = -(-(size + begin + end - k) // s) + 1  # ceil
        if (count - 1) * s >= size + begin:
            count -= 1
        ends.append(end + max(0, (count - 1) * s + k - (size + begin + end)))
    return list(pads[:n]) + ends


def output_sizes(sizes, kernel, strides, dilations, pads) -> list:
    n = len(kernel)
    return [
        None if size is None else (size + pads[i] + pads[n + i] - d * (k - 1) - 1) // s + 1
        for i, (size, k, s, d) in enumerate(zip(sizes, kernel, strides, dilations))
    ]


def symmetric(pads) -> bool:
    n = len(pads) // 2
    return pads[:n] == pads[n:]


def torch_pad_order(pads) -> tuple:
    """ONNX-order pads -> ``F.pad``'s order: last axis first, (begin, end) pairs."""
    n = len(pads) // 2
    return tuple(value for i in reversed(range(n)) for value in (pads[i], pads[n + i]))


def from_torch_pad_order(pad) -> list[int]:
    n = len(pad) // 2
    pairs = [(pad[2 * i], pad[2 * i + 1]) for i in range(n)][::-1]
    return [b for b, _ in pairs] + [e for _, e in pairs]


def keras_name(pads, sizes, kernel, strides, dilations) -> str | None:
    """The Keras padding string that means exactly ``pads``, or None."""
    if not any(pads):
        return "valid"
    if None not in sizes and pads == same_pads(sizes, kernel, strides, dilations):
        return "same"
    return None


def spatial(shape) -> list:
    """Spatial sizes of a canonical (N, C, spatial...) shape."""
    return list(shape[2:])


def as_list(value, n: int) -> list[int]:
    """Keras and torch accept an int for every axis; the IR keeps one value per axis."""
    return [int(value)] * n if isinstance(value, int) else [int(v) for v in value]


def grow(layer: str, shape, begins_ends) -> tuple | None:
    """``shape`` with each spatial axis grown by its begin + end (negative values shrink it)."""
    if shape is None:
        return None
    n = len(begins_ends) // 2
    if len(shape) != n + 2:
        raise Unsupported(f"layer '{layer}': {list(begins_ends)} does not fit an input of shape {shape}")
    return (*shape[:2], *[None if s is None else s + begins_ends[i] + begins_ends[n + i] for i, s in enumerate(shape[2:])])


def from_keras_pairs(value, rank: int) -> list[int]:
    """Keras' ZeroPadding/Cropping argument (an int, one pair, or a pair per axis) -> begins + ends."""
    if isinstance(value, int):
        pairs = [(value, value)] * rank
    elif rank == 1 and len(value) == 2 and all(isinstance(v, int) for v in value):
        pairs = [tuple(value)]
    else:
        pairs = [(v, v) if isinstance(v, int) else tuple(v) for v in value]
    return [b for b, _ in pairs] + [e for _, e in pairs]


def to_keras_pairs(begins_ends):
    n = len(begins_ends) // 2
    pairs = [[begins_ends[i], begins_ends[n + i]] for i in range(n)]
    return pairs[0] if n == 1 else pairs
