"""Element-wise activations, as layers and as Dense's fused ``activation``.

One row per activation: the names each framework uses and the attributes whose
names or defaults differ (LeakyReLU's slope is 0.3 as a Keras layer, 0.2 as a
Keras function and 0.01 in torch and ONNX).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..codetext import literal
from ..errors import Unsupported
from ..ir import Node
from .. import views
from .base import KerasReader, Convention, KerasSpec, OpDef
from .registry import (
    register_keras,
    register_onnx,
    register_op,
    register_torch_function,
    register_torch_module,
)


@dataclass(frozen=True)
class Attr:
    """One attribute: its name and default in each framework (None: not expressible there)."""

    default: object
    keras_layer: tuple | None = None  # (config key, default) on the dedicated Keras layer
    keras_function: object = None  # value Keras' activation *function* uses (Dense(activation=...))
    torch: tuple | None = None  # (module/function argument, default)
    onnx: tuple | None = None  # (attribute, default)
    keras_legacy: str | None = None  # the Keras 2 spelling of the layer's config key
    axis: bool = False  # an axis: channels-last in Keras, channels-first in the IR, torch and ONNX


@dataclass(frozen=True)
class Row:
    op: str
    summary: str
    keras: str | None  # name in Activation('...') and Dense(activation='...')
    torch: str  # nn module class
    onnx: str  # op type
    keras_layer: str | None = None  # a dedicated Keras layer class, if any
    torch_functions: tuple = ()
    attrs: dict = field(default_factory=dict)
    keras_aliases: tuple = ()  # other names Keras files use for it (Keras 2's 'swish')
    keras2: dict = field(default_factory=dict)  # attr values Keras 2's activation function uses instead


ROWS = (
    Row("relu", "max(x, 0)", "relu", "ReLU", "Relu", "ReLU", ("relu", "torch.relu", "torch.nn.functional.relu")),
    Row("sigmoid", "1 / (1 + exp(-x))", "sigmoid", "Sigmoid", "Sigmoid", None,
        ("sigmoid", "torch.sigmoid", "torch.nn.functional.sigmoid")),
    Row("tanh", "tanh(x)", "tanh", "Tanh", "Tanh", None, ("tanh", "torch.tanh", "torch.nn.functional.tanh")),
    Row("softmax", "exp(x) / sum(exp(x)) over one axis", "softmax", "Softmax", "Softmax", "Softmax",
        ("softmax", "torch.softmax", "torch.nn.functional.softmax"),
        {"axis": Attr(-1, ("axis", -1), -1, ("dim", None), ("axis", -1), axis=True)}),
    Row("log_softmax", "x - log(sum(exp(x))) over one axis", "log_softmax", "LogSoftmax", "LogSoftmax", None,
        ("log_softmax", "torch.log_softmax", "torch.nn.functional.log_softmax"),
        {"axis": Attr(-1, None, -1, ("dim", None), ("axis", -1), axis=True)}),
    Row("gelu", "x * Phi(x); approximate='tanh' uses the tanh formula", "gelu", "GELU", "Gelu", None,
        ("gelu", "torch.nn.functional.gelu"),
        {"approximate": Attr("none", None, "none", ("approximate", "none"), ("approximate", "none"))}),
    Row("elu", "x if x > 0 else alpha * (exp(x) - 1)", "elu", "ELU", "Elu", "ELU",
        ("elu", "torch.nn.functional.elu"),
        {"alpha": Attr(1.0, ("alpha", 1.0), 1.0, ("alpha", 1.0), ("alpha", 1.0))}),
    Row("selu", "scale * elu(x, alpha) with the self-normalizing constants", "selu", "SELU", "Selu", None,
        ("selu", "torch.selu", "torch.nn.functional.selu")),
    Row("softplus", "log(1 + exp(x))", "softplus", "Softplus", "Softplus", None,
        ("softplus", "torch.nn.functional.softplus")),
    Row("leaky_relu", "x if x > 0 else negative_slope * x", "leaky_relu", "LeakyReLU", "LeakyRelu", "LeakyReLU",
        ("leaky_relu", "torch.nn.functional.leaky_relu"),
        {"negative_slope": Attr(0.01, ("negative_slope", 0.3), 0.2, ("negative_slope", 0.01), ("alpha", 0.01),
                                keras_legacy="alpha")}),
    Row("identity", "x (Keras 'linear')", "linear", "Identity", "Identity", None, ("contiguous",)),
    Row("relu6", "min(max(x, 0), 6)", "relu6", "ReLU6", "Clip", None, ("torch.nn.functional.relu6",)),
    Row("silu", "x * sigmoid(x) (swish)", "silu", "SiLU", "Sigmoid+Mul", None, ("torch.nn.functional.silu",),
        keras_aliases=("swish",)),
    Row("hard_silu", "x * relu6(x + 3) / 6 (hard swish)", "hard_silu", "Hardswish", "HardSwish", None,
        ("torch.nn.functional.hardswish",), keras_aliases=("hard_swish",)),
    Row("mish", "x * tanh(softplus(x))", "mish", "Mish", "Mish", None, ("torch.nn.functional.mish",)),
    # Keras 3's and torch's x/6 + 1/2; Keras 2's 'hard_sigmoid' was 0.2x + 1/2 (read by the file's version).
    Row("hard_sigmoid", "clip(alpha * x + beta, 0, 1)", "hard_sigmoid", "Hardsigmoid", "HardSigmoid", None,
        ("torch.nn.functional.hardsigmoid",),
        {"alpha": Attr(1 / 6, None, 1 / 6, None, ("alpha", 0.2)), "beta": Attr(0.5, None, 0.5, None, ("beta", 0.5))},
        keras2={"alpha": 0.2}),
)


class Activation(OpDef):
    elementwise = True  # (softmax excepted) order-preserving: Flatten -> Dense row permutation passes through

    def __init__(self, row: Row):
        self.row = row
        self.name = row.op
        self.summary = row.summary
        self.params = {}
        keras_names = tuple(n for n in (row.keras and f"Activation('{row.keras}')", row.keras_layer) if n)
        self.conventions = {
            "keras": Convention(keras_names, {}, _attr_docs(row, "keras_layer")),
            "torch": Convention((row.torch,), {}, _attr_docs(row, "torch")),
            "onnx": Convention((row.onnx,), {}, _attr_docs(row, "onnx")),
        }
        self.elementwise = not any(a.axis for a in row.attrs.values())
        differences = _keras_function_note(row)
        self.notes = (f"Keras' activation function and layer differ: {differences}",) if differences else ()

    def node(self, name, inputs, outputs, **attrs) -> Node:
        values = {key: attrs.get(key, attr.default) for key, attr in self.row.attrs.items()}
        return Node(self.name, name, inputs, outputs, {}, values)

    # -- Keras ------------------------------------------------------------------
    def from_keras_layer(self, layer):
        layout = layer.input_layouts[0] if layer.input_layouts else None
        attrs = {key: _from_keras(a, _keras_layer_value(layer.config, a), layout) for key, a in self.row.attrs.items()}
        return self.node(layer.name, layer.inputs, layer.outputs, **attrs)

    def keras_values(self, node, graph) -> dict:
        """The node's attrs as Keras spells them (axes of Keras' view of the input)."""
        layout = graph.layout(node.inputs[0])
        return {key: views.axis_to(node.attrs[key], layout, "keras") if a.axis and layout else node.attrs[key]
                for key, a in self.row.attrs.items()}

    def keras_function_fits(self, node, graph) -> bool:
        """Whether Keras' activation function computes exactly this node."""
        values = self.keras_values(node, graph)
        return self.row.keras is not None and all(
            values[key] == attr.keras_function for key, attr in self.row.attrs.items()
        )

    def to_keras(self, node, graph):
        if self.row.keras_layer and not self.keras_function_fits(node, graph):
            values = self.keras_values(node, graph)
            config = {a.keras_layer[0]: values[key] for key, a in self.row.attrs.items()}
            return KerasSpec(self.row.keras_layer, config)
        if self.keras_function_fits(node, graph):
            return KerasSpec("Activation", {"activation": self.row.keras})
        raise Unsupported(f"layer '{node.name}': Keras has no {self.name} with {node.attrs}")

    # -- torch ------------------------------------------------------------------
    def torch_arguments(self, node) -> str:
        pairs = [
            f"{a.torch[0]}={literal(node.attrs[key])}"
            for key, a in self.row.attrs.items()
            if node.attrs[key] != a.torch[1] or a.torch[1] is None
        ]
        return ", ".join(pairs)

    def torch_module(self, node, graph):
        return f"nn.{self.row.torch}({self.torch_arguments(node)})"

    def torch_call(self, node, argument: str) -> str:
        """Functional form, used for activations fused into the layer before them."""
        if self.name == "identity":
            return argument
        extra = self.torch_arguments(node)
        function = next(f for f in self.row.torch_functions if f.startswith("torch."))
        function = function.replace("torch.nn.functional.", "F.")
        return f"{function}({argument}{', ' + extra if extra else ''})"

    def from_torch(self, layer):
        attrs = {key: getattr(layer.module, a.torch[0]) for key, a in self.row.attrs.items()}
        _refuse_unmatched_torch_options(layer)
        if any(a.axis and attrs[key] is None for key, a in self.row.attrs.items()):
            raise Unsupported(f"layer '{layer.name}' ({layer.class_name}): dim=None picks an axis implicitly; "
                              "give dim explicitly")
        return [self.node(layer.name, layer.inputs, layer.outputs, **attrs)]

    def from_torch_function(self, call):
        attrs = {key: call.argument(a.torch[0], 1, a.torch[1]) for key, a in self.row.attrs.items()}
        return [self.node(call.name, call.inputs, call.outputs, **attrs)]

    # -- ONNX -------------------------------------------------------------------
    def to_onnx(self, node, builder):
        attrs = {a.onnx[0]: node.attrs[key] for key, a in self.row.attrs.items() if node.attrs[key] != a.onnx[1]}
        builder.node(self.row.onnx, node.inputs[:1], node.outputs, node.name, **attrs)

    def from_onnx(self, onnx_node, context):
        found = context.attrs(onnx_node)
        attrs = {key: found.get(a.onnx[0], a.onnx[1]) for key, a in self.row.attrs.items()}
        _refuse_unknown_onnx_attrs(onnx_node, found, {a.onnx[0] for a in self.row.attrs.values()}, context)
        return [self.node(context.name(onnx_node), list(onnx_node.input[:1]), list(onnx_node.output), **attrs)]

    def output_shapes(self, node, input_shapes):
        return [input_shapes[0]]


