"""wconv's own Keras layers, for what Keras has no layer for: a ViT's class tokens and position table, and
attention with rotary position embeddings or grouped key/value heads (Llama, Qwen2), and positions counted from
token ids (RoBERTa).

A Keras file wconv writes uses them only where the model has them. Keras finds them by their registered names
(``wconv>ClassTokens``, ``wconv>PositionEmbedding``,
``wconv>ExplicitAttention``, ``wconv>TokenPositions``) once this module is imported::

    import converter.keras_layers  # noqa: F401  (registers the classes)
    model = keras.saving.load_model("vit.keras")

They hold plain weights and compute with ``keras.ops`` only, so ``safe_mode=True`` loads them.
"""

from __future__ import annotations

import keras

PACKAGE = "wconv"


@keras.saving.register_keras_serializable(package=PACKAGE)
class ClassTokens(keras.layers.Layer):
    """Learned tokens put before each sequence: (n, t, f) -> (n, count + t, f)."""

    def __init__(self, count=1, **kwargs):
        super().__init__(**kwargs)
        self.count = int(count)

    def build(self, input_shape):
        self.tokens = self.add_weight(name="tokens", shape=(self.count, input_shape[-1]), initializer="zeros")

    def call(self, x):
        # (1, count, f) + (n, 1, 1) zeros: the tokens once per sample, whatever the batch size and values in x
        tokens = keras.ops.cast(self.tokens, x.dtype)[None] + keras.ops.zeros_like(x[:, :1, :1])
        return keras.ops.concatenate([tokens, x], axis=1)

    def compute_output_shape(self, input_shape):
        steps = None if input_shape[1] is None else input_shape[1] + self.count
        return (input_shape[0], steps, input_shape[2])

    def get_config(self):
        return {**super().get_config(), "count": self.count}


