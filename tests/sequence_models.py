"""Sequence models a user would write, in each framework, with sizes that cannot hide a mistake
(T != F != hidden). Weights are seeded and random, every bias and LayerNorm gamma included."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

VOCABULARY, STEPS, EMBED, HIDDEN, CLASSES, HEADS = 37, 11, 6, 9, 3, 2


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


class LSTMTagger(nn.Module):
    """Embedding -> two-layer bidirectional LSTM -> a tag per step."""

    def __init__(self, layers=2):
        super().__init__()
        self.emb = nn.Embedding(VOCABULARY, EMBED)
        self.lstm = nn.LSTM(EMBED, HIDDEN, num_layers=layers, batch_first=True, bidirectional=True)
        self.tags = nn.Linear(2 * HIDDEN, CLASSES)

    def forward(self, ids):
        out, _ = self.lstm(self.emb(ids))
        return self.tags(out)


class GRUClassifier(nn.Module):
    """A GRU over (N, T, F) features, its last step -> a class."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(EMBED, HIDDEN, batch_first=True)
        self.head = nn.Linear(HIDDEN, CLASSES)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.head(out[:, -1])


class StackedRNN(nn.Module):
    """A ReLU RNN whose final state (h_n[-1]) feeds a bidirectional GRU... of one step: a final-state LSTM too."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(EMBED, HIDDEN, nonlinearity="relu", batch_first=True)
        self.lstm = nn.LSTM(HIDDEN, 5, batch_first=True, num_layers=2)
        self.head = nn.Linear(5, CLASSES)

    def forward(self, x):
        out, _ = self.rnn(x)
        _, (h, _) = self.lstm(out)
        return self.head(h[-1])


def keras_recurrent(keras, seed=0):
    """LSTM sequence -> Bidirectional GRU sequence -> ReLU SimpleRNN final state -> Dense."""
    x = keras.Input((STEPS, EMBED), name="x")
    y = keras.layers.LSTM(HIDDEN, return_sequences=True, name="lstm")(x)
    y = keras.layers.Bidirectional(keras.layers.GRU(5, return_sequences=True), name="bi")(y)
    y = keras.layers.SimpleRNN(7, activation="relu", name="rnn")(y)
    return seeded_keras(keras.Model(x, keras.layers.Dense(CLASSES, name="head")(y)), seed)


def keras_text_lstm(keras, seed=0):
    """A text classifier: Embedding -> Bidirectional LSTM (final states) -> Dense."""
    ids = keras.Input((STEPS,), dtype="int32", name="ids")
    y = keras.layers.Embedding(VOCABULARY, EMBED, name="emb")(ids)
    y = keras.layers.Bidirectional(keras.layers.LSTM(HIDDEN), name="bi")(y)
    return seeded_keras(keras.Model(ids, keras.layers.Dense(CLASSES, name="head")(y)), seed)


# The indices of ``out[:, -1]``, ``out[:, -1, :]``, ...: what Python passes to ``out.__getitem__``.
STEP_INDICES = {"[:, -1]": (slice(None), -1), "[:, -1, :]": (slice(None), -1, slice(None)),
                "[:, 0]": (slice(None), 0), "[:, 2, :]": (slice(None), 2, slice(None))}


class OneStepClassifier(nn.Module):
    """The tutorial classifier, ``head(out[:, -1])``. Of two directions that step is not their final state: its
    backward half is the backward direction's first step."""

    def __init__(self, cell="LSTM", layers=2, bidirectional=True, step="[:, -1]"):
        super().__init__()
        self.rnn = getattr(nn, cell)(EMBED, HIDDEN, num_layers=layers, batch_first=True, bidirectional=bidirectional)
        self.head = nn.Linear(HIDDEN * (2 if bidirectional else 1), CLASSES)
        self.step = STEP_INDICES[step]

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[self.step])


