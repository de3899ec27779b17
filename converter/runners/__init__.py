"""Run a model with its own framework, using that framework's safe loading options.

``load`` returns a Runner: ``predict(inputs)`` maps a list of numpy inputs in IR order to the model's
outputs in IR order, ``capture(inputs)`` to every layer's output by layer name in execution order,
and ``safety`` says how the file was opened. Which IR order: the axis patterns of the model's
inputs and outputs (``Interface``), from wconv's reading of the source model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .. import untrusted, views


@dataclass
class Runner:
    predict: Callable
    capture: Callable
    safety: str
    view: str = "torch"  # how the model takes its inputs: "keras" (channels last) or in IR order


@dataclass
class Interface:
    """The axis patterns (IR order) of a model's inputs and outputs; None where nothing is known."""

    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    limits: list = field(default_factory=list)  # per input: the ids it takes are below this (None: numbers)
    dtypes: list = field(default_factory=list)  # per input: float32, int64 (ids) or bool (masks)

    @classmethod
    def of(cls, graph) -> Interface:
        from ..shapes import token_limit

        return cls([v.layout for v in graph.inputs], [graph.layout(name) for name in graph.outputs],
                   [token_limit(graph, v.name) for v in graph.inputs], [v.dtype for v in graph.inputs])

    def input(self, index: int, rank: int) -> str:
        return known_pattern(self.inputs, index, rank)

    def output(self, index: int, rank: int) -> str:
        return known_pattern(self.outputs, index, rank)


def known_pattern(patterns: list, index: int, rank: int) -> str:
    """The recorded pattern, or, for a model wconv could not read, a feature map (what readers assume of a
    value nothing else describes)."""
    pattern = patterns[index] if index < len(patterns) else None
    if pattern is not None and len(views.axes(pattern)) == rank:
        return pattern
    return views.default(views.CHANNELS_FIRST, rank) if rank <= 5 else " ".join(f"a{k}" for k in range(rank))


ACTIVATED = "+activation"  # the name suffix of a layer's output after the activation it holds


def layer_outputs(graph) -> dict[str, str]:
    """Each layer's output value (its first) -> the name ``capture`` records it under, as every runner names it: the
    layer's name, or ``<layer>+activation`` for the activation a layer holds (Keras' ``activation=``, torch's
    ``F.relu(self.fc(x))``, an ONNX node wconv wrote under ``fused_activation_name``)."""
    from ..ir import fused_activation_name

    producers = {value: node for node in graph.nodes for value in node.outputs}  # once: graphs of thousands
    names = {}
    for node in graph.nodes:
        if not node.outputs:
            continue
        producer = producers.get(node.inputs[0]) if node.inputs else None
        held = producer is not None and (node.fused or node.name == fused_activation_name(producer.name))
        names[node.outputs[0]] = producer.name + ACTIVATED if held else node.name
    return names


def load(path, format: str | None = None, *, module=None, module_args=None, layout: str | None = None,
         interface: Interface | None = None, module_option: str = "--module", input_shape=None) -> Runner:
    """``layout``: how a torch or ONNX model takes its inputs when it is not the recorded way ("channels_last":
    as Keras holds them; a hand port, or tf2onnx's output). ``interface``: the patterns of the inputs and
    outputs, from the source model; a Keras model's own are read from its file (with ``input_shape``, the source's
    ``--input-shape``, where it leaves sizes free)."""
    kind = format or untrusted.open_input(path)
    interface = interface or Interface()
    if kind == "keras":
        from .keras import load as load_keras

        return load_keras(path, module, module_option, input_shape)
    if kind == "torch":
        from .torch import load as load_torch

        return load_torch(path, module, module_args, layout, interface, module_option)
    if kind == "onnx":
        from .onnx import load as load_onnx

        return load_onnx(path, layout, interface)
    from ..errors import BadInput

    raise BadInput(f"{path}: cannot run a '{kind}' file; validate Keras, torch or ONNX models")