def _from_keras(attr: Attr, value, layout: str | None):
    return views.axis_from(value, layout, "keras") if attr.axis and layout else value


def _keras_layer_value(config: dict, attr: Attr):
    key, default = attr.keras_layer
    if key in config:
        return config[key]
    return config.get(attr.keras_legacy, default) if attr.keras_legacy else default


def _attr_docs(row: Row, framework: str) -> dict:
    docs = {}
    for key, attr in row.attrs.items():
        spelled = getattr(attr, framework)
        if spelled:
            docs[key] = f"{spelled[0]}={spelled[1]!r}"
        elif framework == "keras_layer" and attr.keras_function is not None:
            docs[key] = f"{attr.keras_function!r} only (no option)"
        else:
            docs[key] = "not expressible"
    return docs


def _keras_function_note(row: Row) -> str:
    return ", ".join(
        f"{key}={a.keras_function!r} as activation='{row.keras}', {a.keras_layer[1]!r} as {row.keras_layer}"
        for key, a in row.attrs.items()
        if a.keras_layer and a.keras_layer[1] != a.keras_function
    )


# Options that change the result and that no other framework expresses.
TORCH_FIXED = {"Softplus": {"beta": 1.0, "threshold": 20.0}}
ONNX_SELU_DEFAULTS = {"alpha": 1.67326319217681884765625, "gamma": 1.05070102214813232421875}