@keras.saving.register_keras_serializable(package=PACKAGE)
class PositionEmbedding(keras.layers.Layer):
    """A learned table added to each sequence, one row per step: (n, steps, f) + (steps, f)."""

    def __init__(self, steps=1, **kwargs):
        super().__init__(**kwargs)
        self.steps = int(steps)

    def build(self, input_shape):
        self.table = self.add_weight(name="table", shape=(self.steps, input_shape[-1]), initializer="zeros")

    def call(self, x):
        return x + keras.ops.cast(self.table, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "steps": self.steps}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ExplicitAttention(keras.layers.Layer):
    """Multi-head attention as wconv's IR computes it, for what MultiHeadAttention cannot: fewer key/value heads
    than query heads (query head h reads key/value head h // (heads / kv_heads)) and rotary position embeddings
    (each query and key head rotated by its step's row of the ``cos`` and ``sin`` tables:
    x * cos + concatenate(-x2, x1) * sin, x1 and x2 the halves of the head). Called as (query, key, value), each
    (N, steps, features), with ``attention_mask`` (N, T, S) True where query step t may attend to key step s.
    Masked scores are -1e9, so a step that may attend to nothing averages every value, or with ``zero_empty``
    gets none. Scores are scaled by ``scale`` (1/sqrt(key_dim) unless given) and, with ``score_bias_steps`` (T, S),
    the ``score_bias`` weight (heads, T, S) is added to them (T5's relative position bias)."""

    def __init__(self, heads=1, kv_heads=1, key_dim=1, value_dim=1, output_size=1, use_bias=True, causal=False,
                 zero_empty=False, rotary_steps=0, scale=None, score_bias_steps=None, **kwargs):
        super().__init__(**kwargs)
        self.heads, self.kv_heads, self.key_dim, self.value_dim = int(heads), int(kv_heads), int(key_dim), \
            int(value_dim)
        self.output_size, self.use_bias, self.causal = int(output_size), bool(use_bias), bool(causal)
        self.zero_empty, self.rotary_steps = bool(zero_empty), int(rotary_steps)
        self.scale = None if scale is None else float(scale)
        self.score_bias_steps = [int(size) for size in score_bias_steps] if score_bias_steps else None

    def build(self, query_shape, key_shape, value_shape, attention_mask_shape=None):
        sizes = {"query": (query_shape[-1], self.heads * self.key_dim),
                 "key": (key_shape[-1], self.kv_heads * self.key_dim),
                 "value": (value_shape[-1], self.kv_heads * self.value_dim),
                 "output": (self.heads * self.value_dim, self.output_size)}
        self.kernels, self.biases = {}, {}
        for name, shape in sizes.items():
            self.kernels[name] = self.add_weight(name=f"{name}_kernel", shape=shape, initializer="zeros")
            if self.use_bias:
                self.biases[name] = self.add_weight(name=f"{name}_bias", shape=shape[1:], initializer="zeros")
        if self.rotary_steps:
            self.cos = self.add_weight(name="cos", shape=(self.rotary_steps, self.key_dim), initializer="zeros")
            self.sin = self.add_weight(name="sin", shape=(self.rotary_steps, self.key_dim), initializer="zeros")
        if self.score_bias_steps:
            self.score_bias = self.add_weight(name="score_bias", shape=(self.heads, *self.score_bias_steps),
                                              initializer="zeros")

    def _heads(self, x, projection, count, size):
        """(N, T, features) -> (N, T, count, size), projected."""
        ops = keras.ops
        y = ops.matmul(x, ops.cast(self.kernels[projection], x.dtype))
        if self.use_bias:
            y = y + ops.cast(self.biases[projection], x.dtype)
        return ops.reshape(y, (-1, ops.shape(x)[1], count, size))

    def _rotate(self, x):
        ops, half = keras.ops, self.key_dim // 2
        cos, sin = ops.cast(self.cos, x.dtype)[:, None, :], ops.cast(self.sin, x.dtype)[:, None, :]
        return x * cos + ops.concatenate([-x[..., half:], x[..., :half]], axis=-1) * sin

    def call(self, query, key, value, attention_mask=None):
        ops = keras.ops
        q = self._heads(query, "query", self.heads, self.key_dim)
        k = self._heads(key, "key", self.kv_heads, self.key_dim)
        v = self._heads(value, "value", self.kv_heads, self.value_dim)
        if self.rotary_steps:
            q, k = self._rotate(q), self._rotate(k)
        q, k, v = ops.transpose(q, (0, 2, 1, 3)), ops.transpose(k, (0, 2, 3, 1)), ops.transpose(v, (0, 2, 1, 3))
        if self.kv_heads != self.heads:
            k = ops.repeat(k, self.heads // self.kv_heads, axis=1)
            v = ops.repeat(v, self.heads // self.kv_heads, axis=1)
        scores = ops.matmul(q, k) * ops.cast(self.key_dim ** -0.5 if self.scale is None else self.scale, q.dtype)
        if self.score_bias_steps:
            scores = scores + ops.cast(self.score_bias, scores.dtype)
        keep = None
        if self.causal:
            steps = ops.shape(scores)
            keep = ops.cast(ops.tril(ops.ones((steps[2], steps[3]))), "bool")
        if attention_mask is not None:
            given = ops.expand_dims(ops.cast(attention_mask, "bool"), 1)  # the same for every head
            keep = given if keep is None else ops.logical_and(given, keep)
        if keep is not None:
            scores = ops.where(keep, scores, ops.cast(-1e9, scores.dtype))
        attended = ops.matmul(ops.softmax(scores, axis=-1), v)
        if self.zero_empty and keep is not None:
            attended = attended * ops.cast(ops.any(keep, axis=-1, keepdims=True), attended.dtype)
        joined = ops.reshape(ops.transpose(attended, (0, 2, 1, 3)),
                             (-1, ops.shape(query)[1], self.heads * self.value_dim))
        out = ops.matmul(joined, ops.cast(self.kernels["output"], joined.dtype))
        return out + ops.cast(self.biases["output"], out.dtype) if self.use_bias else out

    def compute_output_shape(self, query_shape, key_shape, value_shape, attention_mask_shape=None):
        return (*query_shape[:-1], self.output_size)

    def get_config(self):
        return {**super().get_config(), "heads": self.heads, "kv_heads": self.kv_heads, "key_dim": self.key_dim,
                "value_dim": self.value_dim, "output_size": self.output_size, "use_bias": self.use_bias,
                "causal": self.causal, "zero_empty": self.zero_empty, "rotary_steps": self.rotary_steps,
                "scale": self.scale, "score_bias_steps": self.score_bias_steps}


@keras.saving.register_keras_serializable(package=PACKAGE)
class TokenPositions(keras.layers.Layer):
    """Positions counted from (batch, steps) token ids, padding skipped, as RoBERTa counts them:
    cumsum(ids != padding) * (ids != padding) + padding, int64 (``ops/token_positions.py``)."""

    def __init__(self, padding=1, **kwargs):
        super().__init__(**kwargs)
        self.padding = int(padding)

    def call(self, ids):
        ops = keras.ops
        tokens = ops.cast(ops.not_equal(ids, self.padding), "int64")
        return ops.cumsum(tokens, axis=1) * tokens + self.padding

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, ids):
        return keras.KerasTensor(ids.shape, dtype="int64")

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}
