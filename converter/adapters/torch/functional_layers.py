"""Function calls that are layers: ``F.batch_norm(x, self.running_mean, ...)`` computes what ``nn.BatchNorm2d``
computes with those tensors, so it is read as that module, through the module's reader (one reader per op).

Model libraries write layers this way (timm's ``BatchNormAct2d``, torchvision's ``LayerNorm2d``, Inception's
``F.avg_pool2d``). The module is built on the meta device from the call's arguments; its weights are the
parameters and buffers the call names (fx ``get_attr`` nodes), taken from the state_dict under their own keys.
A weight computed at run time (``self.weight * 2``, weight standardization) is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ...errors import Unsupported
from ...frameworks import require


@dataclass(frozen=True)
class FunctionalLayer:
    """``signature``: the call's argument names after the input, in order; ``weights``: those that are the
    equivalent module's parameters or buffers (of the same name); ``build(arguments, input shape)``: that module,
    or None for a layer whose reader needs only its weights (``helper``: the wconv helper class it reads as)."""

    signature: tuple
    weights: tuple
    build: Callable | None
    defaults: dict
    counters: tuple = ()  # buffers of the weights' owner that only training reads (BatchNorm's batch count)
    bind: Callable | None = None  # fx node -> (input, arguments) when the input is not the first argument, or None
    helper: str | None = None
    named_by_weight: bool = False  # a bare parameter (a ViT's class token): the layer is named after its key


def _batch_norm(a, shape):
    if a["training"]:
        raise Unsupported("batch_norm with training=True normalizes with batch statistics; no equivalent")
    classes = {2: "BatchNorm1d", 3: "BatchNorm1d", 4: "BatchNorm2d", 5: "BatchNorm3d"}
    channels = a["running_mean"].shape[0] if a["running_mean"] is not None else shape[1]
    return _nn(classes[len(shape)], channels, eps=a["eps"], momentum=a["momentum"], affine=a["weight"] is not None,
               track_running_stats=a["running_mean"] is not None)


def _layer_norm(a, shape):
    return _nn("LayerNorm", tuple(a["normalized_shape"]), eps=a["eps"], elementwise_affine=a["weight"] is not None,
               bias=a["bias"] is not None)


def _group_norm(a, shape):
    return _nn("GroupNorm", a["num_groups"], shape[1], eps=a["eps"], affine=a["weight"] is not None)


def _linear(a, shape):
    out_features, in_features = a["weight"].shape
    return _nn("Linear", in_features, out_features, bias=a["bias"] is not None)


def _conv(rank: int):
    def build(a, shape):
        out_channels, group_width, *kernel = a["weight"].shape
        return _nn(f"Conv{rank}d", group_width * a["groups"], out_channels, tuple(kernel), stride=a["stride"],
                   padding=a["padding"], dilation=a["dilation"], groups=a["groups"], bias=a["bias"] is not None)
    return build


def _avg_pool(rank: int):
    def build(a, shape):
        if a["divisor_override"] is not None:
            raise Unsupported("avg_pool with divisor_override has no equivalent")
        return _nn(f"AvgPool{rank}d", a["kernel_size"], a["stride"] or None, a["padding"], a["ceil_mode"],
                   a["count_include_pad"])
    return build


def _max_pool(rank: int):
    def build(a, shape):
        return _nn(f"MaxPool{rank}d", a["kernel_size"], a["stride"] or None, a["padding"], a["dilation"],
                   a["return_indices"], a["ceil_mode"])
    return build


def _bind_scale(fx_node):
    """``x * p``, ``p * x``, ``x.mul(p)``, ``torch.mul(x, p)`` with ``p`` a parameter (maybe reshaped): (x, p)."""
    if len(fx_node.args) != 2 or fx_node.kwargs:
        return None
    first, second = fx_node.args
    for value, weight in ((first, second), (second, first)):
        if hasattr(value, "op") and parameter(value) is None and parameter(weight) is not None:
            return value, {"weight": weight}
    return None


def _bind_tokens(fx_node):
    """``torch.cat([p.expand(n, -1, -1), ..., x], dim=1)`` with each ``p`` a parameter: (x, {tokens_k: p})."""
    items = fx_node.args[0] if fx_node.args else fx_node.kwargs.get("tensors")
    dim = fx_node.args[1] if len(fx_node.args) > 1 else fx_node.kwargs.get("dim", 0)
    if not isinstance(items, (list, tuple)) or len(items) < 2 or dim != 1 or len(items) > len(TOKEN_ARGUMENTS) + 1:
        return None
    *tokens, value = items
    if not hasattr(value, "op") or parameter(value) is not None or \
            not all(_is_expand(item) and parameter(item) is not None for item in tokens):
        return None
    return value, dict(zip(TOKEN_ARGUMENTS, tokens))


def _bind_table(fx_node):
    """``x + p`` or ``p + x`` with ``p`` a parameter: (x, {"table": p})."""
    if len(fx_node.args) != 2 or fx_node.kwargs:
        return None
    first, second = fx_node.args
    for value, weight in ((first, second), (second, first)):
        if hasattr(value, "op") and parameter(value) is None and getattr(weight, "op", None) == "get_attr":
            return value, {"table": weight}
    return None


TOKEN_ARGUMENTS = ("tokens", "tokens_1", "tokens_2")  # a class token, a distillation token, register tokens


def parameter(value):
    """The get_attr node when ``value`` is a parameter or buffer, directly, through a reshape/view with constant
    sizes (``self.gamma.reshape(1, -1, 1, 1)``), or expanded over the batch (``self.cls_token.expand(n, -1, -1)``);
    else None."""
    if getattr(value, "op", None) == "get_attr":
        return value
    if getattr(value, "op", None) == "call_method" and not value.kwargs and \
            getattr(value.args[0], "op", None) == "get_attr" and \
            (value.target in ("reshape", "view") and _sizes(value) is not None or _is_expand(value)):
        return value.args[0]
    return None


def _is_expand(value) -> bool:
    """``p.expand(n, -1, ...)``: only the first axis (the batch) grows; its size may be computed."""
    if getattr(value, "op", None) != "call_method" or value.target != "expand" or value.kwargs:
        return False
    sizes = _size_arguments(value)
    return len(sizes) >= 2 and all(size == -1 for size in sizes[1:])


def sizes_an_expand(fx_node) -> bool:
    """Whether ``fx_node`` (``x.shape``, ``x.shape[0]``) is used only to give a parameter's expand its batch size:
    it is read with that parameter."""
    if fx_node.op not in ("call_function", "call_method") or not fx_node.users:
        return False
    return all(_is_expand(user) and parameter(user) is not None and fx_node in user.args[1:2]
               or sizes_an_expand(user) for user in fx_node.users)


def _sizes(reshape) -> tuple | None:
    sizes = _size_arguments(reshape)
    return sizes if all(isinstance(size, int) for size in sizes) else None


def _size_arguments(call) -> tuple:
    """A reshape's or an expand's sizes, given one by one (``x.view(1, -1)``) or as one tuple (``x.view((1, -1))``)."""
    sizes = call.args[1:]
    return tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else tuple(sizes)


def _nn(class_name: str, *args, **kwargs):
    torch = require("torch")
    with torch.device("meta"):
        return getattr(torch.nn, class_name)(*args, **kwargs)


_CONV = ("weight", "bias", "stride", "padding", "dilation", "groups")
_CONV_DEFAULTS = {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1}
_AVG = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")
_AVG_DEFAULTS = {"stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True, "divisor_override": None}
_MAX = ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
_MAX_DEFAULTS = {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False, "return_indices": False}

FUNCTIONAL_LAYERS: dict[str, FunctionalLayer] = {
    "torch.nn.functional.batch_norm": FunctionalLayer(
        ("running_mean", "running_var", "weight", "bias", "training", "momentum", "eps"),
        ("running_mean", "running_var", "weight", "bias"),
        _batch_norm, {"weight": None, "bias": None, "training": False, "momentum": 0.1, "eps": 1e-5},
        ("num_batches_tracked",)),
    "torch.nn.functional.layer_norm": FunctionalLayer(
        ("normalized_shape", "weight", "bias", "eps"), ("weight", "bias"), _layer_norm,
        {"weight": None, "bias": None, "eps": 1e-5}),
    "torch.nn.functional.group_norm": FunctionalLayer(
        ("num_groups", "weight", "bias", "eps"), ("weight", "bias"), _group_norm,
        {"weight": None, "bias": None, "eps": 1e-5}),
    "torch._C._nn.linear": FunctionalLayer(("weight", "bias"), ("weight", "bias"), _linear,
                                           {"bias": None}),
    **{f"torch.conv{rank}d": FunctionalLayer(_CONV, ("weight", "bias"), _conv(rank), _CONV_DEFAULTS)
       for rank in (1, 2, 3)},
    **{f"torch._C._nn.avg_pool{rank}d": FunctionalLayer(_AVG, (), _avg_pool(rank), _AVG_DEFAULTS) for rank in (2, 3)},
    "torch.avg_pool1d": FunctionalLayer(_AVG[:-1], (), _avg_pool(1), {**_AVG_DEFAULTS}),
    **{f"torch.nn.functional.max_pool{rank}d": FunctionalLayer(_MAX, (), _max_pool(rank), _MAX_DEFAULTS)
       for rank in (1, 2, 3)},
    **{name: FunctionalLayer(("weight",), ("weight",), None, {}, bind=_bind_scale, helper="LayerScale")
       for name in ("operator.mul", "torch.mul", "mul")},
    **{name: FunctionalLayer(TOKEN_ARGUMENTS, TOKEN_ARGUMENTS, None, {}, bind=_bind_tokens, helper="ClassTokens",
                             named_by_weight=True) for name in ("torch.cat", "torch.concat")},
    **{name: FunctionalLayer(("table",), ("table",), None, {}, bind=_bind_table, helper="PositionEmbedding",
                             named_by_weight=True) for name in ("operator.add", "torch.add", "add")},
}


def bound(fx_node, layer: FunctionalLayer):
    """(the input node, the call's arguments by name) or None when the call is not this layer (``x * y``)."""
    if layer.bind is not None:
        return layer.bind(fx_node)
    return fx_node.args[0], arguments(fx_node, layer)


def arguments(fx_node, layer: FunctionalLayer) -> dict:
    """The call's arguments by name (the input excluded), defaults filled in."""
    given = dict(zip(layer.signature, fx_node.args[1:]))
    given.update({key: value for key, value in fx_node.kwargs.items() if key in layer.signature})
    unknown = sorted(set(fx_node.kwargs) - set(layer.signature) - {"input"})
    if unknown or len(fx_node.args) > len(layer.signature) + 1:
        raise Unsupported(f"'{fx_node.name}': arguments {unknown or fx_node.args} are not understood")
    missing = [key for key in layer.signature if key not in given and key not in layer.defaults]
    if missing:
        raise Unsupported(f"'{fx_node.name}': missing arguments {missing}")
    return {**layer.defaults, **given}


def weight_keys(fx_node, layer: FunctionalLayer) -> dict:
    """Module parameter name -> state_dict key, for the weights the call names. A weight that is not a plain
    parameter or buffer of the model (it is computed) is refused."""
    _, named = bound(fx_node, layer)
    keys = {}
    for argument in layer.weights:
        value = named.get(argument)
        if value is None:
            continue
        if parameter(value) is None:
            raise Unsupported(f"'{fx_node.name}': its {argument} is computed in forward(), not a parameter; "
                              "not converted")
        keys[argument] = parameter(value).target
    return keys


def weight_arrays(fx_node, layer: FunctionalLayer, state: dict) -> dict:
    """Module parameter name -> the array the call uses (the state_dict's, reshaped as the call reshapes it)."""
    _, named = bound(fx_node, layer)
    arrays = {}
    for argument, key in weight_keys(fx_node, layer).items():
        value = named[argument]
        reshaped = value.op == "call_method" and value.target in ("reshape", "view")
        arrays[argument] = state[key].reshape(_sizes(value)) if reshaped else state[key]
    return arrays


def build_module(fx_node, layer: FunctionalLayer, weights: dict, input_shape):
    """The nn module equal to the call, on the meta device (shapes only: its ``weights``, from weight_arrays, come
    from the file)."""
    if layer.build is None:
        return None
    _, named = bound(fx_node, layer)
    named = {**named, **weights}  # the module's parameters have the arguments' names
    try:
        return layer.build(named, input_shape)
    except Unsupported as error:
        raise Unsupported(f"'{fx_node.name}': {error}") from None
    except (TypeError, ValueError) as error:
        raise Unsupported(f"'{fx_node.name}': its arguments do not describe a layer ({error})") from None
