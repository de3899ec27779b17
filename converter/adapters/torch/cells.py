"""Helper classes a generated module carries where no ``torch.nn`` layer computes what the source does.

``LayerScale``: a learned scale per channel (Keras' ConvNeXt LayerScale, timm's and torchvision's ``gamma``), which
no nn layer holds. ``ClassTokens`` and ``PositionEmbedding``: a ViT's learned tokens and position table, which
model libraries keep as bare parameters of the model.

``ExplicitAttention``: Keras' MultiHeadAttention often has a key_dim of its own (not E / heads), a value_dim
apart from it, an output width of its own, or a causal mask; nn.MultiheadAttention takes none of these.

torch's LSTM and GRU have sigmoid gates only, and its GRU applies the reset gate after the recurrent
matmul. Keras 2 models (and the TF 1 era .h5 files people still port) use hard-sigmoid gates and GRUs
with ``reset_after=False``. For those the generated module carries ``ExplicitRecurrent``: the layer
written out step by step, with torch's parameter names, shapes, gate order and return values, so
everything around it (state_dict keys, ``out, _ = self.gru(x)``, ``h_n[-1]``) reads as for nn.GRU.

The class text is fixed here, never built from a model file (a text an earlier wconv wrote is accepted too,
``former_helpers.py``): ``codetext.verify`` accepts a helper
class in a generated module only if it is exactly this text, and the torch reader reads a module of
this name only if its class is exactly this text (anything else computes something else).
"""

from __future__ import annotations

import ast
import inspect
import textwrap

from .former_helpers import FORMER

EXPLICIT_RECURRENT = '''
class ExplicitRecurrent(nn.Module):
    """An LSTM or GRU layer written out step by step (batch first), for what nn.LSTM and nn.GRU do not compute:
    hard-sigmoid gates, clamp(gate_alpha * x + gate_beta, 0, 1), and a GRU that applies its reset gate before
    the recurrent matmul (Keras reset_after=False, ONNX linear_before_reset=0). Parameters are named, shaped and
    gate-ordered as torch's own layers (LSTM i f g o, GRU r z n); it returns what they return:
    (out, (h_n, c_n)) for an LSTM, (out, h_n) for a GRU."""

    def __init__(self, cell, input_size, hidden_size, bias=True, bidirectional=False, gate_alpha=None,
                 gate_beta=0.5, reset_after=True):
        super().__init__()
        self.cell, self.input_size, self.hidden_size, self.bias = cell, input_size, hidden_size, bias
        self.bidirectional, self.num_layers, self.batch_first = bidirectional, 1, True
        self.gate_alpha, self.gate_beta, self.reset_after = gate_alpha, gate_beta, reset_after
        self.directions = ["", "_reverse"] if bidirectional else [""]
        rows = {"lstm": 4, "gru": 3}[cell] * hidden_size
        for suffix in self.directions:
            self.register_parameter("weight_ih_l0" + suffix, nn.Parameter(torch.empty(rows, input_size)))
            self.register_parameter("weight_hh_l0" + suffix, nn.Parameter(torch.empty(rows, hidden_size)))
            if bias:
                self.register_parameter("bias_ih_l0" + suffix, nn.Parameter(torch.empty(rows)))
                self.register_parameter("bias_hh_l0" + suffix, nn.Parameter(torch.empty(rows)))

    def gate(self, x):
        if self.gate_alpha is None:
            return torch.sigmoid(x)
        return torch.clamp(self.gate_alpha * x + self.gate_beta, 0.0, 1.0)

    def forward(self, x):
        sequences, finals, cells = [], [], []
        for suffix in self.directions:
            weights = [getattr(self, name + suffix, None)
                       for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")]
            steps = list(x.unbind(1))
            h = c = x.new_zeros(x.shape[0], self.hidden_size)
            outputs = []
            for step in reversed(steps) if suffix else steps:  # the backward direction runs last to first
                h, c = self.step(step, h, c, *weights)
                outputs.append(h)
            if suffix:
                outputs.reverse()
            sequences.append(torch.stack(outputs, 1))
            finals.append(h)
            cells.append(c)
        out, h_n, c_n = torch.cat(sequences, 2), torch.stack(finals), torch.stack(cells)
        return (out, (h_n, c_n)) if self.cell == "lstm" else (out, h_n)

    def step(self, x, h, c, w_ih, w_hh, b_ih, b_hh):
        """One time step: the new hidden state and (an LSTM's) cell state."""
        x_gates = F.linear(x, w_ih, b_ih)
        if self.cell == "lstm":
            i, f, g, o = (x_gates + F.linear(h, w_hh, b_hh)).chunk(4, 1)
            c = self.gate(f) * c + self.gate(i) * torch.tanh(g)
            return self.gate(o) * torch.tanh(c), c
        x_r, x_z, x_n = x_gates.chunk(3, 1)
        w_hr, w_hz, w_hn = w_hh.chunk(3, 0)
        b_hr, b_hz, b_hn = b_hh.chunk(3, 0) if b_hh is not None else (None, None, None)
        r = self.gate(x_r + F.linear(h, w_hr, b_hr))
        z = self.gate(x_z + F.linear(h, w_hz, b_hz))
        if self.reset_after:
            n = torch.tanh(x_n + r * F.linear(h, w_hn, b_hn))
        else:
            n = torch.tanh(x_n + F.linear(r * h, w_hn, b_hn))
        return (1 - z) * n + z * h, c
'''

