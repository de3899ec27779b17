"""torch's ``nn.TransformerEncoderLayer`` and ``nn.TransformerEncoder``, read as the ops they compute.

The torch reader keeps these modules whole (leaf modules), so it expands them into attention, Add, LayerNorm, Linear
and the activation, each node named after the submodule it comes from (``encoder.layers.0.self_attn``),
with the same weights. In eval mode torch may run them through its fused fast path, which computes
the same function. Written back, they are plain layers: a torch port gets the expanded form.
"""

from __future__ import annotations

from ..errors import Unsupported
from .activations import ACTIVATIONS
from .attention import ATTENTION
from .dense import DENSE
from .layernorm import LAYERNORM
from .registry import OPS, register_torch_module

ACTIVATION_NAMES = {"relu": "relu", "gelu": "gelu", "ReLU": "relu", "GELU": "gelu"}


def _sublayer(layer, path: str, inputs: list[str], outputs: list[str]):
    """The TorchLayer of one submodule (``path`` under ``layer``), its weights keyed as the submodule keys them."""
    from dataclasses import replace

    prefix = f"{path}."
    module = layer.module.get_submodule(path)
    weights = {key[len(prefix):]: value for key, value in layer.weights.items() if key.startswith(prefix)}
    return replace(layer, class_name=type(module).__name__, name=f"{layer.name}.{path}", module=module,
                   weights=weights, inputs=inputs, outputs=outputs, input_shapes=[None] * len(inputs), options={})


def _activation(module) -> str:
    activation = module.activation
    name = getattr(activation, "__name__", type(activation).__name__)
    if name not in ACTIVATION_NAMES:
        raise Unsupported(f"TransformerEncoderLayer activation {name!r} is not converted (relu and gelu are)")
    return ACTIVATION_NAMES[name]


def encoder_layer(layer, source: str, output: str, prefix: str = "") -> list:
    """The nodes of one encoder layer at ``prefix`` (empty for the module itself) from ``source`` to ``output``."""
    module = layer.module.get_submodule(prefix[:-1]) if prefix else layer.module
    if not module.self_attn.batch_first:
        raise Unsupported(f"layer '{layer.name}' (TransformerEncoderLayer): batch_first=False not converted")
    name = f"{layer.name}.{prefix}" if prefix else f"{layer.name}."

    def value(part):
        return f"{name}{part}/out"

    def block(x, tag, build):  # x + block(norm(x)) with norm_first, else norm(x + block(x))
        norm = f"{prefix}norm{tag}"
        if module.norm_first:
            nodes = LAYERNORM.from_torch(_sublayer(layer, norm, [x], [value(norm)]))
            nodes += build(value(norm))
            return nodes + [OPS["add"].node(f"{name}add{tag}", [x, nodes[-1].outputs[0]], [value(f"add{tag}")])]
        nodes = build(x)
        nodes.append(OPS["add"].node(f"{name}add{tag}", [x, nodes[-1].outputs[0]], [value(f"add{tag}")]))
        return nodes + LAYERNORM.from_torch(_sublayer(layer, norm, [value(f"add{tag}")], [value(norm)]))

    def attention(x):
        return ATTENTION.from_torch(_sublayer(layer, f"{prefix}self_attn", [x, x, x], [value("self_attn")]))

    def feed_forward(x):
        nodes = DENSE.from_torch(_sublayer(layer, f"{prefix}linear1", [x], [value("linear1")]))
        nodes.append(ACTIVATIONS[_activation(module)].node(f"{name}activation", [value("linear1")],
                                                           [value("activation")]))
        return nodes + DENSE.from_torch(_sublayer(layer, f"{prefix}linear2", [value("activation")], [value("linear2")]))

    nodes = block(source, "1", attention)
    nodes += block(nodes[-1].outputs[0], "2", feed_forward)
    nodes[-1].outputs = [output]
    return nodes


def _refuse_masks(layer) -> None:
    if len(layer.inputs) != 1:
        raise Unsupported(f"layer '{layer.name}' ({layer.class_name}): called with a mask; masks are not converted")


def from_encoder_layer(layer):
    _refuse_masks(layer)
    return encoder_layer(layer, layer.inputs[0], layer.outputs[0])


def from_encoder(layer):
    _refuse_masks(layer)
    module, nodes, source = layer.module, [], layer.inputs[0]
    count = len(module.layers)
    for index in range(count):
        last = index == count - 1 and module.norm is None
        output = layer.outputs[0] if last else f"{layer.name}.layers.{index}/out"
        nodes += encoder_layer(layer, source, output, prefix=f"layers.{index}.")
        source = output
    if module.norm is not None:
        nodes += LAYERNORM.from_torch(_sublayer(layer, "norm", [source], layer.outputs))
    return nodes


register_torch_module("TransformerEncoderLayer", from_encoder_layer)
register_torch_module("TransformerEncoder", from_encoder)
