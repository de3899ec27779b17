"""keras-hub's layers, read as the ops they compute: its backbones (``--module keras_hub.models:BertBackbone``).

keras-hub's composite layers hold Keras layers of their own (a ``TransformerEncoder`` holds a MultiHeadAttention, two
LayerNormalizations and two Dense layers) and keep their weights under those sub-layers' paths. Each is expanded
into the nodes of the layers it holds, read by the readers of those layers (so their conventions stay in their op
files), each node named after its sub-layer (``transformer_layer_0.self_attention_layer``), its last node giving the
layer's output. As torch's TransformerEncoderLayer (transformer.py), they are read only: written back, they are
plain layers. Dropout computes nothing at inference, and is left out.

- ``TransformerEncoder`` / ``TransformerDecoder`` (self-attention only: GPT-2's): ``x = norm(x + attention(x))``,
  then ``norm(x + output_dense(intermediate_dense(x)))``; with ``normalize_first`` the norm is applied to the
  block's input instead. The ``padding_mask`` (``decoder_padding_mask``) keyword is the (batch, steps) mask keras-hub
  passes as (batch, 1, steps): the ``padding_mask`` op (not zero, the same row for each query step). A decoder is
  causal unless called with ``use_causal_mask=False``.
- ``TokenAndPositionEmbedding``: a token Embedding, then the first T rows of its position table added.
- keras-hub's ``PositionEmbedding`` gives the table's first T rows, broadcast to its input's shape; its backbones add
  it to that input at once (``Add([tokens, positions, ...])``): read together, as the ``position_embedding`` op (its
  input plus the table), by the chain in ``adapters/keras/chains.py``. A position table keeps the first T rows, T the
  steps the port is built for (``--input-shape T``): the rows after them are never read at that length.

ViT's layers are in keras_hub_vit.py, with the helpers here.
"""

from __future__ import annotations

from dataclasses import replace

from ..errors import ShapeMismatch, Unsupported
from .. import views
from .attention import ATTENTION
from .base import KerasReader
from .dense import DENSE
from .embedding import EMBEDDING
from .layernorm import LAYERNORM
from .padding_mask import PADDING_MASK
from .registry import OPS, register_keras
from .tokens import POSITION_EMBEDDING

POSITIONS_ADDED = "keras_hub>PositionEmbedding+Add"  # the chain's entry (adapters/keras/chains.py)

# What each sub-layer's reader names its weights, and where a .keras file keeps each, under the sub-layer's path
ATTENTION_VARIABLES = {name: f"{projection}_dense/{index}" for projection in ("query", "key", "value", "output")
                       for index, name in enumerate((f"{projection}_kernel", f"{projection}_bias"))}
DENSE_VARIABLES = {"kernel": "0", "bias": "1"}
NORM_VARIABLES = {"gamma": "0", "beta": "1"}
TRANSFORMER_SUBLAYERS = {  # path -> its variables; sorted by path, as a .keras file lists them
    "_feedforward_intermediate_dense": DENSE_VARIABLES, "_feedforward_layer_norm": NORM_VARIABLES,
    "_feedforward_output_dense": DENSE_VARIABLES, "_self_attention_layer": ATTENTION_VARIABLES,
    "_self_attention_layer_norm": NORM_VARIABLES}
# Config keys that do not change what a transformer layer computes at inference (dropout is left out)
TRANSFORMER_CONFIG = {"name", "trainable", "dtype", "intermediate_dim", "num_heads", "dropout", "activation",
                      "layer_norm_epsilon", "kernel_initializer", "bias_initializer", "normalize_first",
                      "decoder_sequence_shape", "encoder_sequence_shape"}
MASK_KEYWORDS = ("padding_mask", "decoder_padding_mask")


def unknown_keys(config: dict, known: set) -> list[str]:
    """The config keys of a keras-hub layer that wconv does not know to compute nothing (a newer keras-hub's option
    may change what the layer computes): refused by name rather than ignored."""
    return sorted(key for key in config if key not in known)


def stored_names(sublayers: dict) -> list[str]:
    """Where a .keras file keeps each weight of ``sublayers`` (path -> its variables), in the file's order."""
    from ..adapters.keras.files import stored_order  # not above: the adapters import this op table

    return stored_order([f"{path}/{stored}" for path, variables in sublayers.items() for stored in variables.values()])


