"""Modules for tests/test_torch_export_front_end.py, in a file of their own: ``--module`` imports it."""

from __future__ import annotations

import math

import torch
from torch import nn

STEPS, WIDTH, OUT = 7, 6, 5


class EagerPython(nn.Module):
    """What transformers' code does and torch.fx cannot trace: a slice by the input's traced length, an ``if`` on
    a traced shape, a loop over a traced size."""

    wconv_input_shapes = [(STEPS, WIDTH)]

    def __init__(self):
        super().__init__()
        self.positions = nn.Parameter(torch.randn(1, 16, WIDTH))
        self.mix = nn.Linear(WIDTH, WIDTH)
        self.norm = nn.LayerNorm(WIDTH)
        self.head = nn.Linear(WIDTH, OUT)

    def forward(self, x):
        if x.shape[-1] != self.mix.in_features:
            raise ValueError("wrong width")
        x = x + self.positions[:, : x.size(1)]
        for _ in range(x.size(-1) // WIDTH):  # runs once
            x = self.norm(x + torch.relu(self.mix(x)))
        return self.head(x)


class InPlace(nn.Module):
    """``h += x`` with nothing reading h's old value afterwards: a plain add."""

    wconv_input_shapes = [(WIDTH,)]

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(WIDTH, WIDTH)
        self.out = nn.Linear(WIDTH, OUT)

    def forward(self, x):
        h = self.fc(x)
        skip = torch.sigmoid(h)
        h += x
        return self.out(h * skip)


class WriteThroughView(nn.Module):
    """A view read after an in-place write to what it views: the write shows through it, so it is refused."""

    wconv_input_shapes = [(WIDTH,)]

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(WIDTH, WIDTH)

    def forward(self, x):
        h = self.fc(x)
        first = h[:, :3]
        h += 1.0
        return torch.cat([first, h], dim=1)


class DataDependent(nn.Module):
    """An ``if`` on a tensor's values: torch.export cannot record one graph for every input."""

    wconv_input_shapes = [(WIDTH,)]

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(WIDTH, OUT)

    def forward(self, x):
        if x.sum() > 0:
            return self.fc(x)
        return self.fc(-x)


class SpelledAttention(nn.Module):
    """Attention as transformers writes it (sdpa_attention.py): q, k, v Linear (5 -> 2 heads x 3), heads apart,
    F.scaled_dot_product_attention, heads together, an output Linear (6 -> 4). ``scale``: passed to the call."""

    wconv_input_shapes = [(STEPS, 5)]

    def __init__(self, scale=None, causal=False):
        super().__init__()
        self.query, self.key, self.value = nn.Linear(5, 6), nn.Linear(5, 6), nn.Linear(5, 6)
        self.output = nn.Linear(6, 4)
        self.scale, self.causal = scale, causal

    def forward(self, x):
        n, t, _ = x.shape
        q, k, v = (projection(x).view(n, t, 2, 3).transpose(1, 2) for projection in (self.query, self.key, self.value))
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=self.scale, is_causal=self.causal)
        return self.output(out.transpose(1, 2).reshape(n, t, 6))


class FunctionalMaxPool(nn.Module):
    """``F.adaptive_max_pool2d`` outside a module: ATen gives (values, indices), the function the values."""

    wconv_input_shapes = [(3, 12, 8)]

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.head = nn.Linear(4 * 5 * 3, OUT)

    def forward(self, x):
        return self.head(torch.flatten(torch.nn.functional.adaptive_max_pool2d(self.conv(x), (5, 3)), 1))