class TimeMajor(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(EMBED, HIDDEN)

    def forward(self, x):
        return self.gru(x)[0]


class ExplicitRecurrent(nn.Module):
    """Named like wconv's helper class, but computing something else (a mean over time, per step)."""

    def __init__(self):
        super().__init__()
        self.weight_ih_l0 = nn.Parameter(torch.ones(3 * HIDDEN, EMBED))

    def forward(self, x):
        h = F.linear(x, self.weight_ih_l0)
        return h, h.mean(1)


class LookalikeCell(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = ExplicitRecurrent()

    def forward(self, x):
        return self.gru(x)[0]


class AttentionBlock(nn.Module):
    """Self-attention with kdim/vdim projections from another sequence (cross-attention), residual, LayerNorm."""

    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(HEADS * 2, HEADS, batch_first=True)
        self.cross = nn.MultiheadAttention(HEADS * 2, HEADS, kdim=EMBED, vdim=HIDDEN, batch_first=True)
        self.proj = nn.Linear(EMBED, HEADS * 2)
        self.context = nn.Linear(EMBED, HIDDEN)
        self.norm = nn.LayerNorm(HEADS * 2)

    def forward(self, x):
        q = self.proj(x)
        a, _ = self.attn(q, q, q, need_weights=False)
        c = self.cross(a, x, self.context(x))[0]
        return self.norm(q + c)


class TransformerTagger(nn.Module):
    """Embedding -> nn.TransformerEncoder (two layers, post-norm, gelu; then pre-norm) -> a Linear per step.

    A class per step and a width of 10: with a width of 4 and the mean over time, the output hardly depended on
    the input (keys and values swapped changed it by 6e-5 of its largest value, below the comparison's tolerance);
    now by 6e-2."""

    def __init__(self, norm_first=False):
        super().__init__()
        width = HEADS * 5  # key_dim 5: T 11, E 10, feed-forward 9
        self.emb = nn.Embedding(VOCABULARY, width)
        layer = nn.TransformerEncoderLayer(width, HEADS, dim_feedforward=HIDDEN, activation="gelu", batch_first=True,
                                           norm_first=norm_first)
        self.encoder = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(width), enable_nested_tensor=False)
        self.head = nn.Linear(width, CLASSES)

    def forward(self, ids):
        return self.head(self.encoder(self.emb(ids)))


def keras_encoder_block(keras, seed=0):
    """A transformer encoder block in Keras: MultiHeadAttention (key_dim != E / heads) + residual + LayerNorm,
    feed-forward Dense over the sequence + residual + LayerNorm, GlobalAveragePooling1D, Dense."""
    width = HEADS * 2
    ids = keras.Input((STEPS,), dtype="int32", name="ids")
    x = keras.layers.Embedding(VOCABULARY, width, name="emb")(ids)
    a = keras.layers.MultiHeadAttention(num_heads=HEADS, key_dim=5, value_dim=4, name="mha")(x, x)
    x = keras.layers.LayerNormalization(epsilon=1e-6, name="ln1")(keras.layers.Add(name="res1")([x, a]))
    f = keras.layers.Dense(HIDDEN, activation="relu", name="ffn1")(x)
    f = keras.layers.Dense(width, name="ffn2")(f)
    x = keras.layers.LayerNormalization(epsilon=1e-6, name="ln2")(keras.layers.Add(name="res2")([x, f]))
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    return seeded_keras(keras.Model(ids, keras.layers.Dense(CLASSES, name="head")(x)), seed)


class TimeMajorTagger(nn.Module):
    """The older torch idiom: a time-major (batch_first=False) bidirectional GRU between transposes, then a
    time-major LSTM whose last step out[-1] feeds the head."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(EMBED, HIDDEN, bidirectional=True)
        self.lstm = nn.LSTM(2 * HIDDEN, 5)
        self.head = nn.Linear(5, CLASSES)

    def forward(self, x):
        out, _ = self.gru(x.transpose(0, 1))
        out = out.transpose(0, 1)
        last, _ = self.lstm(out.permute(1, 0, 2))
        return self.head(last[-1])


class BiLSTMClassifier(nn.Module):
    """The common torch idiom for a bidirectional layer's final state: torch.cat([h_n[-2], h_n[-1]], dim=1)."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(VOCABULARY, EMBED)
        self.lstm = nn.LSTM(EMBED, HIDDEN, num_layers=2, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * HIDDEN, CLASSES)

    def forward(self, ids):
        _, (h, _) = self.lstm(self.emb(ids))
        return self.head(torch.cat([h[-2], h[-1]], dim=1))


DECODER_STEPS, DECODER_FEATURES = 7, 4


def keras_seq2seq(keras, cell="LSTM", bidirectional=False, seed=0):
    """An encoder-decoder (Keras' lstm_seq2seq example): the encoder returns its final states (return_state=True),
    the decoder starts from them (initial_state=) over another sequence (T 11 vs 7, F 6 vs 4); its final
    state is returned beside the tags."""
    source = keras.Input((STEPS, EMBED), name="source")
    target = keras.Input((DECODER_STEPS, DECODER_FEATURES), name="target")
    layer = getattr(keras.layers, cell)
    encoder = layer(HIDDEN, return_state=True, name="encoder")
    if bidirectional:
        encoder = keras.layers.Bidirectional(encoder, name="encoder")
    _, *states = encoder(source)
    decoder = layer(HIDDEN, return_sequences=True, return_state=True, name="decoder")
    if bidirectional:
        decoder = keras.layers.Bidirectional(decoder, name="decoder")
    tags, *final = decoder(target, initial_state=states)
    tags = keras.layers.Dense(CLASSES, name="tags")(tags)
    return seeded_keras(keras.Model([source, target], [tags, final[0]]), seed)


def seq2seq_inputs(batch=4):
    return [sequence(batch), sequence(batch, DECODER_STEPS, DECODER_FEATURES, seed=5)]


class RawStateSeq2Seq(nn.Module):
    """A torch encoder-decoder as people write one: the encoder's (h_n, c_n) (a GRU's h_n) handed on whole."""

    wconv_input_shapes = [(STEPS, EMBED), (DECODER_STEPS, DECODER_FEATURES)]  # two inputs: --input-shape takes one

    def __init__(self, cell="LSTM", bidirectional=False):
        super().__init__()
        layer = getattr(nn, cell)
        self.encoder = layer(EMBED, HIDDEN, batch_first=True, bidirectional=bidirectional)
        self.decoder = layer(DECODER_FEATURES, HIDDEN, batch_first=True, bidirectional=bidirectional)

    def forward(self, source, target):
        _, state = self.encoder(source)
        out, _ = self.decoder(target, state)
        return out


class MaskedAttention(nn.Module):
    """nn.MultiheadAttention with an attn_mask (True: may not attend), which wconv refuses. One head: a 3-D mask
    is (N * heads, T, S), so with one head its first axis is the batch."""

    wconv_input_shapes = [(STEPS, EMBED), (STEPS, STEPS)]

    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(EMBED, 1, batch_first=True)

    def forward(self, x, blocked):
        return self.attn(x, x, x, attn_mask=blocked, need_weights=False)[0]
