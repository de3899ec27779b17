"""Tiny transformers models (hidden 32, two layers, built from a config: no download) wrapped as users wrap them
for ``--module``: token ids in, the backbone's outputs as a tuple out. A file of its own: ``--module`` imports it."""

from __future__ import annotations

from third_party import import_torchvision

import_torchvision()  # transformers imports torchvision where it is installed (tests/third_party.py)

from torch import nn  # noqa: E402
from transformers import (BertConfig, BertModel, DistilBertConfig, DistilBertModel, GPT2Config, GPT2LMHeadModel,  # noqa: E402
                          GPT2Model, ViTConfig, ViTModel)

STEPS, VOCABULARY, IMAGE = 7, 100, (3, 32, 24)
SMALL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 48,
         "vocab_size": VOCABULARY, "max_position_embeddings": 64}


class TinyBert(nn.Module):
    """BertModel: word, position and token-type embeddings summed, post-norm encoder layers whose attention is
    ``F.scaled_dot_product_attention``, the pooler (tanh of a Linear of the first step)."""

    wconv_input_shapes = [(STEPS,)]

    def __init__(self):
        super().__init__()
        self.bert = BertModel(BertConfig(**SMALL))

    def forward(self, input_ids):
        out = self.bert(input_ids)
        return out.last_hidden_state, out.pooler_output


class TinyDistilBert(nn.Module):
    """DistilBertModel: word and position embeddings, no token types, no pooler."""

    wconv_input_shapes = [(STEPS,)]

    def __init__(self):
        super().__init__()
        self.bert = DistilBertModel(DistilBertConfig(dim=32, n_layers=2, n_heads=4, hidden_dim=48,
                                                     vocab_size=VOCABULARY, max_position_embeddings=64))

    def forward(self, input_ids):
        return self.bert(input_ids).last_hidden_state


class TinyViT(nn.Module):
    """ViTModel on 32 x 24 images (h != w) in 8 x 8 patches: a patch conv, the class token, the position table,
    pre-norm encoder layers, the final norm and the pooler."""

    wconv_input_shapes = [IMAGE]

    def __init__(self):
        super().__init__()
        config = {key: value for key, value in SMALL.items() if key not in ("vocab_size", "max_position_embeddings")}
        self.vit = ViTModel(ViTConfig(image_size=IMAGE[1:], patch_size=8, num_channels=3, **config))

    def forward(self, pixel_values):
        out = self.vit(pixel_values)
        return out.last_hidden_state, out.pooler_output


GPT2 = {"n_embd": 32, "n_layer": 2, "n_head": 4, "n_inner": 48, "vocab_size": VOCABULARY, "n_positions": 64,
        "use_cache": False}


class TinyGPT2(nn.Module):
    """GPT2Model: positions counted in forward() (``arange``), q, k and v packed in one ``Conv1D`` (weights stored
    (in, out)) split three ways, the causal mask transformers builds from positions, ``gelu_new`` written out."""

    wconv_input_shapes = [(STEPS,)]

    def __init__(self):
        super().__init__()
        self.gpt2 = GPT2Model(GPT2Config(**GPT2))

    def forward(self, input_ids):
        return self.gpt2(input_ids).last_hidden_state


class TinyGPT2LMHead(nn.Module):
    """GPT2LMHeadModel: the language-model head tied to the token embedding (one tensor, two uses)."""

    wconv_input_shapes = [(STEPS,)]

    def __init__(self):
        super().__init__()
        self.gpt2 = GPT2LMHeadModel(GPT2Config(**GPT2))

    def forward(self, input_ids):
        return self.gpt2(input_ids).logits


class Masked(nn.Module):
    """A backbone called with token ids and transformers' ``attention_mask`` (1 for a token, 0 for padding), both
    int64 inputs of the port."""

    wconv_input_shapes = [(STEPS,), (STEPS,)]
    wconv_input_dtypes = ["int64", "int64"]

    def __init__(self, family):
        super().__init__()
        self.family = family
        self.backbone = {"bert": lambda: BertModel(BertConfig(**SMALL)),
                         "distilbert": lambda: TinyDistilBert().bert,
                         "gpt2": lambda: GPT2Model(GPT2Config(**GPT2)),
                         "llama": lambda: TinyLlama().llama,
                         "roberta": lambda: TinyRoberta().roberta,
                         "t5": lambda: TinyT5().t5}[family]()

    def forward(self, input_ids, attention_mask):
        out = self.backbone(input_ids, attention_mask=attention_mask)
        pooled = self.family in ("bert", "roberta")
        return (out.last_hidden_state, out.pooler_output) if pooled else out.last_hidden_state


LLAMA = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
         "intermediate_size": 48, "vocab_size": VOCABULARY, "max_position_embeddings": 64, "use_cache": False}


class TinyLlama(nn.Module):
    """LlamaModel: RMSNorm, rotary position embeddings (half rotation), grouped-query attention (4 query heads
    sharing 2 key/value heads), the gated MLP (SiLU(gate) x up)."""

    wconv_input_shapes = [(STEPS,)]

    def __init__(self):
        super().__init__()
        from transformers import LlamaConfig, LlamaModel

        self.llama = LlamaModel(LlamaConfig(**LLAMA))

    def forward(self, input_ids):
        return self.llama(input_ids).last_hidden_state


class TinyRoberta(nn.Module):
    """RobertaModel: positions counted from the ids, padding (id 1) skipped, its token types gathered from a zero
    buffer by those positions; otherwise BERT's blocks."""

    wconv_input_shapes = [(STEPS,)]

    def __init__(self):
        super().__init__()
        from transformers import RobertaConfig, RobertaModel

        self.roberta = RobertaModel(RobertaConfig(**SMALL, pad_token_id=1))

    def forward(self, input_ids):
        out = self.roberta(input_ids)
        return out.last_hidden_state, out.pooler_output


class TinyQwen2(nn.Module):
    """Qwen2Model: Llama's blocks with biases on the query, key and value projections."""

    wconv_input_shapes = [(STEPS,)]

    def __init__(self):
        super().__init__()
        from transformers import Qwen2Config, Qwen2Model

        self.qwen = Qwen2Model(Qwen2Config(**LLAMA))

    def forward(self, input_ids):
        return self.qwen(input_ids).last_hidden_state


T5 = {"vocab_size": VOCABULARY, "d_model": 32, "d_kv": 8, "d_ff": 48, "num_layers": 2, "num_heads": 4,
      "relative_attention_num_buckets": 8, "relative_attention_max_distance": 16, "feed_forward_proj": "gated-gelu"}


class TinyT5(nn.Module):
    """T5EncoderModel with flan-T5's blocks: RMSNorm, attention scaled by 1 with the relative position bias the first
    layer computes from its buckets (and hands to the next), the gated tanh-GELU MLP. Its token embedding is the
    model's ``shared`` one: one tensor, two state_dict keys."""

    wconv_input_shapes = [(STEPS,)]

    def __init__(self):
        super().__init__()
        from transformers import T5Config, T5EncoderModel

        self.t5 = T5EncoderModel(T5Config(**T5))

    def forward(self, input_ids):
        return self.t5(input_ids).last_hidden_state
