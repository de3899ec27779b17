"""wconv's own Keras layers, for what Keras has no layer for: a ViT's class tokens and position table.

A Keras file wconv writes uses them only where the model has them. Keras finds them by their registered names
(``wconv>ClassTokens``, ``wconv>PositionEmbedding``) once this module is imported::

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