def _refuse_unmatched_torch_options(layer) -> None:
    for option, expected in TORCH_FIXED.get(layer.class_name, {}).items():
        found = getattr(layer.module, option)
        if found != expected:
            raise Unsupported(f"layer '{layer.name}' ({layer.class_name}): {option}={found} has no equivalent; "
                              f"only {option}={expected} converts")


def _refuse_unknown_onnx_attrs(onnx_node, found, known, context) -> None:
    for key, value in found.items():
        fits = ONNX_SELU_DEFAULTS.get(key) is not None and abs(value - ONNX_SELU_DEFAULTS[key]) < 1e-6
        if key not in known and not fits:
            raise Unsupported(f"{onnx_node.op_type} '{context.name(onnx_node)}': attribute {key}={value} "
                              "has no equivalent")


class Relu6(Activation):
    """ONNX has no Relu6: it is Clip(x, 0, 6), bounds as inputs (attributes before opset 11)."""

    def to_onnx(self, node, builder):
        low = builder.initializer(f"{node.name}.min", np.array(0.0, dtype=np.float32))
        high = builder.initializer(f"{node.name}.max", np.array(6.0, dtype=np.float32))
        builder.node("Clip", [node.inputs[0], low, high], node.outputs, node.name)

    def from_onnx(self, onnx_node, context):
        attrs = context.attrs(onnx_node)
        bounds = [attrs.get("min"), attrs.get("max")]
        for index in (1, 2):
            if len(onnx_node.input) > index and onnx_node.input[index]:
                bound = context.weight(onnx_node, index)
                bounds[index - 1] = float(bound.reshape(())) if bound.size == 1 else None
        unknown = [index for index in (1, 2) if len(onnx_node.input) > index and onnx_node.input[index]
                   and (onnx_node.input[index] not in context.initializers or bounds[index - 1] is None)]
        if unknown:
            raise Unsupported(f"Clip '{context.name(onnx_node)}': bounds computed at run time, or not one number")
        if bounds != [0.0, 6.0]:
            from .clip import CLIP

            return CLIP.from_onnx_bounds(onnx_node, context, bounds)
        return [self.node(context.name(onnx_node), [onnx_node.input[0]], list(onnx_node.output))]


