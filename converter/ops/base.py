"""What an op declares: its canonical params and, per framework, names and layouts.

The data (``params``, ``conventions``) is what docs, ``wconv explain`` and the
layout conversions are derived from. The few methods an op overrides translate
attributes, which differ too much between frameworks to be pure data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ShapeMismatch, Unsupported, WeightMismatch
from ..layouts import permute
from .. import views

FRAMEWORKS = ("keras", "torch", "onnx")


@dataclass(frozen=True)
class Convention:
    """How one framework spells an op.

    ``names``: layer classes (Keras), module classes (torch) or op types (ONNX).
    ``params``: canonical param -> (the framework's name for it, its axis layout).
    ``attrs``: canonical attr -> the framework's spelling, with its default, for docs.
    """

    names: tuple[str, ...]
    params: dict[str, tuple[str, str]] = field(default_factory=dict)
    attrs: dict[str, str] = field(default_factory=dict)
    note: str = ""


@dataclass
class KerasLayer:
    """A layer as written in a Keras file: class, config and named weights."""

    class_name: str
    name: str
    config: dict
    weights: dict[str, np.ndarray]
    inputs: list[str]
    outputs: list[str]
    input_shapes: list = field(default_factory=list)  # in IR order, batch axis None
    input_layouts: list = field(default_factory=list)  # the inputs' axis patterns (views.py)
    output_layout: str | None = None  # for ops whose output layout is chosen: what the layer's consumers compute on
    keras_version: str = "3"  # of the file: where Keras 2 and 3 differ (hard_sigmoid's slope)
    call_options: dict = field(default_factory=dict)  # plain call arguments wconv converts (use_causal_mask)
    constants: dict = field(default_factory=dict)  # position -> a number in place of a tensor (ops.add(x, 3.0))


@dataclass
class KerasSpec:
    """What the Keras writer builds for a node: ``keras.layers.<class_name>(**config)``."""

    class_name: str
    config: dict
    weights: list[np.ndarray] = field(default_factory=list)
    pre: KerasSpec | None = None  # a layer to apply first (ZeroPadding before an asymmetric conv)
    post: KerasSpec | None = None  # a layer to apply after (Cropping after a transposed conv)
    call_order: list | None = None  # called with these IR inputs as positional arguments (attention: q, v, k)
    call_keywords: dict | None = None  # keyword -> an IR input's index, or a list of them (an RNN's initial_state)
    call_options: dict | None = None  # plain call arguments (MultiHeadAttention's use_causal_mask)


class KerasReader:
    """What the Keras reader asks of whatever reads a Keras layer class: an op, or a reader of a layer that
    maps onto another op (Keras' Rescaling onto BatchNorm)."""

    input_kind: str | None = None  # the layout kind the layer computes on (views.KINDS, relayout.SAME); None: any
    free_layout = False  # True: the output's layout is chosen (attrs["layout"]), not derived from the input's

    def keras_weight_names(self, config: dict) -> list[str]:
        """Keras' own order of the layer's weights (what ``get_weights`` returns)."""
        return []

    def from_keras(self, layer: KerasLayer):
        raise Unsupported(f"layer '{layer.name}' ({layer.class_name}) cannot be read from Keras")

    def keras_blocker(self, config: dict) -> str | None:
        """Why a layer of this config cannot convert, found before anything is read (listed with the others)."""
        return None


class OpDef(KerasReader):
    """An op family member. Subclasses set the data and override the translations."""

    name: str = ""
    summary: str = ""
    params: dict[str, str] = {}  # canonical param -> canonical axes
    optional: frozenset = frozenset()  # params that may be absent (bias)
    conventions: dict[str, Convention] = {}
    notes: tuple[str, ...] = ()
    elementwise = False  # True: output element i depends on input element i only (keeps any layout)
    integer_input = False  # True: takes integer ids (Embedding); a model input it reads is int64
    boolean_inputs: tuple = ()  # indices of inputs that are boolean masks (attention's); a model input there is bool

    # -- params through layouts -------------------------------------------------
    def params_from(self, framework: str, named: dict, layer: str, optional=None) -> dict[str, np.ndarray]:
        """Framework-named weights -> canonical params. Missing (unless optional) or unused names are errors."""
        optional = self.optional if optional is None else optional
        convention = self.conventions[framework]
        wanted = {name: canonical for canonical, (name, _) in convention.params.items()}
        unused = sorted(set(named) - set(wanted))
        if unused:
            raise WeightMismatch(f"layer '{layer}' ({self.name}): unexpected weights {unused}")
        params = {}
        for canonical, (name, axes) in convention.params.items():
            if name not in named:
                if canonical in optional:
                    continue
                raise WeightMismatch(f"layer '{layer}' ({self.name}): weight '{name}' is missing")
            params[canonical] = permute(
                named[name], axes, self.params[canonical], what=f"layer '{layer}' {name}"
            )
        return params

    def params_to(self, framework: str, node) -> dict[str, np.ndarray]:
        """Canonical params -> the framework's names and layouts."""
        convention = self.conventions[framework]
        named = {}
        for canonical, array in node.params.items():
            name, axes = convention.params[canonical]
            named[name] = permute(array, self.params[canonical], axes, what=f"layer '{node.name}' {canonical}")
        return named

    def param_axes(self, param: str) -> str:
        """The canonical axes of one of a node's params (a recurrent layer's backward params share the forward's)."""
        return self.params[param]

    def file_param_name(self, framework: str, param: str) -> str:
        entry = self.conventions[framework].params.get(param)
        return entry[0] if entry else param

    # -- shapes ------------------------------------------------------------------
    def output_shapes(self, node, input_shapes: list) -> list:
        """Shapes of the outputs; raise ShapeMismatch when params do not fit the inputs."""
        return [input_shapes[0]]

    def output_layouts(self, node, input_layouts: list, output_shapes: list) -> list:
        """Axis patterns of the outputs: the chosen one, else the input's where the rank stays, a vector at rank 2."""
        if self.free_layout:
            return [node.attrs.get("layout")] * len(node.outputs)
        source = input_layouts[0] if input_layouts else None
        return [_derived_layout(source, shape) for shape in output_shapes]

    # -- translations (override) -------------------------------------------------
    def to_keras(self, node, graph) -> KerasSpec | None:
        raise Unsupported(f"layer '{node.name}' ({node.op}) has no Keras equivalent")

    def torch_module(self, node, graph) -> str | None:
        """Source of the ``nn`` constructor call, e.g. ``nn.Linear(2000, 32)``; None for a plain function."""
        raise Unsupported(f"layer '{node.name}' ({node.op}) has no torch module")

    def torch_helper(self, node) -> str | None:
        """The name of a helper class (``adapters/torch/cells.py``) that torch_module constructs, if any."""
        return None

    def torch_forward(self, node, graph, module: str | None, args: list[str]) -> str:
        """The forward() expression; ``module`` is ``self.<attribute>`` when torch_module gave one. For a node with
        several outputs, the expression whose value ``torch_unpack`` takes apart."""
        return f"{module}({', '.join(args)})"

    def torch_unpack(self, node, result: str) -> list[str]:
        """One expression per output of a node with several, from the variable holding torch_forward's value."""
        raise Unsupported(f"layer '{node.name}' ({node.op}) has several outputs, which torch does not give")

    def torch_buffers(self, node) -> dict[str, np.ndarray]:
        """state_dict entries torch keeps beside the params (BatchNorm's num_batches_tracked)."""
        return {}

    def to_onnx(self, node, builder) -> None:
        raise Unsupported(f"layer '{node.name}' ({node.op}) has no ONNX equivalent")


def _derived_layout(source: str | None, shape) -> str | None:
    if shape is None:
        return None
    if source is not None and len(source.split()) == len(shape):
        return source
    if len(shape) <= 2:
        return views.default(views.FEATURES_LAST, len(shape))
    if source is None:
        return None  # a reader that assigns layouts when the graph is finished
    raise Unsupported(f"no layout is known for a value of shape {tuple(shape)} made from one of layout '{source}'")


def expect_dim(layer: str, what: str, expected, found) -> None:
    """Raise a ShapeMismatch naming the layer, what was expected and what was found."""
    if expected is not None and found is not None and expected != found:
        raise ShapeMismatch(f"layer '{layer}': {what} expects {expected}, found {found}")