EXPLICIT_ATTENTION = '''
class ExplicitAttention(nn.Module):
    """Multi-head attention with what nn.MultiheadAttention cannot compute: query and key size per head apart from
    the value's, an output width of its own, a mask, fewer key/value heads than query heads (kv_heads: query head h
    reads key/value head h // (heads / kv_heads)), rotary position embeddings (rotary_steps: each query and key
    head rotated, x * cos + cat(-x2, x1) * sin with the buffers rotary_cos and rotary_sin, one row per step), another
    scale than 1/sqrt(key_dim) and a bias added to the scores, one (T, S) table per head (score_bias_steps: the
    buffer score_bias, T5's relative position bias). Four projections around scaled dot-product attention. Causal:
    query step i attends to key steps 0..i. mask (N, T, S): True where query step t may attend to key step s; a step
    that may attend to nothing averages every value, as Keras' layer without dropout computes it, or, with
    zero_empty, gets none (zeros), as F.scaled_dot_product_attention does."""

    def __init__(self, query_size, key_size, value_size, heads, key_dim, value_dim, output_size, bias=True,
                 causal=False, zero_empty=False, kv_heads=None, rotary_steps=0, scale=None, score_bias_steps=None):
        super().__init__()
        self.heads, self.key_dim, self.value_dim, self.causal = heads, key_dim, value_dim, causal
        self.zero_empty, self.kv_heads, self.rotary_steps = zero_empty, kv_heads or heads, rotary_steps
        self.scale, self.score_bias_steps = key_dim ** -0.5 if scale is None else scale, score_bias_steps
        self.query = nn.Linear(query_size, heads * key_dim, bias=bias)
        self.key = nn.Linear(key_size, self.kv_heads * key_dim, bias=bias)
        self.value = nn.Linear(value_size, self.kv_heads * value_dim, bias=bias)
        self.output = nn.Linear(heads * value_dim, output_size, bias=bias)
        if rotary_steps:
            self.register_buffer("rotary_cos", torch.zeros(rotary_steps, key_dim))
            self.register_buffer("rotary_sin", torch.zeros(rotary_steps, key_dim))
        if score_bias_steps:
            self.register_buffer("score_bias", torch.zeros(heads, *score_bias_steps))

    def rotate(self, x):
        half = x.shape[-1] // 2
        return x * self.rotary_cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * self.rotary_sin

    def forward(self, query, key, value, mask=None):
        q = self.query(query).unflatten(-1, (self.heads, self.key_dim)).transpose(1, 2)
        k = self.key(key).unflatten(-1, (self.kv_heads, self.key_dim)).transpose(1, 2)
        v = self.value(value).unflatten(-1, (self.kv_heads, self.value_dim)).transpose(1, 2)
        if self.rotary_steps:
            q, k = self.rotate(q), self.rotate(k)
        if self.kv_heads != self.heads:
            k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)
            v = v.repeat_interleave(self.heads // self.kv_heads, dim=1)
        if mask is None and not self.score_bias_steps:
            attended = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal, scale=self.scale)
        else:
            scores = (q @ k.transpose(-2, -1)) * self.scale
            if self.score_bias_steps:
                scores = scores + self.score_bias
            keep = None if mask is None else mask.unsqueeze(1)  # the same for every head
            if self.causal:
                lower = torch.ones(scores.shape[-2:], dtype=torch.bool, device=scores.device).tril()
                keep = lower if keep is None else keep & lower
            if keep is not None:
                scores = scores.masked_fill(~keep, -1e9)
            attended = torch.softmax(scores, dim=-1) @ v
            if self.zero_empty and keep is not None:
                attended = attended * keep.any(-1, keepdim=True)
        return self.output(attended.transpose(1, 2).flatten(2))
'''

