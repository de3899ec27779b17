"""Multi-head attention: Keras' separate (E, heads, key_dim) projections vs torch's packed in_proj_weight.

The IR keeps one weight per projection, rows grouped by head: ``wq`` ((h d), e), ``wk`` ((h d), k),
``wv`` ((h v), s), ``wo`` (o, (h v)), with their biases; inputs are (query, key, value), each
(N, T, features); scores are scaled by 1/sqrt(key_dim), as in Keras and torch.

- torch's ``nn.MultiheadAttention`` packs q, k and v into ``in_proj_weight`` (3E, E) when they all have
  E features (else ``q/k/v_proj_weight``) and needs heads x key_dim = value dims = output = E, with
  every bias or none. Anything else (Keras' ``key_dim`` is often E itself, per head), and a causal mask, is
  written as the generated module's ``ExplicitAttention`` (``adapters/torch/cells.py``): four ``nn.Linear``
  and ``F.scaled_dot_product_attention``.
- ONNX (opset < 23 has no attention op): MatMul/Add projections, Reshape/Transpose to heads, MatMul,
  Softmax, MatMul, and back; ``adapters/onnx/attention_pass.py`` reads that form back, and torch.onnx's.
- A causal mask (Keras ``use_causal_mask=True``; ``is_causal`` of the explicit form; in ONNX a Trilu mask
  before the softmax) is the ``causal`` attribute: query step i attends to key steps 0..i.
- Keras' ``attention_mask`` (N, T, S), True where a query step may attend to a key step, is a fourth input.
  A query step that may attend to no key step (a row of padding) is computed two ways, the ``empty_rows``
  attribute: 'average' (absent), every value averaged, as masked scores of -1e9 give (Keras' MultiHeadAttention
  without dropout, Keras 2's); 'zeros', no value at all (the output projection's bias alone), as torch's
  ``F.scaled_dot_product_attention`` gives and Keras 3's MultiHeadAttention with dropout (its other path) does.
  ONNX spells 'zeros' as torch.onnx does: -inf scores, and ``Where(IsNaN(weights), 0, weights)`` after the
  softmax. Keras 3 writes it with a dropout of 1e-7, which only training applies. torch's ``attn_mask`` built
  from a padding mask is read by ``adapters/torch/padding_masks.py``; ``key_padding_mask`` (True where *not* to
  attend) and float masks are refused.
- Grouped-query attention (``kv_heads`` < ``heads``; one key/value head: multi-query): ``wk`` and ``wv`` have
  ``kv_heads`` heads, and query head h reads key/value head h // (heads / kv_heads), as transformers' ``repeat_kv``
  and Keras' GroupedQueryAttention repeat them.
- Rotary position embeddings (``rotary``, ``ops/rotary.py``): each query and key head rotated by its step's angles
  after the projection, the tables ``cos`` and ``sin`` (steps, key_dim) params of the op.
- T5's attention: scores scaled by ``scale`` (an attribute where it is not 1/sqrt(key_dim); T5's is 1) and a
  learned bias added to them, one (query steps, key steps) table per head: the ``score_bias`` param (T5's relative
  position bias, the buckets it computes in forward() looked up for the length the port is built for).
  Keras' MultiHeadAttention and torch's nn.MultiheadAttention compute none of these: torch gets ``ExplicitAttention``,
  Keras wconv's own ``ExplicitAttention`` layer (``converter.keras_layers``), ONNX the rotation and the repeat
  spelled out between the heads split and the scores, the scale and the bias after them.
"""

from __future__ import annotations

import math

import numpy as np

from .. import views
from ..codetext import literal
from ..errors import Unsupported
from ..ir import Node
from ..layouts import permute
from . import rotary as rotary_tables
from .base import Convention, KerasReader, KerasSpec, OpDef, expect_dim
from .registry import register_keras, register_op, register_torch_module

PROJECTIONS = (("q", "query"), ("k", "key"), ("v", "value"), ("o", "output"))
ZEROS = "zeros"  # empty_rows: a query step with no key to attend to gets no value
KERAS_ZEROS_DROPOUT = 1e-7  # Keras 3's MultiHeadAttention gives zeros there only when it has dropout


HIDES = -1e9  # a score this low (or lower) hides its step: a mask, never a bias


