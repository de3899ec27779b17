"""keras-hub's ViT layers, read as the ops they compute (``--module keras_hub.models:ViTBackbone``), as
keras_hub.py reads its text layers: each sub-layer by its own reader, its weights checked against their paths.

- ``ViTPatchingAndEmbedding``: the image's patches as a sequence, the class token first, the position table added.
- ``ViTEncoder``: pre-norm blocks (attention, then an MLP of two Dense layers with the exact GELU), then a norm.
"""

from __future__ import annotations

from .. import relayout, views
from ..errors import Unsupported
from .attention import ATTENTION
from .base import KerasReader, expect_dim
from .conv import CONVS
from .dense import DENSE
from .keras_hub import (ATTENTION_VARIABLES, DENSE_VARIABLES, NORM_VARIABLES, node_name, residual, stored_names,
                        sublayer, unknown_keys)
from .layernorm import LAYERNORM
from .registry import register_keras
from .reshape import RESHAPE
from .tokens import CLASS_TOKENS, POSITION_EMBEDDING


LAYER_CONFIG = {"name", "trainable", "dtype"}
PATCHING_CONFIG = LAYER_CONFIG | {"image_size", "patch_size", "hidden_dim", "num_channels", "num_patches",
                                  "num_positions", "use_class_token", "use_patch_bias", "data_format"}
ENCODER_CONFIG = LAYER_CONFIG | {"num_layers", "num_heads", "hidden_dim", "mlp_dim", "use_mha_bias", "use_mlp_bias",
                                 "dropout_rate", "attention_dropout", "layer_norm_epsilon"}


class ViTPatchingAndEmbedding(KerasReader):
    """An image (channels last) -> its patches as a sequence: a Conv2D of the patch size and stride, its (h, w)
    positions in row-major order as steps (Keras reshapes the channels-last map), the class token put first, then
    the position table added (one row per step, every row read)."""

    input_kind = views.CHANNELS_FIRST

    def keras_weight_names(self, config):
        return (["class_token"] if config.get("use_class_token", True) else []) + stored_names(
            {"patch_embedding": DENSE_VARIABLES if config.get("use_patch_bias", True) else {"kernel": "0"},
             "position_embedding": {"table": "0"}})

    def keras_blocker(self, config):
        problems = unknown_keys(config, PATCHING_CONFIG)
        if config.get("data_format", "channels_last") != "channels_last":
            problems.append(f"data_format={config['data_format']!r}")
        return ", ".join(problems) + " not converted" if problems else None

    def from_keras(self, layer):
        config, name, shape = layer.config, layer.name, layer.input_shapes[0]
        if shape is None or None in shape[1:]:
            raise Unsupported(f"layer '{name}' ({layer.class_name}): needs a fully known image size")
        patch, features = list(config["patch_size"]), int(config["hidden_dim"])
        conv = sublayer(layer, "patch_embedding", DENSE_VARIABLES if config.get("use_patch_bias", True) else
                         {"kernel": "0"}, "Conv2D", {"filters": features, "kernel_size": patch, "strides": patch,
                                                     "padding": "valid"}, layer.inputs, [shape])
        nodes = CONVS[2].from_keras(conv)
        patches = nodes[-1].outputs[0]
        mapped = CONVS[2].output_shapes(nodes[-1], [shape])[0]  # (n, f, h, w)
        layouts = {patches: CONVS[2].output_layouts(nodes[-1], layer.input_layouts, [mapped])[0]}
        held = [patches]  # Keras reshapes the map as it holds it, (n, h, w, f): the relayout to that order first
        nodes += relayout.conform(held, views.VIEW_FREE, layouts, "keras", {})
        steps = int(mapped[2] * mapped[3])
        nodes.append(RESHAPE.node(f"{name}.sequence", held, [f"{name}.sequence/out"],
                                  (mapped[0], mapped[2], mapped[3], features), [steps, features]))
        if config.get("use_class_token", True):
            tokens = layer.weights["class_token"].reshape(-1, features)
            nodes.append(CLASS_TOKENS.node(f"{name}.class_token", nodes[-1].outputs, [f"{name}.class_token/out"],
                                           tokens))
            steps += len(tokens)
        table = layer.weights["position_embedding/0"]
        expect_dim(name, "position table rows", steps, table.shape[0])
        return nodes + [POSITION_EMBEDDING.node(f"{name}.position_embedding", nodes[-1].outputs, layer.outputs, table)]