def sublayer(layer, path: str, variables: dict, class_name: str, config: dict, inputs: list, input_shapes: list,
              call_options: dict | None = None):
    """The KerasLayer of the sub-layer at ``path``, its weights named as its own reader names them, its output
    ``<its node name>/out``."""
    weights = {name: layer.weights[f"{path}/{stored}"] for name, stored in variables.items()}
    name = node_name(layer, path)
    return replace(layer, class_name=class_name, name=name, config=config,
                   weights=weights, inputs=inputs, outputs=[f"{name}/out"], input_shapes=input_shapes,
                   input_layouts=[views.default(views.FEATURES_LAST, len(shape)) if shape else None
                                  for shape in input_shapes],
                   call_options=call_options or {}, constants={})


def node_name(layer, path: str) -> str:
    """``transformer_layer_0.self_attention_layer`` for the sub-layer at ``_self_attention_layer``."""
    return f"{layer.name}.{'.'.join(part.lstrip('_') for part in path.split('/'))}"


def _steps(layer) -> int:
    shape = layer.input_shapes[0] if layer.input_shapes else None
    if shape is None or len(shape) != 3:
        raise Unsupported(f"layer '{layer.name}' ({layer.class_name}): takes a sequence (batch, steps, features); "
                          f"found shape {shape}")
    if shape[1] is None:
        raise Unsupported(f"layer '{layer.name}' ({layer.class_name}): the sequence length is free; give it with "
                          "--input-shape T (the port is built for that many steps)")
    return int(shape[1])