class Silu(Activation):
    """ONNX (opset 20) has no SiLU: it is written, and recognized, as Mul(x, Sigmoid(x))."""

    def to_onnx(self, node, builder):
        gate = f"{node.name}/sigmoid"
        builder.node("Sigmoid", node.inputs[:1], [gate], gate)
        builder.node("Mul", [node.inputs[0], gate], node.outputs, node.name)


class HardSigmoid(Activation):
    """clip(alpha x + beta, 0, 1). torch's Hardsigmoid and Keras 3's hard_sigmoid fix alpha = 1/6 and beta = 1/2;
    ONNX's HardSigmoid takes both (alpha defaults to 0.2, Keras 2's slope), so it is always written out."""

    STANDARD = {"alpha": 1 / 6, "beta": 0.5}

    def node(self, name, inputs, outputs, **attrs) -> Node:
        values = {key: float(attrs.get(key, value)) for key, value in self.STANDARD.items()}
        values = {key: self.STANDARD[key] if np.isclose(value, self.STANDARD[key], rtol=1e-6, atol=0) else value
                  for key, value in values.items()}  # 1/6 read back from float32 attributes
        return Node(self.name, name, inputs, outputs, {}, values)

    def _standard(self, node, target: str) -> None:
        if node.attrs != self.STANDARD:
            raise Unsupported(f"layer '{node.name}': a hard sigmoid of slope {node.attrs['alpha']:g} and offset "
                              f"{node.attrs['beta']:g}; {target}'s is x/6 + 1/2 (Keras 2's 0.2x + 1/2 converts to "
                              "ONNX only)")

    def torch_arguments(self, node) -> str:
        self._standard(node, "torch")
        return ""

    def to_keras(self, node, graph):
        self._standard(node, "Keras 3")
        return KerasSpec("Activation", {"activation": "hard_sigmoid"})

    def from_torch(self, layer):
        return [self.node(layer.name, layer.inputs, layer.outputs)]

    def from_torch_function(self, call):
        return [self.node(call.name, call.inputs[:1], call.outputs)]

    def to_onnx(self, node, builder):
        builder.node("HardSigmoid", node.inputs[:1], node.outputs, node.name, **node.attrs)


class Gelu(Activation):
    """Keras' activation 'gelu' is the exact one (``approximate=False``). The tanh approximation (GPT-2's gelu_new,
    torch's ``approximate='tanh'``) is the node Keras 3 saves for ``keras.ops.gelu(x, approximate=True)``
    (``ops.Gelu``, whose own default is the approximation): read and written as that."""

    KERAS_OPS = "ops.Gelu"

    def __init__(self, row: Row):
        super().__init__(row)
        self.conventions["keras"] = Convention(
            ("Activation('gelu')", "ops.gelu (Gelu)"), {},
            {"approximate": "'none' as Activation('gelu'); 'tanh' as ops.gelu(x, approximate=True), its default"})

    def to_keras(self, node, graph):
        if node.attrs["approximate"] == "tanh":
            return KerasSpec(self.KERAS_OPS, {"approximate": True})
        return super().to_keras(node, graph)

    def from_keras(self, layer):
        approximate = layer.config.get("approximate", True)
        return [self.node(layer.name, layer.inputs, layer.outputs, approximate="tanh" if approximate else "none")]