def score_bias(array, heads: int, steps=None) -> np.ndarray | None:
    """The (heads, T, S) ``score_bias`` param for a constant an exporter or a module adds to an attention's scores,
    (1 or heads, T, S) or (N, 1 or heads, T, S) with every sample's rows alike; None where it is not one: not float,
    not finite, hiding a step (HIDES: a mask), other heads, or (``steps`` given) other steps than the scores'."""
    array = np.asarray(array)
    if array.dtype.kind != "f" or array.ndim not in (3, 4) or (array.ndim == 4 and not (array == array[:1]).all()) \
            or array.shape[-3] not in (1, heads) or (steps is not None and tuple(array.shape[-2:]) != tuple(steps)) \
            or not np.isfinite(array).all() or (array <= HIDES).any():
        return None
    table = array.reshape(-1, *array.shape[-3:])[0]
    return np.ascontiguousarray(np.broadcast_to(table, (heads, *table.shape[-2:])), dtype=np.float32)


class Attention(OpDef):
    name = "attention"
    input_kind = views.FEATURES_LAST
    boolean_inputs = (3,)  # the attention mask
    summary = "Multi-head scaled dot-product attention of (query, key, value), with input and output projections."
    params = {"wq": "(h d) e", "bq": "(h d)", "wk": "(h d) k", "bk": "(h d)", "wv": "(h v) s", "bv": "(h v)",
              "wo": "o (h v)", "bo": "o", "cos": "t d", "sin": "t d",
              "score_bias": "h t s"}  # wk, bk, wv, bv: h is kv_heads
    optional = frozenset({"bq", "bk", "bv", "bo", "cos", "sin", "score_bias"})
    conventions = {
        "keras": Convention(("MultiHeadAttention",),
                            {"wq": ("query kernel", "e h d"), "bq": ("query bias", "h d"),
                             "wk": ("key kernel", "k h d"), "bk": ("key bias", "h d"),
                             "wv": ("value kernel", "s h v"), "bv": ("value bias", "h v"),
                             "wo": ("attention_output kernel", "h v o"), "bo": ("attention_output bias", "o")},
                            {"heads": "num_heads", "key_dim": "key_dim (per head)", "value_dim": "value_dim=key_dim",
                             "inputs": "call(query, value, key=value)", "causal": "call(..., use_causal_mask=True)",
                             "empty_rows": "zeros with dropout > 0 (Keras 3), else average",
                             "kv_heads": "wconv's ExplicitAttention layer (kv_heads=), not MultiHeadAttention",
                             "rotary": "wconv's ExplicitAttention layer (rotary_steps=; weights cos, sin)",
                             "scale, score_bias": "wconv's ExplicitAttention layer (scale=, score_bias_steps=)"}),
        "torch": Convention(("MultiheadAttention",),
                            {"wq": ("in_proj_weight[:E]", "(h d) e"), "bq": ("in_proj_bias[:E]", "(h d)"),
                             "wk": ("in_proj_weight[E:2E]", "(h d) k"), "bk": ("in_proj_bias[E:2E]", "(h d)"),
                             "wv": ("in_proj_weight[2E:]", "(h v) s"), "bv": ("in_proj_bias[2E:]", "(h v)"),
                             "wo": ("out_proj.weight", "o (h v)"), "bo": ("out_proj.bias", "o")},
                            {"heads": "num_heads", "key_dim": "embed_dim / num_heads",
                             "inputs": "forward(query, key, value), batch_first=True",
                             "packing": "in_proj_weight (3E, E) = [q; k; v]; q/k/v_proj_weight when kdim/vdim != E",
                             "causal": "generated ExplicitAttention(..., causal=True)",
                             "empty_rows": "zeros (F.scaled_dot_product_attention)",
                             "kv_heads": "generated ExplicitAttention(..., kv_heads=g); transformers' repeat_kv",
                             "rotary": f"ExplicitAttention(..., rotary_steps=t), buffers rotary_cos and "
                                       f"rotary_sin; {rotary_tables.FORMULA}",
                             "scale, score_bias": "F.scaled_dot_product_attention's scale= and a float attn_mask "
                                                  "(T5); ExplicitAttention(..., scale=, score_bias_steps=(t, s))"}),
        "onnx": Convention(("MatMul/Softmax/MatMul",),
                           {"wq": ("MatMul B", "e (h d)"), "bq": ("Add", "(h d)"), "wk": ("MatMul B", "k (h d)"),
                            "bk": ("Add", "(h d)"), "wv": ("MatMul B", "s (h v)"), "bv": ("Add", "(h v)"),
                            "wo": ("MatMul B", "(h v) o"), "bo": ("Add", "o")},
                           {"inputs": "spelled out (opsets before 23 have no attention op)",
                            "causal": "Where(Trilu(...), scores, -1e9) before the Softmax",
                            "mask": "Where(mask, scores, -1e9) before the Softmax",
                            "empty_rows": "zeros: -inf, then Where(IsNaN(weights), 0, weights)",
                            "kv_heads": "Unsqueeze, Expand, Reshape of the key and value heads (repeat_kv)",
                            "rotary": "Mul/Slice/Neg/Concat/Mul/Add on the (N, T, heads, d) query and key heads",
                            "scale, score_bias": "Mul by the scale, then Add of a (1, h, t, s) constant"}),
    }
    notes = ("torch's nn.MultiheadAttention needs heads x key_dim = value dims = output = query features and no "
             "mask built at run time; otherwise wconv writes the generated module's ExplicitAttention (query, key, "
             "value, output nn.Linear + F.scaled_dot_product_attention), the same weights unpacked.",)

    def node(self, name, inputs, outputs, params, heads: int, causal: bool = False, empty_rows: str | None = None,
             kv_heads: int | None = None, scale: float | None = None) -> Node:
        """``kv_heads``: key and value heads, when fewer than ``heads``; ``params`` holding ``cos`` and ``sin``:
        the query and key heads rotated (rotary.HALF); ``scale``: the scores' factor, where not 1/sqrt(key_dim);
        ``params`` holding ``score_bias`` (heads, query steps, key steps): added to the scaled scores."""
        kv_heads = int(kv_heads or heads)
        if any(f"b{short}" in params for short, _ in PROJECTIONS):  # Qwen2 biases q, k and v, not the output:
            params = dict(params)  # every writer takes all biases or none, and a zero bias computes what none does
            for short, _ in PROJECTIONS:
                params.setdefault(f"b{short}", np.zeros(params[f"w{short}"].shape[0], params[f"w{short}"].dtype))
        if heads % kv_heads:
            raise Unsupported(f"layer '{name}': {heads} query heads cannot share {kv_heads} key/value heads evenly")
        key_dim = params["wq"].shape[0] // heads
        value_dim = params["wv"].shape[0] // kv_heads
        attrs = {"heads": int(heads), "key_dim": int(key_dim), "value_dim": int(value_dim)}
        if kv_heads != heads:
            attrs["kv_heads"] = kv_heads
        if "cos" in params or "sin" in params:
            attrs["rotary"] = rotary_tables.HALF
        if scale is not None and not math.isclose(scale, key_dim ** -0.5, rel_tol=1e-6):
            attrs["scale"] = float(scale)
        if causal:
            attrs["causal"] = True
        if empty_rows == ZEROS and len(inputs) > 3:  # without a mask, every query step has a key to attend to
            attrs["empty_rows"] = ZEROS
        return Node(self.name, name, list(inputs), list(outputs), params, attrs)

    @staticmethod
    def kv_heads(node) -> int:
        return node.attrs.get("kv_heads", node.attrs["heads"])

    @staticmethod
    def scale(node) -> float:
        return node.attrs.get("scale", node.attrs["key_dim"] ** -0.5)

    @staticmethod
    def explicit_only(node) -> bool:
        """Whether neither Keras' MultiHeadAttention nor torch's nn.MultiheadAttention computes the node: rotary,
        grouped key/value heads, another scale or a bias on the scores."""
        return any(key in node.attrs for key in ("rotary", "kv_heads", "scale")) or "score_bias" in node.params

    def output_shapes(self, node, input_shapes):
        query, key, value = input_shapes[:3]
        if len(input_shapes) > 3:
            mask = input_shapes[3]
            if mask is not None and len(mask) != 3:
                raise Unsupported(f"layer '{node.name}': an attention mask of shape {tuple(mask)}; wconv converts "
                                  "(batch, query steps, key steps)")
            expect_dim(node.name, "mask query steps", query[1] if query else None, mask[1] if mask else None)
            expect_dim(node.name, "mask key steps", key[1] if key else None, mask[2] if mask else None)
        p = node.params
        for what, weight, shape in (("query", "wq", query), ("key", "wk", key), ("value", "wv", value)):
            expect_dim(node.name, f"{what} features", p[weight].shape[1], shape[-1] if shape else None)
        a = node.attrs
        expect_dim(node.name, "key projection rows (key/value heads x key_dim)", self.kv_heads(node) * a["key_dim"],
                   p["wk"].shape[0])
        if key is not None and value is not None:
            expect_dim(node.name, "key and value steps", key[1], value[1])
        if "rotary" in a:
            steps = query[1] if query is not None else None
            rotary_tables.check(node.name, p["cos"], p["sin"], a["key_dim"], steps)
            if key is not None:
                expect_dim(node.name, "rotary key steps", p["cos"].shape[0], key[1])
        if "score_bias" in p:
            bias = p["score_bias"]
            expect_dim(node.name, "score bias rank (heads, query steps, key steps)", 3, bias.ndim)
            expect_dim(node.name, "score bias heads", a["heads"], bias.shape[0])
            expect_dim(node.name, "score bias query steps", bias.shape[1], query[1] if query else None)
            expect_dim(node.name, "score bias key steps", bias.shape[2], key[1] if key else None)
        return [None if query is None else (*query[:-1], int(p["wo"].shape[0]))]

    # -- Keras ------------------------------------------------------------------
    def keras_weight_names(self, config):
        bias = config.get("use_bias", True)
        return [name for projection in ("query", "key", "value", "output")
                for name in (f"{projection}_kernel", *([f"{projection}_bias"] if bias else []))]

    def keras_blocker(self, config):
        problems = []
        if config.get("use_gate"):
            problems.append("use_gate=True")
        if config.get("sliding_window") is not None:
            problems.append(f"sliding_window={config['sliding_window']}")
        if config.get("attention_axes") not in (None, [1], (1,)):
            problems.append(f"attention_axes={config['attention_axes']}")
        if isinstance(config.get("output_shape"), (list, tuple)) and len(config["output_shape"]) != 1:
            problems.append(f"output_shape={config['output_shape']}")
        return ", ".join(problems) + " not converted" if problems else None

    def from_keras(self, layer):
        tensors, mask = layer.inputs, []
        empty_rows = None
        if layer.call_options.get("attention_mask"):  # passed last (adapters/keras/config.py)
            tensors, mask = tensors[:-1], tensors[-1:]
            if layer.config.get("dropout") and layer.keras_version.startswith("3"):
                empty_rows = ZEROS  # Keras 3's path with dropout gives a query step that may attend to nothing zeros
        if len(tensors) not in (2, 3):
            raise Unsupported(f"layer '{layer.name}' (MultiHeadAttention): called with {len(tensors)} tensors; "
                              "wconv converts call(query, value[, key][, attention_mask])")
        query, value, key = (tensors + tensors[1:2])[:3]
        w = layer.weights
        keras = self.conventions["keras"].params
        params = {}
        for short, projection in PROJECTIONS:
            for kind, suffix in (("w", "kernel"), ("b", "bias")):
                if f"{projection}_{suffix}" in w:
                    params[f"{kind}{short}"] = permute(w[f"{projection}_{suffix}"], keras[f"{kind}{short}"][1],
                                                       self.params[f"{kind}{short}"], what=f"layer '{layer.name}' "
                                                       f"{projection} {suffix}")
        expect_dim(layer.name, "num_heads", layer.config["num_heads"], w["query_kernel"].shape[1])
        return [self.node(layer.name, [query, key, value, *mask], layer.outputs, params, layer.config["num_heads"],
                          causal=bool(layer.call_options.get("use_causal_mask")), empty_rows=empty_rows)]

    def to_keras(self, node, graph):
        if self.explicit_only(node):
            return self._explicit_keras(node)
        a, p = node.attrs, node.params
        heads = a["heads"]
        bias = self._biases(node)
        config = {"num_heads": heads, "key_dim": a["key_dim"], "value_dim": a["value_dim"], "use_bias": bias}
        if a.get("empty_rows") == ZEROS:
            config["dropout"] = KERAS_ZEROS_DROPOUT
        if p["wo"].shape[0] != p["wq"].shape[1]:
            config["output_shape"] = int(p["wo"].shape[0])
        weights = []
        for short in "qkv":
            kernel_axes, bias_axes = self.conventions["keras"].params[f"w{short}"][1], \
                self.conventions["keras"].params[f"b{short}"][1]
            weights.append(permute(p[f"w{short}"], self.params[f"w{short}"], kernel_axes, h=heads))
            if bias:
                weights.append(permute(p[f"b{short}"], self.params[f"b{short}"], bias_axes, h=heads))
        weights.append(permute(p["wo"], "o (h v)", "h v o", h=heads))
        if bias:
            weights.append(p["bo"])
        return KerasSpec("MultiHeadAttention", config, weights, call_order=[0, 2, 1],
                         call_options={"use_causal_mask": True} if a.get("causal") else None,
                         call_keywords={"attention_mask": 3} if len(node.inputs) > 3 else None)

    def _explicit_keras(self, node) -> KerasSpec:
        """wconv's own Keras layer (``converter.keras_layers.ExplicitAttention``): kernels (in, out) as Dense keeps
        them, the rotary tables after them."""
        a, p = node.attrs, node.params
        bias = self._biases(node)
        config = {"heads": a["heads"], "kv_heads": self.kv_heads(node), "key_dim": a["key_dim"],
                  "value_dim": a["value_dim"], "output_size": int(p["wo"].shape[0]), "use_bias": bias,
                  "causal": bool(a.get("causal")), "zero_empty": a.get("empty_rows") == ZEROS,
                  "rotary_steps": int(p["cos"].shape[0]) if "rotary" in a else 0}
        if "scale" in a:
            config["scale"] = a["scale"]
        if "score_bias" in p:
            config["score_bias_steps"] = [int(size) for size in p["score_bias"].shape[1:]]
        weights = [array for short, _ in PROJECTIONS
                   for array in (np.ascontiguousarray(p[f"w{short}"].T), *([p[f"b{short}"]] if bias else []))]
        weights += [p["cos"], p["sin"]] if "rotary" in a else []
        weights += [p["score_bias"]] if "score_bias" in p else []
        return KerasSpec("ExplicitAttention", config, weights,
                         call_keywords={"attention_mask": 3} if len(node.inputs) > 3 else None, call_order=[0, 1, 2])

    def _biases(self, node) -> bool:
        present = [f"b{short}" in node.params for short, _ in PROJECTIONS]
        if any(present) and not all(present):
            raise Unsupported(f"layer '{node.name}': attention with only some projections biased")
        return all(present)

    # -- torch ------------------------------------------------------------------
    def packs(self, node) -> bool:
        """Whether ``nn.MultiheadAttention`` computes exactly this node (with no mask to build at run time)."""
        a, p = node.attrs, node.params
        embed = p["wq"].shape[1]
        return a["key_dim"] == a["value_dim"] and a["heads"] * a["key_dim"] == embed == p["wo"].shape[0] and \
            not a.get("causal") and len(node.inputs) == 3 and not self.explicit_only(node)

    def torch_helper(self, node):
        return None if self.packs(node) else "ExplicitAttention"

    def torch_module(self, node, graph):
        p, bias = node.params, self._biases(node)
        if self.packs(node):
            embed = int(p["wq"].shape[1])
            options = [str(embed), str(node.attrs["heads"]), "batch_first=True"]
            if not bias:
                options.append("bias=False")
            if p["wk"].shape[1] != embed or p["wv"].shape[1] != embed:
                options += [f"kdim={int(p['wk'].shape[1])}", f"vdim={int(p['wv'].shape[1])}"]
            return f"nn.MultiheadAttention({', '.join(options)})"
        a = node.attrs
        sizes = [p["wq"].shape[1], p["wk"].shape[1], p["wv"].shape[1], a["heads"], a["key_dim"], a["value_dim"],
                 p["wo"].shape[0]]
        options = [literal(int(size)) for size in sizes] + (["bias=False"] if not bias else []) + \
            (["causal=True"] if a.get("causal") else []) + (["zero_empty=True"] if a.get("empty_rows") else []) + \
            ([f"kv_heads={literal(int(a['kv_heads']))}"] if "kv_heads" in a else []) + \
            ([f"rotary_steps={literal(int(p['cos'].shape[0]))}"] if "rotary" in a else []) + \
            ([f"scale={literal(float(a['scale']))}"] if "scale" in a else []) + \
            ([f"score_bias_steps=({literal(int(p['score_bias'].shape[1]))}, "
              f"{literal(int(p['score_bias'].shape[2]))})"] if "score_bias" in p else [])
        return f"ExplicitAttention({', '.join(options)})"

    def torch_forward(self, node, graph, module, args):
        query, key, value = args[:3]
        if self.packs(node):
            return f"{module}({query}, {key}, {value}, need_weights=False)[0]"
        return f"{module}({', '.join(args)})"

    def params_to(self, framework, node):
        """torch's state_dict entries; Keras' and ONNX's tensors are built by their writers (no one-to-one pairs)."""
        if framework != "torch":
            return {}
        p, bias = node.params, self._biases(node)
        if not self.packs(node):
            named = {}
            for short, projection in PROJECTIONS:
                named[f"{projection}.weight"] = p[f"w{short}"]
                if bias:
                    named[f"{projection}.bias"] = p[f"b{short}"]
            if "rotary" in node.attrs:
                named["rotary_cos"], named["rotary_sin"] = p["cos"], p["sin"]
            if "score_bias" in p:
                named["score_bias"] = p["score_bias"]
            return named
        embed = p["wq"].shape[1]
        if p["wk"].shape[1] == embed and p["wv"].shape[1] == embed:
            named = {"in_proj_weight": np.concatenate([p["wq"], p["wk"], p["wv"]])}
        else:
            named = {"q_proj_weight": p["wq"], "k_proj_weight": p["wk"], "v_proj_weight": p["wv"]}
        if bias:
            named["in_proj_bias"] = np.concatenate([p["bq"], p["bk"], p["bv"]])
        named["out_proj.weight"] = p["wo"]
        if bias:
            named["out_proj.bias"] = p["bo"]
        return named

    def from_torch(self, layer):
        module, w = layer.module, layer.weights
        problems = []
        if not module.batch_first:
            problems.append("batch_first=False")
        if module.bias_k is not None or module.add_zero_attn:
            problems.append("add_bias_kv/add_zero_attn")
        if problems:
            raise Unsupported(f"layer '{layer.name}' (MultiheadAttention): {', '.join(problems)} not converted")
        embed = module.embed_dim
        if "in_proj_weight" in w:
            wq, wk, wv = np.split(w["in_proj_weight"], 3)
        else:
            wq, wk, wv = w["q_proj_weight"], w["k_proj_weight"], w["v_proj_weight"]
        params = {"wq": wq, "wk": wk, "wv": wv, "wo": w["out_proj.weight"]}
        if "in_proj_bias" in w:
            params["bq"], params["bk"], params["bv"] = np.split(w["in_proj_bias"], 3)
        if "out_proj.bias" in w:
            params["bo"] = w["out_proj.bias"]
        expect_dim(layer.name, "embed_dim", embed, wq.shape[0])
        return [self.node(layer.name, layer.inputs[:3], layer.outputs, params, module.num_heads)]

    def from_timm(self, layer):
        """timm's ``Attention`` (ViT, DeiT): a packed ``qkv`` Linear split as (3, heads, head_dim), scaled dot-product
        attention, then ``proj``. Read only for timm's class, with no norm on q, k or the output and no gate."""
        module, w = layer.module, layer.weights
        if type(module).__module__ not in TIMM_ATTENTION_MODULES:
            raise Unsupported(f"layer '{layer.name}' (Attention): not timm's class, so what it computes is unknown")
        extras = [name for name in ("q_norm", "k_norm", "norm") if type(getattr(module, name, None)).__name__ not in
                  ("Identity", "NoneType")] + (["gate"] if getattr(module, "gate", None) is not None else [])
        heads, head_dim = int(module.num_heads), int(module.head_dim)
        if extras or abs(float(module.scale) - head_dim ** -0.5) > 1e-6 * head_dim ** -0.5:
            raise Unsupported(f"layer '{layer.name}' (timm Attention): {', '.join(extras) or f'scale {module.scale}'}"
                              " not converted")
        wq, wk, wv = np.split(w["qkv.weight"], 3)
        params = {"wq": wq, "wk": wk, "wv": wv, "wo": w["proj.weight"]}
        if "qkv.bias" in w or "proj.bias" in w:  # a bias left out is zeros, which computes the same
            params["bq"], params["bk"], params["bv"] = np.split(w.get("qkv.bias", np.zeros(3 * len(wq), np.float32)), 3)
            params["bo"] = w.get("proj.bias", np.zeros(len(params["wo"]), np.float32))
        expect_dim(layer.name, "heads x head_dim", heads * head_dim, wq.shape[0])
        return [self.node(layer.name, layer.inputs[:3], layer.outputs, params, heads)]

    def from_explicit(self, layer):
        """A generated module's ``ExplicitAttention``, read only when its class is exactly wconv's text."""
        from ..adapters.torch.cells import is_helper_class  # not above: the adapters import this op table

        module, w = layer.module, layer.weights
        if not is_helper_class(type(module)):
            raise Unsupported(f"layer '{layer.name}' (ExplicitAttention): not the class wconv generates, so what it "
                              "computes is unknown")
        params = {f"{kind}{short}": w[f"{projection}.{name}"] for short, projection in PROJECTIONS
                  for kind, name in (("w", "weight"), ("b", "bias")) if f"{projection}.{name}" in w}
        if getattr(module, "rotary_steps", 0):  # an earlier wconv's class has none of the newer arguments
            params["cos"], params["sin"] = w["rotary_cos"], w["rotary_sin"]
        if getattr(module, "score_bias_steps", None):
            params["score_bias"] = w["score_bias"]
        kv_heads = getattr(module, "kv_heads", module.heads)
        expect_dim(layer.name, "heads x key_dim", module.heads * module.key_dim, params["wq"].shape[0])
        expect_dim(layer.name, "kv_heads x value_dim", kv_heads * module.value_dim, params["wv"].shape[0])
        return [self.node(layer.name, layer.inputs[:4], layer.outputs, params, module.heads, causal=module.causal,
                          empty_rows=ZEROS if getattr(module, "zero_empty", False) else None, kv_heads=kv_heads,
                          scale=getattr(module, "scale", None))]

    # -- ONNX -------------------------------------------------------------------
    def to_onnx(self, node, builder):
        """Projections, heads apart, softmax(q k^T / sqrt(d)) v, heads together, output projection."""
        name, p, a = node.name, node.params, node.attrs
        heads, kv_heads = a["heads"], self.kv_heads(node)

        def project(x, short, size, perm, count):
            y = self._linear(builder, f"{name}/{short}", x, p[f"w{short}"], p.get(f"b{short}"))
            shape = builder.initializer(f"{name}.{short}_heads", np.array([0, 0, count, size], np.int64))
            split = f"{name}/{short}_heads"
            builder.node("Reshape", [y, shape], [split], f"{name}/{short}_split")
            if "rotary" in a and short in "qk":
                split = rotary_tables.to_onnx(builder, f"{name}/{short}_rotary", split, p["cos"], p["sin"])
            if count != heads:
                split = self._repeated(builder, f"{name}/{short}_repeat", split, heads // count, size)
            builder.node("Transpose", [split], [f"{name}/{short}_t"], f"{name}/{short}_t", perm=perm)
            return f"{name}/{short}_t"

        query, key, value = node.inputs[:3]
        q = project(query, "q", a["key_dim"], [0, 2, 1, 3], heads)
        k = project(key, "k", a["key_dim"], [0, 2, 3, 1], kv_heads)
        v = project(value, "v", a["value_dim"], [0, 2, 1, 3], kv_heads)
        builder.node("MatMul", [q, k], [f"{name}/scores"], f"{name}/scores")
        scale = builder.initializer(f"{name}.scale", np.array(self.scale(node), np.float32))
        builder.node("Mul", [f"{name}/scores", scale], [f"{name}/scaled"], f"{name}/scale")
        scaled = f"{name}/scaled"
        if "score_bias" in p:  # one (T, S) table per head, the same for every example
            bias = builder.initializer(f"{name}.score_bias", p["score_bias"][None])
            builder.node("Add", [scaled, bias], [f"{name}/biased"], f"{name}/score_bias")
            scaled = f"{name}/biased"
        zeros = a.get("empty_rows") == ZEROS
        hidden_score = -np.inf if zeros else -1e9  # -inf: a row masked whole is NaN, then 0 (torch.onnx's spelling)
        scores = self._causal_mask(builder, name, scaled, hidden_score) if a.get("causal") else scaled
        weights = f"{name}/weights"
        if len(node.inputs) > 3:  # the mask: hidden where a step may not attend (attention_pass reads it back)
            axis = builder.initializer(f"{name}.heads_axis", np.array([1], np.int64))
            builder.node("Unsqueeze", [node.inputs[3], axis], [f"{name}/mask"], f"{name}/mask")
            hidden = builder.initializer(f"{name}.hidden", np.array(hidden_score, np.float32))
            builder.node("Where", [f"{name}/mask", scores, hidden], [f"{name}/masked"], f"{name}/masked")
            scores = f"{name}/masked"
        builder.node("Softmax", [scores], [f"{name}/softmax" if zeros else weights], f"{name}/softmax", axis=-1)
        if zeros:
            zero = builder.initializer(f"{name}.zero", np.array(0.0, np.float32))
            builder.node("IsNaN", [f"{name}/softmax"], [f"{name}/empty"], f"{name}/empty")
            builder.node("Where", [f"{name}/empty", zero, f"{name}/softmax"], [weights], f"{name}/no_value")
        builder.node("MatMul", [f"{name}/weights", v], [f"{name}/attended"], f"{name}/attend")
        builder.node("Transpose", [f"{name}/attended"], [f"{name}/joined_t"], f"{name}/join_t", perm=[0, 2, 1, 3])
        shape = builder.initializer(f"{name}.joined", np.array([0, 0, heads * a["value_dim"]], np.int64))
        builder.node("Reshape", [f"{name}/joined_t", shape], [f"{name}/joined"], f"{name}/join")
        out = self._linear(builder, f"{name}/o", f"{name}/joined", p["wo"], p.get("bo"))
        builder.node("Identity", [out], node.outputs, f"{name}/output")

    @staticmethod
    def _causal_mask(builder, name, scores, hidden_score=-1e9) -> str:
        """-1e9 above the diagonal of the last two axes (query step i keeps key steps 0..i), sized at run time:
        Where(Cast(Trilu(Expand(1, Shape(scores)), upper=0), bool), scores, -1e9). -1e9 as for Keras' mask, so
        that with one too, a query step that may attend to nothing averages every value as in Keras."""
        one = builder.initializer(f"{name}.one", np.array(1.0, np.float32))
        hidden = builder.initializer(f"{name}.masked", np.array(hidden_score, np.float32))
        builder.node("Shape", [scores], [f"{name}/scores_shape"], f"{name}/scores_shape")
        builder.node("Expand", [one, f"{name}/scores_shape"], [f"{name}/ones"], f"{name}/ones")
        builder.node("Trilu", [f"{name}/ones"], [f"{name}/lower"], f"{name}/lower", upper=0)
        builder.node("Cast", [f"{name}/lower"], [f"{name}/keep"], f"{name}/keep", to=9)  # BOOL
        builder.node("Where", [f"{name}/keep", scores, hidden], [f"{name}/causal"], f"{name}/causal")
        return f"{name}/causal"

    @staticmethod
    def _repeated(builder, name, x, times: int, size: int) -> str:
        """(N, T, g, d) -> (N, T, g * times, d), each head ``times`` over in a row (transformers' repeat_kv):
        Reshape(Expand(Unsqueeze(x, 3), [1, 1, 1, times, 1]), [0, 0, -1, d])."""
        axis = builder.initializer(f"{name}.axis", np.array([3], np.int64))
        times_shape = builder.initializer(f"{name}.times", np.array([1, 1, 1, times, 1], np.int64))
        joined = builder.initializer(f"{name}.joined", np.array([0, 0, -1, size], np.int64))
        builder.node("Unsqueeze", [x, axis], [f"{name}/apart"], f"{name}/apart")
        builder.node("Expand", [f"{name}/apart", times_shape], [f"{name}/times"], f"{name}/times")
        builder.node("Reshape", [f"{name}/times", joined], [f"{name}/repeated"], f"{name}/repeated")
        return f"{name}/repeated"

    @staticmethod
    def _linear(builder, name, x, weight, bias) -> str:
        kernel = builder.initializer(f"{name}.weight", np.ascontiguousarray(weight.T))
        builder.node("MatMul", [x, kernel], [f"{name}/matmul"], f"{name}/matmul")
        if bias is None:
            return f"{name}/matmul"
        builder.node("Add", [f"{name}/matmul", builder.initializer(f"{name}.bias", bias)], [f"{name}/out"], f"{name}/add")
        return f"{name}/out"


class ExplicitKerasAttention(KerasReader):
    """wconv's own Keras layer (``converter.keras_layers.ExplicitAttention``), read back as the attention op."""

    input_kind = views.FEATURES_LAST

    def keras_weight_names(self, config):
        bias = ("bias",) if config.get("use_bias", True) else ()
        return [f"{projection}_{kind}" for _, projection in PROJECTIONS for kind in ("kernel", *bias)] + \
            (["cos", "sin"] if config.get("rotary_steps") else []) + \
            (["score_bias"] if config.get("score_bias_steps") else [])

    def from_keras(self, layer):
        c, w = layer.config, layer.weights
        params = {f"{kind}{short}": (w[f"{projection}_{suffix}"].T if kind == "w" else w[f"{projection}_{suffix}"])
                  for short, projection in PROJECTIONS for kind, suffix in (("w", "kernel"), ("b", "bias"))
                  if f"{projection}_{suffix}" in w}
        if c.get("rotary_steps"):
            params["cos"], params["sin"] = w["cos"], w["sin"]
        if c.get("score_bias_steps"):
            params["score_bias"] = w["score_bias"]
        expect_dim(layer.name, "heads x key_dim", int(c["heads"]) * int(c["key_dim"]), params["wq"].shape[0])
        expect_dim(layer.name, "kv_heads x value_dim", int(c["kv_heads"]) * int(c["value_dim"]),
                   params["wv"].shape[0])
        return [ATTENTION.node(layer.name, layer.inputs[:4], layer.outputs, params, int(c["heads"]),
                               causal=bool(c.get("causal")), empty_rows=ZEROS if c.get("zero_empty") else None,
                               kv_heads=int(c["kv_heads"]), scale=c.get("scale"))]


ATTENTION = register_op(Attention())
register_keras("MultiHeadAttention", ATTENTION)
register_keras("ExplicitAttention", ExplicitKerasAttention())
register_torch_module("MultiheadAttention", ATTENTION.from_torch)
register_torch_module("ExplicitAttention", ATTENTION.from_explicit)
register_torch_module("Attention", ATTENTION.from_timm)  # kept whole by exported.py only for timm's class
TIMM_ATTENTION_MODULES = ("timm.layers.attention", "timm.models.vision_transformer")
