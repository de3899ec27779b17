"""The ATen ops torch.export records, spelled as the torch functions the layer readers read (one row an op).

ATen's argument orders differ from the functions': ``aten.batch_norm`` takes the weight before the running
statistics, ``aten.slice`` is ``x[..., start:end:step]`` on one axis. Each row says which function an op is and
how its arguments are arranged. ``SAME`` marks ops that give their input (copies and views for memory layout),
``DROPPED`` the runtime assertions torch.export adds. An op with no row stays an ATen call, which the reader
names when it refuses it.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Callable

from ...errors import Unsupported

SAME = object()
DROPPED = object()
END = 2 ** 62  # an ATen slice's end at or past this is "to the end"


@dataclass(frozen=True)
class Spelling:
    target: object  # a torch function, or the name of a tensor method
    arrange: Callable = lambda args, kwargs: (args, kwargs)
    gives_input: Callable = lambda args: False  # arguments for which the op gives its input (a whole slice)
    pair: bool = False  # ATen gives (result, indices) where the function gives the result


    def emit(self, graph, args, kwargs):
        """The new graph's node for the op, or its input where the op gives that."""
        if self.gives_input(args):
            return args[0]
        args, kwargs = self.arrange(tuple(args), dict(kwargs))
        if isinstance(self.target, str):
            return graph.call_method(self.target, args, kwargs)
        created = graph.call_function(self.target, args, kwargs)
        return FirstOfPair(created) if self.pair else created


@dataclass(frozen=True)
class FirstOfPair:
    """An ATen (result, indices) pair of which only the result is read: ``pair[0]`` is ``first``."""

    first: object


def _first(count: int):
    """The first ``count`` positional arguments, without keywords (ATen's extra flags: dtype, cudnn_enable)."""
    return lambda args, kwargs: (args[:count], {})


def _binary(args, kwargs):
    if kwargs.get("alpha", 1) != 1:  # torch.add(a, b, alpha=2)
        raise Unsupported(f"an add or subtract with alpha={kwargs['alpha']} is not converted")
    return args[:2], {}


def _spread(args, kwargs):
    """``x.reshape(*sizes)``, ``x.permute(*dims)``, ``x.expand(*sizes)``: ATen's list as the method's arguments."""
    return (args[0], *args[1]), {}


def _batch_norm(args, kwargs):
    x, weight, bias, mean, variance, training, momentum, eps = args[:8]
    return (x, mean, variance, weight, bias, training, momentum, eps), {}


def _index(dim: int, part):
    """The index of ``part`` on axis ``dim`` (counted from the end when negative), as Python spells it:
    ``x[-1]``, ``x[:, 0]``, ``x[..., 1:]``."""
    if dim == 0:
        return part
    if dim > 0:
        return (slice(None),) * dim + (part,)
    return (Ellipsis, part) + (slice(None),) * (-dim - 1)


def _select(args, kwargs):
    x, dim, index = args
    return (x, _index(dim, index)), {}


def _slice(args, kwargs):
    x, dim, start, end, step = (*args, *[None] * (5 - len(args)))
    end = None if end is not None and not hasattr(end, "op") and end >= END else end
    return (x, _index(dim or 0, slice(start or None, end, step if step != 1 else None))), {}


def _whole_slice(args) -> bool:
    start, end, step = (*args[2:], None, None, None)[:3]
    return start in (0, None) and (end is None or (not hasattr(end, "op") and end >= END)) and step in (1, None)


def _swapped(args, kwargs):
    return (args[1], args[0]), {}


def _interpolate(mode: str):
    def arrange(args, kwargs):
        x, size, *rest = args
        align = rest[0] if mode != "nearest" and rest else None
        scale = rest[-1] if rest else None
        options = {"size": size, "scale_factor": scale, "mode": mode}
        if align is not None:
            options["align_corners"] = align
        return (x,), options
    return arrange


def _elu(args, kwargs):
    return args[:2], {}


def _constant_pad(args, kwargs):
    x, pad, value = (*args, 0.0)[:3]
    return (x, pad, "constant", value), {}


def _mean(args, kwargs):
    x, dims, keepdim = (*args, False)[:3]
    return (x, dims, keepdim), {}


