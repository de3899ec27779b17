"""Sequence models a user would write, in each framework, with sizes that cannot hide a mistake
(T != F != hidden). Weights are seeded and random, every bias and LayerNorm gamma included."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

VOCABULARY, STEPS, EMBED, HIDDEN, CLASSES = 37, 11, 6, 9, 3


def tokens(batch=4, steps=STEPS, seed=3):
    return np.random.default_rng(seed).integers(0, VOCABULARY, (batch, steps), dtype=np.int64)


def sequence(batch=4, steps=STEPS, features=EMBED, seed=4):
    return np.random.default_rng(seed).standard_normal((batch, steps, features)).astype(np.float32)


class TextCNN(nn.Module):
    """Embedding -> Linear over the sequence -> LayerNorm -> two Conv1d -> mean over time -> Linear."""

    def __init__(self, padding_idx=None):
        super().__init__()
        self.emb = nn.Embedding(VOCABULARY, EMBED, padding_idx=padding_idx)
        self.ffn = nn.Linear(EMBED, HIDDEN)
        self.ln = nn.LayerNorm(HIDDEN)
        self.conv = nn.Conv1d(HIDDEN, 5, 3)
        self.conv2 = nn.Conv1d(5, 4, 3)
        self.head = nn.Linear(4, CLASSES)

    def forward(self, ids):
        x = self.ln(F.relu(self.ffn(self.emb(ids))))
        x = self.conv2(self.conv(x.permute(0, 2, 1)))
        return self.head(x.mean(dim=2))


class LayerNormVariants(nn.Module):
    """LayerNorm without bias, without affine params, and with a non-default eps, over a (N, T, F) input."""

    def __init__(self):
        super().__init__()
        self.a = nn.LayerNorm(EMBED, eps=1e-3, bias=False)
        self.dense = nn.Linear(EMBED, HIDDEN)
        self.b = nn.LayerNorm(HIDDEN, elementwise_affine=False)

    def forward(self, x):
        return self.b(self.dense(self.a(x)))


def seeded(module, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.normal_(0, 0.5)
    return module.eval()


def keras_text_cnn(keras, steps=STEPS, seed=0):
    ids = keras.Input((steps,), dtype="int32", name="ids")
    x = keras.layers.Embedding(VOCABULARY, EMBED, name="emb")(ids)
    x = keras.layers.Dense(HIDDEN, activation="relu", name="ffn")(x)
    x = keras.layers.LayerNormalization(name="ln")(x)
    x = keras.layers.Conv1D(5, 3, name="conv")(x)
    x = keras.layers.Conv1D(4, 3, name="conv2")(x)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    return seeded_keras(keras.Model(ids, keras.layers.Dense(CLASSES, name="head")(x)), seed)


def keras_layer_norms(keras, seed=0):
    x = keras.Input((STEPS, EMBED), name="x")
    y = keras.layers.LayerNormalization(center=False, epsilon=1e-5, name="a")(x)
    y = keras.layers.Dense(HIDDEN, name="dense")(y)
    y = keras.layers.LayerNormalization(scale=False, center=False, name="b")(y)
    y = keras.layers.LayerNormalization(name="c")(y)
    return seeded_keras(keras.Model(x, y), seed)


def seeded_keras(model, seed):
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        weight.assign(rng.normal(0, 0.5, weight.shape).astype("float32"))
    return model
