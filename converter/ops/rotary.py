"""Rotary position embeddings (RoPE): how an attention rotates each query and key head by its step's angles.

The IR keeps the rotation as two tables, ``cos`` and ``sin`` (steps, head size): row t is what step t's head is
multiplied by. Tables, not a base frequency: every variant of how angles are computed (transformers' default,
linear, dynamic, YaRN and Llama 3 scaling, the attention factor folded in) gives tables, and the tables are
exact for the sequence length the port is made for (a transformers model is converted at a fixed length).

``half`` (the one style): ``x * cos + rotate_half(x) * sin``, where ``rotate_half(x) = cat(-x2, x1)`` and x1, x2
are the first and second half of each head's features (transformers' ``apply_rotary_pos_emb``: Llama, Qwen2,
Mistral, GPT-NeoX). A rotary that rotates only part of each head, or pairs features interleaved (GPT-J's
``rotate_every_two``), is not read, so it is refused where it appears.
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeMismatch

HALF = "half"
FORMULA = "x * cos + cat(-x[..., d/2:], x[..., :d/2]) * sin, per head, cos and sin (steps, d)"


def check(name: str, cos, sin, head_size: int, steps) -> None:
    """The tables fit: (steps, head size) both, the head size even, one row per query and key step."""
    shapes = {tuple(np.shape(cos)), tuple(np.shape(sin))}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ShapeMismatch(f"layer '{name}': rotary tables of shapes {sorted(shapes)}; wconv takes cos and sin of "
                            "one shape (steps, head size)")
    rows, size = next(iter(shapes))
    if size != head_size or head_size % 2:
        raise ShapeMismatch(f"layer '{name}': rotary tables of {size} features for heads of {head_size}; wconv "
                            "rotates whole heads of an even size")
    if steps is not None and rows != steps:
        raise ShapeMismatch(f"layer '{name}': rotary tables for {rows} steps, but the attention takes {steps}; the "
                            "port is made for the sequence length it was converted at")


def to_onnx(builder, name: str, x: str, cos, sin) -> str:
    """ONNX nodes rotating ``x`` (N, T, heads, d): x * cos + Concat(-x2, x1) * sin, tables (T, 1, d)."""
    half = cos.shape[1] // 2
    steps, size = cos.shape
    cos_table = builder.initializer(f"{name}.cos", np.ascontiguousarray(cos.reshape(steps, 1, size), np.float32))
    sin_table = builder.initializer(f"{name}.sin", np.ascontiguousarray(sin.reshape(steps, 1, size), np.float32))
    axis = builder.initializer(f"{name}.last_axis", np.array([-1], np.int64))
    middle = builder.initializer(f"{name}.half", np.array([half], np.int64))
    start = builder.initializer(f"{name}.start", np.array([0], np.int64))
    end = builder.initializer(f"{name}.end", np.array([size], np.int64))
    builder.node("Slice", [x, start, middle, axis], [f"{name}/first"], f"{name}/first")
    builder.node("Slice", [x, middle, end, axis], [f"{name}/second"], f"{name}/second")
    builder.node("Neg", [f"{name}/second"], [f"{name}/negated"], f"{name}/negated")
    builder.node("Concat", [f"{name}/negated", f"{name}/first"], [f"{name}/turned"], f"{name}/turned", axis=-1)
    builder.node("Mul", [x, cos_table], [f"{name}/by_cos"], f"{name}/by_cos")
    builder.node("Mul", [f"{name}/turned", sin_table], [f"{name}/by_sin"], f"{name}/by_sin")
    builder.node("Add", [f"{name}/by_cos", f"{name}/by_sin"], [f"{name}/rotated"], f"{name}/rotated")
    return f"{name}/rotated"