def _vit_block(index: int) -> str:
    return "encoder_layers/vi_t_encoder_block" + (f"_{index}" if index else "")


class ViTEncoder(KerasReader):
    """Blocks of ``x + attention(norm(x))`` then ``x + mlp(norm(x))`` (the MLP: Dense with the exact GELU, Dense),
    then a LayerNormalization."""

    input_kind = views.FEATURES_LAST

    def _sublayers(self, config) -> dict:
        mha = ATTENTION_VARIABLES if config.get("use_mha_bias", True) else \
            {key: path for key, path in ATTENTION_VARIABLES.items() if key.endswith("kernel")}
        mlp = DENSE_VARIABLES if config.get("use_mlp_bias", True) else {"kernel": "0"}
        found = {"layer_norm": NORM_VARIABLES}
        for index in range(int(config["num_layers"])):
            block = _vit_block(index)
            found |= {f"{block}/layer_norm_1": NORM_VARIABLES, f"{block}/layer_norm_2": NORM_VARIABLES,
                      f"{block}/mha": mha, f"{block}/mlp/dense_1": mlp, f"{block}/mlp/dense_2": mlp}
        return found

    def keras_weight_names(self, config):
        return stored_names(self._sublayers(config))

    def keras_blocker(self, config):
        problems = unknown_keys(config, ENCODER_CONFIG)
        return ", ".join(problems) + " not converted" if problems else None

    def from_keras(self, layer):
        config, shape = layer.config, layer.input_shapes[0]
        variables = self._sublayers(config)
        heads, features = int(config["num_heads"]), int(config["hidden_dim"])
        epsilon = config.get("layer_norm_epsilon", 1e-6)
        wide = (*shape[:-1], int(config["mlp_dim"])) if shape else None

        def read(op, path, class_name, sub_config, x, x_shape, inputs=None):
            inputs = inputs or [x]
            return op.from_keras(sublayer(layer, path, variables[path], class_name, sub_config, inputs,
                                          [x_shape] * len(inputs)))

        attention = {"num_heads": heads, "key_dim": features // heads, "use_bias": config.get("use_mha_bias", True),
                     "dropout": config.get("attention_dropout", 0)}
        nodes, x = [], layer.inputs[0]
        for index in range(int(config["num_layers"])):
            block = _vit_block(index)

            def norm(path, value):
                return read(LAYERNORM, f"{block}/{path}", "LayerNormalization", {"epsilon": epsilon}, value, shape)

            def attend(value):
                return read(ATTENTION, f"{block}/mha", "MultiHeadAttention", attention, value, shape,
                            inputs=[value, value])

            def mlp(value):
                made = read(DENSE, f"{block}/mlp/dense_1", "Dense", {"units": wide[-1], "activation": "gelu"}, value,
                            shape)
                return made + read(DENSE, f"{block}/mlp/dense_2", "Dense", {"units": features}, made[-1].outputs[0],
                                   wide)

            nodes += residual(x, node_name(layer, f"{block}/add1"), lambda value: norm("layer_norm_1", value), attend,
                              True)
            nodes += residual(nodes[-1].outputs[0], node_name(layer, f"{block}/add2"),
                              lambda value: norm("layer_norm_2", value), mlp, True)
            x = nodes[-1].outputs[0]
        nodes += read(LAYERNORM, "layer_norm", "LayerNormalization", {"epsilon": epsilon}, x, shape)
        nodes[-1].outputs = list(layer.outputs)
        return nodes


register_keras("ViTPatchingAndEmbedding", ViTPatchingAndEmbedding())
register_keras("ViTEncoder", ViTEncoder())