class TransformerLayer(KerasReader):
    """keras-hub's ``TransformerEncoder`` and ``TransformerDecoder`` (``decoder``: causal by default)."""

    input_kind = views.FEATURES_LAST

    def __init__(self, decoder: bool):
        self.decoder = decoder

    def keras_weight_names(self, config):
        return stored_names(TRANSFORMER_SUBLAYERS)

    def keras_blocker(self, config):
        problems = unknown_keys(config, TRANSFORMER_CONFIG)
        if config.get("encoder_sequence_shape") is not None:
            problems.append("cross-attention (encoder_sequence_shape)")
        return ", ".join(problems) + " not converted" if problems else None

    def from_keras(self, layer):
        steps, features = _steps(layer), int(layer.input_shapes[0][2])
        config, name = layer.config, layer.name
        heads = int(config["num_heads"])
        shape, wide = layer.input_shapes[0], (*layer.input_shapes[0][:2], int(config["intermediate_dim"]))
        masked = any(layer.call_options.get(key) for key in MASK_KEYWORDS)
        if layer.call_options.get("attention_mask") or len(layer.inputs) != 1 + masked:
            raise Unsupported(f"layer '{name}' ({layer.class_name}): called with {len(layer.inputs)} tensors"
                              f"{' and an attention_mask' if layer.call_options.get('attention_mask') else ''}; "
                              "wconv converts call(x[, padding_mask])")
        causal = self.decoder and layer.call_options.get("use_causal_mask", True)
        mask = [f"{name}.padding_mask/out"] if masked else []  # the mask is passed last (adapters/keras/config.py)
        nodes = [PADDING_MASK.node(f"{name}.padding_mask", layer.inputs[-1:], mask, steps=steps)] if masked else []

        def norm(path, x):
            config_norm = {"epsilon": config.get("layer_norm_epsilon", 1e-5), "axis": -1}
            return LAYERNORM.from_keras(sublayer(layer, path, NORM_VARIABLES, "LayerNormalization", config_norm, [x],
                                                  [shape]))

        def attention(x):
            attention_config = {"num_heads": heads, "key_dim": features // heads, "dropout": config.get("dropout", 0)}
            blocker = ATTENTION.keras_blocker(attention_config)
            if blocker:
                raise Unsupported(f"layer '{name}': {blocker}")
            options = {"attention_mask": bool(mask), "use_causal_mask": bool(causal)}
            return ATTENTION.from_keras(sublayer(layer, "_self_attention_layer", ATTENTION_VARIABLES,
                                                  "MultiHeadAttention", attention_config, [x, x, *mask],
                                                  [shape, shape] + [None] * len(mask), options))

        def feed_forward(x):
            made = DENSE.from_keras(sublayer(
                layer, "_feedforward_intermediate_dense", DENSE_VARIABLES, "Dense",
                {"units": wide[-1], "activation": config.get("activation", "relu")}, [x], [shape]))
            return made + DENSE.from_keras(sublayer(
                layer, "_feedforward_output_dense", DENSE_VARIABLES, "Dense", {"units": features},
                [made[-1].outputs[0]], [wide]))

        first = bool(config.get("normalize_first"))
        nodes += residual(layer.inputs[0], f"{name}.add1", lambda x: norm("_self_attention_layer_norm", x), attention,
                          first)
        nodes += residual(nodes[-1].outputs[0], f"{name}.add2", lambda x: norm("_feedforward_layer_norm", x),
                          feed_forward, first)
        nodes[-1].outputs = list(layer.outputs)
        return nodes


def residual(x, add: str, norm, build, normalize_first: bool) -> list:
    """The nodes of ``x + build(norm(x))`` (``normalize_first``), else of ``norm(x + build(x))``: a transformer
    block's half, its Add named ``add`` (output ``<add>/out``). ``norm`` and ``build`` give a value's nodes."""
    made = norm(x) if normalize_first else []
    made += build(made[-1].outputs[0] if made else x)
    made.append(OPS["add"].node(add, [x, made[-1].outputs[0]], [f"{add}/out"]))
    return made + (norm(made[-1].outputs[0]) if not normalize_first else [])


def _position_rows(layer, table, steps: int):
    """The first ``steps`` rows of a position table of ``sequence_length`` rows."""
    if table.shape[0] < steps:
        raise ShapeMismatch(f"layer '{layer.name}': {steps} steps, but its position table has {table.shape[0]} rows")
    return table[:steps]


class TokenAndPositionEmbedding(KerasReader):
    """Token ids -> their Embedding rows plus the first T rows of the position table."""

    input_kind = views.VIEW_FREE

    def keras_weight_names(self, config):
        return ["position_embedding/0", "token_embedding/0"]

    def keras_blocker(self, config):
        problems = [f"{key}={config[key]!r}" for key, fine in (("mask_zero", False), ("tie_weights", True))
                    if config.get(key, fine) != fine]
        return ", ".join(problems) + " not converted" if problems else None

    def from_keras(self, layer):
        shape = layer.input_shapes[0]
        if shape is None or len(shape) != 2 or shape[1] is None:
            raise Unsupported(f"layer '{layer.name}' ({layer.class_name}): takes (batch, steps) token ids of a fixed "
                              f"length (give --input-shape T); found shape {shape}")
        tokens = f"{layer.name}.token_embedding/out"
        table = layer.weights["token_embedding/0"]
        return [EMBEDDING.node(f"{layer.name}.token_embedding", layer.inputs, [tokens], table),
                POSITION_EMBEDDING.node(layer.name, [tokens], layer.outputs,
                                        _position_rows(layer, layer.weights["position_embedding/0"], int(shape[1])))]


class PositionsAdded(KerasReader):
    """The chain ``Add([x, PositionEmbedding(x), *rest])``: inputs ``[x, *rest]``, config the PositionEmbedding's and
    ``add``, the Add's name (whose output it gives)."""

    input_kind = views.VIEW_FREE

    def keras_weight_names(self, config):
        return ["embeddings"]

    def from_keras(self, layer):
        add, steps = layer.config["add"], _steps(layer)
        table = _position_rows(layer, layer.weights["embeddings"], steps)
        if len(layer.inputs) == 1:
            return [POSITION_EMBEDDING.node(add, layer.inputs, layer.outputs, table)]
        positioned = f"{add}.positions/out"
        return [POSITION_EMBEDDING.node(f"{add}.positions", layer.inputs[:1], [positioned], table),
                OPS["add"].node(add, [positioned, *layer.inputs[1:]], layer.outputs)]


register_keras("keras_hub>TransformerEncoder", TransformerLayer(decoder=False))
register_keras("keras_hub>TransformerDecoder", TransformerLayer(decoder=True))
register_keras("keras_hub>TokenAndPositionEmbedding", TokenAndPositionEmbedding())
register_keras(POSITIONS_ADDED, PositionsAdded())