SPECIAL = {"relu6": Relu6, "silu": Silu, "hard_sigmoid": HardSigmoid, "gelu": Gelu}
ACTIVATIONS = {row.op: register_op(SPECIAL.get(row.op, Activation)(row)) for row in ROWS}
BY_KERAS_NAME = {name: ACTIVATIONS[row.op] for row in ROWS for name in (row.keras, *row.keras_aliases) if name}
register_keras(Gelu.KERAS_OPS, ACTIVATIONS["gelu"])
# Activations another package registers with Keras, by registered name -> (op, attrs): keras-hub's BERT and GPT-2 use
# its ``gelu_approximate``, ``keras.activations.gelu(x, approximate=True)``.
REGISTERED_FUNCTIONS = {"keras_hub>gelu_approximate": ("gelu", {"approximate": "tanh"})}


def from_onnx_sigmoid(onnx_node, context):
    """Sigmoid, or the first half of SiLU when its only consumer is Mul(x, Sigmoid(x))."""
    users = context.consumers.get(onnx_node.output[0], [])
    source = onnx_node.input[0]
    if len(users) == 1 and users[0].op_type == "Mul" and sorted(users[0].input) == sorted([source, onnx_node.output[0]]):
        context.absorbed.add(id(users[0]))
        return [ACTIVATIONS["silu"].node(context.name(users[0]), [source], list(users[0].output))]
    return ACTIVATIONS["sigmoid"].from_onnx(onnx_node, context)


def from_keras_activation(keras_name, name: str, inputs, outputs, fused: bool = False, layout=None,
                          keras_version: str = "3") -> Node:
    """The node for ``Activation(keras_name)`` or a layer's fused ``activation=keras_name``, as the file's Keras
    version computes it."""
    if isinstance(keras_name, dict):  # Keras 3 may serialize a function as a config dict
        keras_name = keras_name.get("config", keras_name.get("class_name"))
    if keras_name in REGISTERED_FUNCTIONS:
        op_name, attrs = REGISTERED_FUNCTIONS[keras_name]
        node = ACTIVATIONS[op_name].node(name, inputs, outputs, **attrs)
        node.fused = fused
        return node
    op = BY_KERAS_NAME.get(keras_name)
    if op is None:
        raise Unsupported(f"layer '{name}': activation '{keras_name}' is not supported "
                          f"(supported: {', '.join(sorted(BY_KERAS_NAME))})")
    attrs = {key: _from_keras(attr, attr.keras_function, layout) for key, attr in op.row.attrs.items()}
    if str(keras_version).startswith("2"):
        attrs.update(op.row.keras2)
    node = op.node(name, inputs, outputs, **attrs)
    node.fused = fused
    return node


class KerasActivationLayer(KerasReader):
    """``keras.layers.Activation``: which op depends on its config."""

    @staticmethod
    def keras_weight_names(config):
        return []

    @staticmethod
    def from_keras(layer):
        return [from_keras_activation(layer.config.get("activation"), layer.name, layer.inputs, layer.outputs,
                                      layout=layer.input_layouts[0] if layer.input_layouts else None,
                                      keras_version=layer.keras_version)]


class KerasReLULayer(KerasReader):
    """``keras.layers.ReLU``: plain relu, or relu6 with max_value=6."""

    @staticmethod
    def keras_weight_names(config):
        return []

    @staticmethod
    def from_keras(layer):
        options = {k: layer.config.get(k) for k in ("max_value", "negative_slope", "threshold")}
        if options["negative_slope"] or options["threshold"] or options["max_value"] not in (None, 6, 6.0):
            raise Unsupported(f"layer '{layer.name}' (ReLU): {options} is not supported; only plain relu and "
                              "max_value=6 (relu6)")
        op = ACTIVATIONS["relu" if options["max_value"] is None else "relu6"]
        return [op.node(layer.name, layer.inputs, layer.outputs)]


class KerasDedicatedLayer(KerasReader):
    def __init__(self, op: Activation):
        self.op = op

    def keras_weight_names(self, config):
        return []

    def from_keras(self, layer):
        return [self.op.from_keras_layer(layer)]


register_onnx("Sigmoid", from_onnx_sigmoid)
register_keras("Activation", KerasActivationLayer())
register_keras("ReLU", KerasReLULayer())
for _op in ACTIVATIONS.values():
    if _op.row.keras_layer and _op.row.keras_layer != "ReLU":
        register_keras(_op.row.keras_layer, KerasDedicatedLayer(_op))
    register_torch_module(_op.row.torch, _op.from_torch)
    if _op.row.onnx not in ("Sigmoid", "Sigmoid+Mul"):
        register_onnx(_op.row.onnx, _op.from_onnx)
    for _function in _op.row.torch_functions:
        register_torch_function(_function, _op.from_torch_function)