LAYER_SCALE = '''
class LayerScale(nn.Module):
    """x times a learned value per channel (axis 1), as ConvNeXt scales its residual branches."""

    def __init__(self, channels):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))

    def forward(self, x):
        return x * self.weight.reshape(-1, *[1] * (x.dim() - 2))
'''

CLASS_TOKENS = '''
class ClassTokens(nn.Module):
    """Learned tokens put before each sequence, as a ViT puts its class token before the patches."""

    def __init__(self, count, features):
        super().__init__()
        self.tokens = nn.Parameter(torch.zeros(count, features))

    def forward(self, x):
        return torch.cat([self.tokens.expand(x.shape[0], -1, -1), x], dim=1)
'''

POSITION_EMBEDDING = '''
class PositionEmbedding(nn.Module):
    """A learned table added to each sequence, one row per step."""

    def __init__(self, steps, features):
        super().__init__()
        self.table = nn.Parameter(torch.zeros(steps, features))

    def forward(self, x):
        return x + self.table
'''

HELPERS = {"ExplicitRecurrent": EXPLICIT_RECURRENT, "ExplicitAttention": EXPLICIT_ATTENTION, "LayerScale": LAYER_SCALE,
           "ClassTokens": CLASS_TOKENS, "PositionEmbedding": POSITION_EMBEDDING}


def _shape(text: str) -> str:
    return ast.dump(ast.parse(textwrap.dedent(text)).body[0])


# a helper's text, or one an earlier wconv generated (former_helpers.py)
_SHAPES = {name: {_shape(text)} | {_shape(former) for former in FORMER.get(name, ())} for name, text in HELPERS.items()}


def is_helper(statement: ast.stmt) -> bool:
    """True for a class statement that is exactly one of the helpers' text (as ``codetext.verify`` checks)."""
    return isinstance(statement, ast.ClassDef) and ast.dump(statement) in _SHAPES.get(statement.name, ())


def is_helper_class(cls) -> bool:
    """True when the class ``cls`` was defined by exactly one helper's text (a module wconv generated)."""
    if cls.__name__ not in HELPERS:
        return False
    try:
        text = inspect.getsource(cls)
    except (OSError, TypeError):
        return False
    return _shape(text) in _SHAPES[cls.__name__]


def source(names) -> str:
    """The helpers' text, in a fixed order, for the generated module."""
    return "".join(HELPERS[name] + "\n" for name in HELPERS if name in names)