class PackedAttention(nn.Module):
    """GPT-2's spelling (sdpa_attention.py): one Linear (5 -> 3 x 2 heads x 3) split into q, k and v, and a boolean
    mask built from positions alone. ``ahead``: the steps past its own a query may see (0: the causal mask)."""

    wconv_input_shapes = [(STEPS, 5)]

    def __init__(self, ahead=0):
        super().__init__()
        self.packed, self.output, self.ahead = nn.Linear(5, 18), nn.Linear(6, 4), ahead

    def forward(self, x):
        n, t, _ = x.shape
        q, k, v = (part.view(n, t, 2, 3).transpose(1, 2) for part in self.packed(x).split(6, dim=-1))
        steps = torch.arange(t)
        mask = steps[:, None] + self.ahead >= steps[None, :]
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.output(out.transpose(1, 2).reshape(n, t, 6))


class RotaryGroupedAttention(nn.Module):
    """Llama's spelling (head_moves.py): 4 query heads of 4 features sharing 2 key/value heads, q and k rotated by
    position (``rotate_half``: the second half negated, then the first), k and v repeated (``repeat_kv``), causal.
    ``spelling``: 'llama'; 'swapped' (cat(x2, -x1): the rotation the other way, which no rule reads as rotary);
    'gqa' (the call's enable_gqa repeats k and v, not the code)."""

    wconv_input_shapes = [(STEPS, 5)]

    def __init__(self, spelling="llama"):
        super().__init__()
        self.q, self.k, self.v = nn.Linear(5, 16, bias=False), nn.Linear(5, 8, bias=False), nn.Linear(5, 8, bias=False)
        self.o, self.spelling = nn.Linear(16, 6, bias=False), spelling
        angles = torch.arange(STEPS)[:, None] * 10000.0 ** (-torch.arange(2) / 2)[None, :]
        angles = torch.cat([angles, angles], dim=-1)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def rotate(self, x):
        first, second = x[..., :2], x[..., 2:]
        turned = torch.cat([second, -first], dim=-1) if self.spelling == "swapped" else torch.cat([-second, first], -1)
        return x * self.cos[None, None] + turned * self.sin[None, None]

    def forward(self, x):
        n, t, _ = x.shape
        q = self.rotate(self.q(x).view(n, t, 4, 4).transpose(1, 2))
        k = self.rotate(self.k(x).view(n, t, 2, 4).transpose(1, 2))
        v = self.v(x).view(n, t, 2, 4).transpose(1, 2)
        if self.spelling == "gqa":
            out = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        else:
            k, v = (each[:, :, None].expand(n, 2, 2, t, 4).reshape(n, 4, t, 4) for each in (k, v))
            out = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o(out.transpose(1, 2).reshape(n, t, 16))


class CountedPositions(nn.Module):
    """A position table read at positions counted from the ids (token_positions.py), padding id 2 skipped, spelled
    ``spelling``: 'where' (``torch.where``, not RoBERTa's product) or 'padding_counted' (padding counted as a token,
    so not the positions RoBERTa counts: refused)."""

    wconv_input_shapes = [(STEPS,)]

    def __init__(self, spelling="where"):
        super().__init__()
        self.words, self.positions = nn.Embedding(11, 5), nn.Embedding(STEPS + 3, 5, padding_idx=2)
        self.spelling = spelling

    def forward(self, ids):
        tokens = ids != 2
        if self.spelling == "where":
            positions = torch.where(tokens, tokens.long().cumsum(dim=1) + 2, torch.full_like(ids, 2))
        else:
            positions = torch.ones_like(ids).cumsum(dim=1) + 2
        return self.words(ids) + self.positions(positions)


class StackedMean(nn.Module):
    """Two Linear branches averaged as wconv writes Keras' Average, ``torch.stack([a, b]).mean(0)``, or (``axis`` 1)
    averaged over another axis, which is no average of the branches (refused)."""

    wconv_input_shapes = [(5,)]

    def __init__(self, axis=0):
        super().__init__()
        self.left, self.right, self.axis = nn.Linear(5, 4), nn.Linear(5, 4), axis

    def forward(self, x):
        return torch.stack([self.left(x), self.right(x)]).mean(self.axis)