def _table():
    import torch
    import torch.nn.functional as F

    spell = Spelling
    rows = {
        "add.Tensor": spell(operator.add, _binary), "add_.Tensor": spell(operator.add, _binary),
        "mul_.Tensor": spell(operator.mul, _first(2)), "add.Scalar": spell(operator.add, _binary),
        "sub.Tensor": spell(operator.sub, _binary), "sub.Scalar": spell(operator.sub, _binary),
        "mul.Tensor": spell(operator.mul, _first(2)), "mul.Scalar": spell(operator.mul, _first(2)),
        "div.Tensor": spell(operator.truediv, _first(2)), "div.Scalar": spell(operator.truediv, _first(2)),
        "relu.default": spell(torch.relu), "relu_.default": spell(torch.relu),
        "sigmoid.default": spell(torch.sigmoid), "tanh.default": spell(torch.tanh),
        "gelu.default": spell(F.gelu), "silu.default": spell(F.silu), "silu_.default": spell(F.silu),
        "hardswish.default": spell(F.hardswish), "hardswish_.default": spell(F.hardswish),
        "hardsigmoid.default": spell(F.hardsigmoid), "hardtanh.default": spell(F.hardtanh),
        "hardtanh_.default": spell(F.hardtanh), "leaky_relu.default": spell(F.leaky_relu),
        "elu.default": spell(F.elu, _elu), "softplus.default": spell(F.softplus), "mish.default": spell(F.mish),
        "softmax.int": spell(torch.softmax, _first(2)), "_softmax.default": spell(torch.softmax, _first(2)),
        "log_softmax.int": spell(torch.log_softmax, _first(2)),
        "view.default": spell("reshape", _spread), "reshape.default": spell("reshape", _spread),
        "_unsafe_view.default": spell("reshape", _spread),
        "permute.default": spell("permute", _spread), "transpose.int": spell("transpose"),
        "flatten.using_ints": spell(torch.flatten), "cat.default": spell(torch.cat),
        "concat.default": spell(torch.cat),
        "mean.dim": spell(torch.mean, _mean), "amax.default": spell(torch.amax),
        "clamp.default": spell(torch.clamp), "clip.default": spell(torch.clamp),
        "maximum.default": spell(torch.maximum), "minimum.default": spell(torch.minimum),
        "adaptive_avg_pool1d.default": spell(F.adaptive_avg_pool1d),
        "adaptive_avg_pool2d.default": spell(F.adaptive_avg_pool2d),
        "adaptive_avg_pool3d.default": spell(F.adaptive_avg_pool3d),
        "max_pool1d.default": spell(F.max_pool1d), "max_pool2d.default": spell(F.max_pool2d),
        "max_pool3d.default": spell(F.max_pool3d),
        "avg_pool1d.default": spell(torch.avg_pool1d), "avg_pool2d.default": spell(torch._C._nn.avg_pool2d),
        "avg_pool3d.default": spell(torch._C._nn.avg_pool3d),
        "conv1d.default": spell(torch.conv1d), "conv2d.default": spell(torch.conv2d),
        "conv3d.default": spell(torch.conv3d), "linear.default": spell(torch._C._nn.linear),
        "layer_norm.default": spell(F.layer_norm, _first(5)), "group_norm.default": spell(F.group_norm, _first(5)),
        "batch_norm.default": spell(F.batch_norm, _batch_norm),
        "dropout.default": spell(F.dropout, _first(3)), "feature_dropout.default": spell(F.dropout2d, _first(3)),
        "alpha_dropout.default": spell(F.alpha_dropout, _first(3)),
        "sym_size.int": spell("size"),
        "select.int": spell(operator.getitem, _select), "slice.Tensor": spell(operator.getitem, _slice, _whole_slice),
        "chunk.default": spell(torch.chunk), "split.Tensor": spell(torch.functional.split),
        "split_with_sizes.default": spell(torch.functional.split),
        "relu6.default": spell(F.relu6), "selu.default": spell(torch.selu),
        "rsub.Scalar": spell(operator.sub, _swapped), "stack.default": spell(torch.stack),
        "expand.default": spell("expand", _spread), "unsqueeze.default": spell("unsqueeze"),
        "ne.Scalar": spell("ne"),
        "upsample_nearest2d.vec": spell(F.interpolate, _interpolate("nearest")),
        "upsample_bilinear2d.vec": spell(F.interpolate, _interpolate("bilinear")),
        "adaptive_max_pool1d.default": spell(F.adaptive_max_pool1d, pair=True),
        "adaptive_max_pool2d.default": spell(F.adaptive_max_pool2d, pair=True),
        "adaptive_max_pool3d.default": spell(F.adaptive_max_pool3d, pair=True),
        "max_pool2d_with_indices.default": spell(F.max_pool2d, pair=True),
        "pad.default": spell(F.pad), "constant_pad_nd.default": spell(F.pad, _constant_pad),
    }
    for name in ("contiguous.default", "clone.default", "alias.default", "detach.default", "detach_.default",
                 "lift_fresh_copy.default"):
        rows[name] = SAME
    for name in ("_assert_tensor_metadata.default", "_assert_scalar.default", "sym_constrain_range_for_size.default",
                 "_assert_async.msg", "sym_constrain_range.default"):
        rows[name] = DROPPED
    return rows


_ROWS = None

# ATen ops whose result shares its input's memory: an in-place write to the input changes them too
VIEWS = {"view", "_unsafe_view", "reshape", "slice", "select", "transpose", "permute", "expand", "unsqueeze",
         "squeeze", "flatten", "alias", "unflatten", "t", "narrow", "split", "chunk", "unbind", "as_strided",
         "diagonal", "detach", "contiguous"}


def is_view(target) -> bool:
    name = str(target)
    return not name.startswith("aten.") or name.split(".")[1] in VIEWS  # getitem of a split is a view too


CASTS = ("aten.to.dtype", "aten.to.dtype_layout", "aten._to_copy.default")


def keeps_dtype(node) -> bool:
    """A cast to the dtype its input has already (LlamaRMSNorm's ``x.to(torch.float32)`` on float32): torch gives the
    input itself, which later reads of the same tensor then go through."""
    if str(node.target) not in CASTS or not node.args or not hasattr(node.args[0], "meta"):
        return False
    given, made = node.args[0].meta.get("val"), node.meta.get("val")
    return getattr(given, "dtype", None) is not None and given.dtype == getattr(made, "dtype", None) and \
        given.device == made.device


def spelling(target):
    """The row for an export graph's call target: a Spelling, SAME, DROPPED, or None (kept as it is)."""
    global _ROWS
    if _ROWS is None:
        _ROWS = _table()
    name = str(target)
    if not name.startswith("aten."):
        return None
    return _ROWS.get(name[len("aten."):])
