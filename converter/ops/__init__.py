"""The op table: importing this package registers every op family."""

from . import (  # noqa: F401  (registration side effects)
    activations, adaptive_pool, affine, attention, batchnorm, clip, conv, conv_transpose, crop, dense, dropout,
    embedding, flatten, groupnorm, keras_hub, keras_hub_vit, layer_scale, layernorm, merge, pad, padding_mask, pool,
    prelu, recurrent, recurrent_keras, rmsnorm, reshape, select, split, token_positions, tokens, transformer, transpose,
    upsample,
)
from .base import FRAMEWORKS, Convention, KerasLayer, KerasSpec, OpDef
from .registry import KERAS_CLASSES, ONNX_TYPES, OPS, TORCH_FUNCTIONS, TORCH_MODULES

__all__ = [
    "FRAMEWORKS", "Convention", "KerasLayer", "KerasSpec", "OpDef",
    "KERAS_CLASSES", "ONNX_TYPES", "OPS", "TORCH_FUNCTIONS", "TORCH_MODULES",
]