class SharedMultiheadAttention(nn.Module):
    """One nn.MultiheadAttention (6 features, 2 heads) called twice, ``out, _ = attn(x, x, x)`` then
    ``attn(out, out, out)[0]``: two attentions sharing one module's weights (unpacked_calls.py)."""

    wconv_input_shapes = [(STEPS, 6)]

    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(6, 2, batch_first=True)

    def forward(self, x):
        out, _ = self.attn(x, x, x)
        return self.attn(out, out, out)[0]


class TanhGelu(nn.Module):
    """GELU's tanh approximation written out (tanh_gelu.py), in GPT-2's operand order or another; ``cubic``: the
    formula's 0.044715, or another number (not GELU)."""

    wconv_input_shapes = [(5,)]

    def __init__(self, order="gpt2", cubic=0.044715):
        super().__init__()
        self.fc, self.order, self.cubic = nn.Linear(5, 7), order, cubic

    def forward(self, x):
        x = self.fc(x)
        if self.order == "gpt2":
            return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + self.cubic * torch.pow(x, 3.0))))
        inner = (x ** 3 * self.cubic + x) * math.sqrt(2.0 / math.pi)
        return (torch.tanh(inner) + 1.0) * (x * 0.5)


class MaskedAttention(nn.Module):
    """SpelledAttention given a mask built from a second input, (batch, steps) ids: ``build`` 'padding' (not zero),
    'causal' (and no later step), or 'positive' (above zero: the same for 0/1 ids, not for others)."""

    wconv_input_shapes = [(STEPS, 5), (STEPS,)]
    wconv_input_dtypes = ["float32", "int64"]

    def __init__(self, build="padding"):
        super().__init__()
        self.attention, self.build = SpelledAttention(), build

    def forward(self, x, ids):
        n, t, _ = x.shape
        a = self.attention
        q, k, v = (projection(x).view(n, t, 2, 3).transpose(1, 2) for projection in (a.query, a.key, a.value))
        keep = (ids > 0 if self.build == "positive" else ids != 0)[:, None, None, :]
        if self.build == "causal":
            keep = keep & torch.ones(t, t, dtype=torch.bool).tril()
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=keep.expand(n, 1, t, t))
        return a.output(out.transpose(1, 2).reshape(n, t, 6))


class RMSNormed(nn.Module):
    """A Linear (5 -> 6), then RMSNorm written as ``spelling``: 'written' (as transformers' LlamaRMSNorm computes it,
    casts included), 'module' (torch's nn.RMSNorm, eps None) or 'unweighted' (written, no weight). A large
    epsilon, so that one dropped shows."""

    wconv_input_shapes = [(STEPS, 5)]

    def __init__(self, spelling="written", eps=0.5):
        super().__init__()
        self.fc, self.spelling, self.eps = nn.Linear(5, 6), spelling, eps
        self.norm = nn.RMSNorm(6) if spelling == "module" else None
        self.weight = nn.Parameter(torch.ones(6)) if spelling == "written" else None

    def forward(self, x):
        h = self.fc(x)
        if self.norm is not None:
            return self.norm(h)
        h = h.to(torch.float32)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return h if self.weight is None else self.weight * h.to(torch.float32)


class _Encoder(nn.Module):
    def __init__(self, embedding):
        super().__init__()
        self.embed_tokens = embedding
        self.fc = nn.Linear(4, 3)

    def forward(self, ids):
        return self.fc(self.embed_tokens(ids))


class TwoNames(nn.Module):
    """One Embedding under two names, as T5 holds it (``shared`` is its encoder's ``embed_tokens``): the state_dict
    holds both."""

    wconv_input_shapes = [(STEPS,)]
    wconv_input_dtypes = ["int64"]

    def __init__(self):
        super().__init__()
        self.shared = nn.Embedding(10, 4)
        self.encoder = _Encoder(self.shared)

    def forward(self, ids):
        return self.encoder(ids)
