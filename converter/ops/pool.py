"""Max and average pooling 1D/2D/3D, and global pooling.

Keras' 'same' average pooling does not count the padding (torch count_include_pad=False,
ONNX count_include_pad=0); max pooling pads with -inf everywhere.
"""

from __future__ import annotations

from ..codetext import literal
from ..errors import Unsupported
from ..ir import Node
from . import padding
from .pad import neg_inf_pad
from .base import Convention, KerasSpec, OpDef
from .registry import register_keras, register_onnx, register_op, register_torch_function, register_torch_module
from .. import views

KINDS = {"max": ("MaxPooling", "MaxPool", "MaxPool"), "avg": ("AveragePooling", "AvgPool", "AveragePool")}


class Pool(OpDef):
    input_kind = views.CHANNELS_FIRST
    def __init__(self, kind: str, rank: int):
        self.kind, self.rank = kind, rank
        keras, torch, onnx = KINDS[kind]
        self.keras_class, self.torch_class, self.onnx_type = f"{keras}{rank}D", f"{torch}{rank}d", onnx
        self.name = f"{kind}_pool{rank}d"
        self.summary = f"{'Maximum' if kind == 'max' else 'Average'} over {rank}-D windows of each channel."
        count = {"count_include_pad": "'same' excludes the padding"} if kind == "avg" else {}
        self.conventions = {
            "keras": Convention((self.keras_class,), {}, {"padding": "'valid' or 'same' (TF)", **count}),
            "torch": Convention((self.torch_class,), {}, {"padding": "symmetric; asymmetric via F.pad",
                                                           **({"ceil_mode": "True: -inf end padding"}
                                                              if kind == "max" else {}),
                                                           **({"count_include_pad": "count_include_pad=True"}
                                                              if count else {})}),
            "onnx": Convention((onnx,), {}, {"padding": "pads",
                                             **({"ceil_mode": "1: -inf end padding"} if kind == "max" else {}),
                                             **({"count_include_pad": "count_include_pad=0"}
                                                                    if count else {})}),
        }

    def output_shapes(self, node, input_shapes):
        shape = input_shapes[0]
        if shape is None:
            return [None]
        if len(shape) != self.rank + 2:
            raise Unsupported(f"layer '{node.name}': {self.name} needs a rank-{self.rank + 2} input, found {shape}")
        a = node.attrs
        sizes = padding.output_sizes(padding.spatial(shape), a["kernel"], a["strides"], [1] * self.rank, a["pads"])
        return [(shape[0], shape[1], *sizes)]

    def node(self, name, inputs, outputs, input_shape, kernel, strides, pad_spec, count_include_pad,
             ceil_mode=False) -> Node:
        """``ceil_mode`` (max pooling): the partial windows at the end become explicit -inf padding."""
        kernel = padding.as_list(kernel, self.rank)
        strides = padding.as_list(strides if strides is not None else kernel, self.rank)
        sizes = padding.spatial(input_shape) if input_shape else [None] * self.rank
        pads = padding.resolve(name, pad_spec, sizes, kernel, strides, [1] * self.rank)
        if ceil_mode:
            if self.kind == "avg" and count_include_pad and any(pads):
                raise Unsupported(f"layer '{name}': average pooling with ceil_mode counts its padding {pads} but "
                                  "not the partial windows' overflow; no other framework divides so")
            pads = padding.ceil_mode_pads(name, sizes, kernel, strides, pads)
            count_include_pad = False  # torch never counts the partial windows' overflow, and there is no other pad
        attrs = {"kernel": kernel, "strides": strides, "pads": pads}
        if self.kind == "avg":
            attrs["count_include_pad"] = bool(count_include_pad) if any(pads) else False
        return Node(self.name, name, inputs, outputs, attrs=attrs)

    # -- Keras ------------------------------------------------------------------------
    def keras_weight_names(self, config):
        return []

    def from_keras(self, layer):
        config = layer.config
        shape = layer.input_shapes[0] if layer.input_shapes else None
        return [self.node(layer.name, layer.inputs, layer.outputs, shape, config.get("pool_size", 2),
                          config.get("strides"), config.get("padding", "valid"), False)]

    def to_keras(self, node, graph):
        a = node.attrs
        shape = graph.shape(node.inputs[0])
        name = padding.keras_name(a["pads"], padding.spatial(shape), a["kernel"], a["strides"], [1] * self.rank)
        config = {"pool_size": a["kernel"], "strides": a["strides"]}
        counted = self.kind == "avg" and a.get("count_include_pad") and any(a["pads"])
        if counted or name is None and self.kind == "max" and _non_negative(graph, node.inputs[0]):
            # Average pooling that counts its padding averages over zeros: ZeroPadding then 'valid' is exact
            # (Inception's F.avg_pool2d(x, 3, 1, 1)). For max pooling, zeros pad like -inf when every value is
            # >= 0 (torch ResNet's MaxPool2d(3, 2, padding=1) after ReLU).
            pre = KerasSpec(f"ZeroPadding{self.rank}D", {"padding": padding.to_keras_pairs(a["pads"])})
            return KerasSpec(self.keras_class, {**config, "padding": "valid"}, pre=pre)
        if name is None and self.kind == "max":  # -inf padding, as a Keras 3 ops.pad node
            return KerasSpec(self.keras_class, {**config, "padding": "valid"}, pre=neg_inf_pad(a["pads"]))
        if name is None or (name == "same" and a.get("count_include_pad")):
            raise Unsupported(f"layer '{node.name}': Keras pooling pads only as TF 'same'"
                              f"{' without counting the padding' if self.kind == 'avg' else ''}; found pads {a['pads']}")
        return KerasSpec(self.keras_class, {**config, "padding": name})

    # -- torch ------------------------------------------------------------------------
    def _module_form(self, node, graph):
        """(padding, ceil_mode) for torch's pooling module when it can take the pads itself: symmetric ones of at
        most half the kernel, or those plus the end padding that ceil_mode adds (ResNet-D's AvgPool2d(2,
        ceil_mode=True, count_include_pad=False) on odd sizes); else None. An average that counts the padding
        cannot take the ceil_mode form: torch does not count a partial window's overhang, even then."""
        a, rank = node.attrs, self.rank
        pads, begins = a["pads"], a["pads"][:rank]
        if not all(p <= k // 2 for p, k in zip(begins, a["kernel"])):
            return None
        if padding.symmetric(pads):
            return begins, False
        if self.kind == "avg" and a["count_include_pad"]:
            return None
        sizes = padding.spatial(graph.shape(node.inputs[0]))
        ceil_pads = padding.ceil_mode_pads(node.name, sizes, a["kernel"], a["strides"], begins * 2) \
            if None not in sizes else None
        return (begins, True) if ceil_pads == pads else None

    def torch_module(self, node, graph):
        a = node.attrs
        pads, ceil_mode = self._module_form(node, graph) or ([0] * self.rank, False)
        options = [f"kernel_size={_text(a['kernel'])}", f"stride={_text(a['strides'])}"]
        if any(pads):
            options.append(f"padding={_text(pads)}")
        if ceil_mode:
            options.append("ceil_mode=True")
        if self.kind == "avg" and not a["count_include_pad"]:
            options.append("count_include_pad=False")
        return f"nn.{self.torch_class}({', '.join(options)})"

    def torch_forward(self, node, graph, module, args):
        """Pads torch's module cannot take (asymmetric, or over half the kernel) go in an explicit F.pad:
        -inf for max pooling, zeros for average pooling that counts the padding; otherwise refused."""
        pads = node.attrs["pads"]
        if self._module_form(node, graph) is not None:
            return f"{module}({args[0]})"
        if self.kind == "avg" and not node.attrs["count_include_pad"]:
            raise Unsupported(f"layer '{node.name}': torch average pooling cannot exclude padding that is "
                              f"asymmetric or over half the kernel (pads {pads})")
        value = "float('-inf')" if self.kind == "max" else "0.0"
        return f"{module}(F.pad({args[0]}, {literal(padding.torch_pad_order(pads))}, value={value}))"

    def from_torch(self, layer):
        module = layer.module
        if self.kind == "max" and (padding.as_list(module.dilation, self.rank) != [1] * self.rank
                                   or module.return_indices):
            raise Unsupported(f"layer '{layer.name}' ({layer.class_name}): dilation or return_indices")
        if self.kind == "avg" and getattr(module, "divisor_override", None) is not None:
            raise Unsupported(f"layer '{layer.name}' ({layer.class_name}): divisor_override is not supported")
        shape = layer.input_shapes[0] if layer.input_shapes else None
        pads = padding.as_list(module.padding, self.rank) * 2
        count_include_pad = getattr(module, "count_include_pad", False)
        if layer.class_name.endswith("Same"):  # timm's: TensorFlow's 'SAME' padding computed in forward(), then
            # pooled; an average counts that padding, which is zeros in the pooled input
            kernel, stride = padding.as_list(module.kernel_size, self.rank), padding.as_list(module.stride, self.rank)
            pads = padding.resolve(layer.name, "same", shape[2:] if shape else [None], kernel, stride, [1] * self.rank)
            count_include_pad = True
        return [self.node(layer.name, layer.inputs, layer.outputs, shape, module.kernel_size, module.stride, pads,
                          count_include_pad, getattr(module, "ceil_mode", False))]

    # -- ONNX -------------------------------------------------------------------------
    def to_onnx(self, node, builder):
        a = node.attrs
        extra = {"count_include_pad": int(a["count_include_pad"])} if self.kind == "avg" else {}
        builder.node(self.onnx_type, node.inputs[:1], node.outputs, node.name, kernel_shape=a["kernel"],
                     strides=a["strides"], pads=a["pads"], **extra)

    def from_onnx(self, onnx_node, context):
        attrs = context.attrs(onnx_node)
        name = context.name(onnx_node)
        if any(d != 1 for d in attrs.get("dilations", [1])):
            raise Unsupported(f"{onnx_node.op_type} '{name}': dilations are not supported")
        if attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID", "SAME_UPPER"):
            raise Unsupported(f"{onnx_node.op_type} '{name}': auto_pad={attrs['auto_pad']} is not supported")
        pad_spec = {"VALID": "valid", "SAME_UPPER": "same"}.get(attrs.get("auto_pad"),
                                                                attrs.get("pads", [0] * 2 * self.rank))
        return [self.node(name, [onnx_node.input[0]], list(onnx_node.output)[:1],
                          context.shape(onnx_node.input[0]), attrs["kernel_shape"], attrs.get("strides", 1),
                          pad_spec, attrs.get("count_include_pad", 0), bool(attrs.get("ceil_mode", 0)))]


class GlobalPool(OpDef):
    input_kind = views.CHANNELS_FIRST
    def __init__(self, kind: str):
        self.kind = kind
        self.name = f"global_{kind}_pool"
        self.summary = f"{'Maximum' if kind == 'max' else 'Mean'} over every spatial axis; keepdims keeps them as 1."
        keras = "GlobalMaxPooling" if kind == "max" else "GlobalAveragePooling"
        self.keras_classes = [f"{keras}{rank}D" for rank in (1, 2, 3)]
        self.torch_classes = [f"Adaptive{'Max' if kind == 'max' else 'Avg'}Pool{rank}d" for rank in (1, 2, 3)]
        self.onnx_type = "GlobalMaxPool" if kind == "max" else "GlobalAveragePool"
        self.conventions = {
            "keras": Convention(tuple(self.keras_classes), {}, {"keepdims": "keepdims=False"}),
            "torch": Convention((*self.torch_classes[1:2], "torch.amax" if kind == "max" else "torch.mean"), {},
                                {"keepdims": "AdaptiveXPool(1) keeps them; torch.mean(x, dim=(2, 3)) drops them"}),
            "onnx": Convention((self.onnx_type,), {}, {"keepdims": "always kept (Flatten after, to drop)"}),
        }

    def output_shapes(self, node, input_shapes):
        shape = input_shapes[0]
        if shape is None:
            return [None]
        return [(shape[0], shape[1], *([1] * (len(shape) - 2)))] if node.attrs["keepdims"] else [shape[:2]]

    def node(self, name, inputs, outputs, keepdims) -> Node:
        return Node(self.name, name, inputs, outputs, attrs={"keepdims": bool(keepdims)})

    def keras_weight_names(self, config):
        return []

    def from_keras(self, layer):
        return [self.node(layer.name, layer.inputs, layer.outputs, layer.config.get("keepdims", False))]

    def to_keras(self, node, graph):
        rank = len(graph.shape(node.inputs[0])) - 2
        return KerasSpec(self.keras_classes[rank - 1], {"keepdims": node.attrs["keepdims"]})

    def torch_module(self, node, graph):
        if node.attrs["keepdims"]:
            rank = len(graph.shape(node.inputs[0])) - 2
            return f"nn.{self.torch_classes[rank - 1]}(1)"
        return None

    def torch_forward(self, node, graph, module, args):
        if module is not None:
            return f"{module}({args[0]})"
        axes = tuple(range(2, len(graph.shape(node.inputs[0]))))
        return f"torch.{'amax' if self.kind == 'max' else 'mean'}({args[0]}, dim={literal(axes)})"

    def from_torch_function(self, call):
        shape = call.input_shapes[0]
        dims = call.argument("dim", 1, None)
        dims = [dims] if isinstance(dims, int) else list(dims or [])
        return self._reduction(call.name, call.inputs[:1], call.outputs, shape, dims,
                               call.argument("keepdim", 2, False), f"'{call.name}': {call.function}")

    def _reduction(self, name, inputs, outputs, shape, axes, keepdims, what) -> list:
        """A reduction over every axis but the batch and one feature axis: the global pool, after a transpose
        that puts that axis second where it is not (a mean over a sequence's time axis, dim=1)."""
        rank = len(shape) if shape else 0
        reduced = sorted(a % rank for a in axes) if rank else []
        kept = [a for a in range(1, rank) if a not in reduced]
        if rank < 3 or len(kept) != 1 or 0 in reduced or kept != [1] and keepdims:
            raise Unsupported(f"{what} over {axes} of a rank-{rank} tensor; only a mean/max over every axis but the "
                              "batch and one feature axis converts (keeping the reduced axes: only over the spatial "
                              "axes of a channels-first tensor)")
        if kept == [1]:
            return [self.node(name, inputs, outputs, keepdims)]
        from .transpose import TRANSPOSE

        moved = f"{name}/features_second"
        perm = [0, kept[0], *[a for a in range(1, rank) if a != kept[0]]]
        return [TRANSPOSE.node(moved, inputs, [moved], perm), self.node(name, [moved], outputs, keepdims)]

    def to_onnx(self, node, builder):
        if node.attrs["keepdims"]:
            builder.node(self.onnx_type, node.inputs[:1], node.outputs, node.name)
            return
        kept = f"{node.name}/keepdims"
        builder.node(self.onnx_type, node.inputs[:1], [kept], node.name)
        builder.node("Flatten", [kept], node.outputs, f"{node.name}/flatten", axis=1)

    def from_onnx(self, onnx_node, context):
        return [self.node(context.name(onnx_node), [onnx_node.input[0]], list(onnx_node.output), True)]

    def from_onnx_reduce(self, onnx_node, context):
        """ReduceMean/ReduceMax over every spatial axis (axes as attribute before opset 18, input after)."""
        attrs = context.attrs(onnx_node)
        name = context.name(onnx_node)
        axes = context.axes(onnx_node)
        if axes is None:
            raise Unsupported(f"{onnx_node.op_type} '{name}' over every axis (no axes) is not converted")
        return self._reduction(name, [onnx_node.input[0]], list(onnx_node.output), context.shape(onnx_node.input[0]),
                               axes, attrs.get("keepdims", 1), f"{onnx_node.op_type} '{name}'")


NON_NEGATIVE = {"relu", "relu6", "sigmoid", "softmax"}


def _non_negative(graph, value: str) -> bool:
    producer = graph.producer(value)
    return producer is not None and producer.op in NON_NEGATIVE


def _text(values) -> str:
    return str(values[0]) if len(set(values)) == 1 else str(tuple(values))


POOLS = {(kind, rank): register_op(Pool(kind, rank)) for kind in KINDS for rank in (1, 2, 3)}
for _pool in POOLS.values():
    register_keras(_pool.keras_class, _pool)
    register_torch_module(_pool.torch_class, _pool.from_torch)
for _kind in KINDS:  # timm's TF-'SAME' pools, kept whole by exported.py for timm's classes only
    register_torch_module(f"{POOLS[_kind, 2].torch_class}Same", POOLS[_kind, 2].from_torch)


def from_onnx_pool(onnx_node, context):
    """MaxPool/AveragePool: the rank comes from kernel_shape."""
    kind = "max" if onnx_node.op_type == "MaxPool" else "avg"
    rank = len(context.attrs(onnx_node)["kernel_shape"])
    return POOLS[(kind, rank)].from_onnx(onnx_node, context)


register_onnx("MaxPool", from_onnx_pool)
register_onnx("AveragePool", from_onnx_pool)
GLOBAL_POOLS = {kind: register_op(GlobalPool(kind)) for kind in KINDS}
for _global in GLOBAL_POOLS.values():
    for _class in _global.keras_classes:
        register_keras(_class, _global)
    register_onnx(_global.onnx_type, _global.from_onnx)
register_onnx("ReduceMean", GLOBAL_POOLS["avg"].from_onnx_reduce)
register_onnx("ReduceMax", GLOBAL_POOLS["max"].from_onnx_reduce)
register_torch_function("torch.mean", GLOBAL_POOLS["avg"].from_torch_function)
register_torch_function("mean", GLOBAL_POOLS["avg"].from_torch_function)
register_torch_function("torch.amax", GLOBAL_POOLS["max"].from_torch_function)
register_torch_function("amax", GLOBAL_POOLS["max"].from_torch_function)
