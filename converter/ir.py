"""The canonical intermediate representation: a graph of ops with canonical layouts.

Canonical layouts are the torch/ONNX ones (out x in, OIHW, channels-first
activations). Shapes keep ``None`` for the batch axis.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import BadInput

Shape = tuple  # of int | None; axis 0 is the batch


def fused_activation_name(layer: str) -> str:
    """The IR name of the activation a layer holds (Keras' ``activation=``): its writers keep the name, so an ONNX
    file wconv wrote still says which activation belonged to which layer."""
    return f"{layer}.activation"


@dataclass
class Value:
    """A tensor flowing between nodes (an activation, not a weight)."""

    name: str
    shape: Shape | None = None
    dtype: str = "float32"
    # Its axes in IR order ("n c h w", "n t f", "n f"); how each framework holds it follows from this
    # alone (views.py). None until the reader or layout inference sets it.
    layout: str | None = None


@dataclass
class Node:
    """One op applied once. ``name`` traces back to the source layer."""

    op: str
    name: str
    inputs: list[str]
    outputs: list[str]
    params: dict[str, np.ndarray] = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)
    # True when the source kept this node inside the layer before it (Keras Dense's
    # activation=); writers fuse it back where the target allows.
    fused: bool = False


@dataclass
class Graph:
    name: str
    inputs: list[Value]
    outputs: list[str]
    nodes: list[Node] = field(default_factory=list)
    values: dict[str, Value] = field(default_factory=dict)
    source: dict = field(default_factory=dict)
    # How the written model takes and gives its values: None for the target's own view of each
    # value's layout, or "channels_last" to keep a Keras source's view in torch or ONNX
    # (--keep-input-layout).
    interface: str | None = None

    def channels_last_interface(self) -> bool:
        return self.interface == "channels_last"

    def interface_view(self, framework: str) -> str:
        """Whose view of each value the written model's inputs and outputs take: the framework's own,
        or Keras' for a kept channels-last interface."""
        return "keras" if self.channels_last_interface() else framework

    def producer(self, value: str) -> Node | None:
        for node in self.nodes:
            if value in node.outputs:
                return node
        return None

    def consumers(self, value: str) -> list[Node]:
        return [node for node in self.nodes if value in node.inputs]

    def shape(self, value: str) -> Shape | None:
        known = self.values.get(value)
        return known.shape if known else None

    def layout(self, value: str) -> str | None:
        known = self.values.get(value)
        return known.layout if known else None

    def weight_owners(self) -> dict[str, str]:
        """A shared layer's later calls -> the first call, which holds their weights (``tie``)."""
        return {node.name: node.attrs["weights_of"] for node in self.nodes if "weights_of" in node.attrs}

    def parameter_count(self) -> int:
        """Each weight once: a shared layer's later calls (``weights_of``) hold the first call's."""
        tied = self.weight_owners()
        return sum(int(np.size(p)) for node in self.nodes if node.name not in tied for p in node.params.values())

    def check(self) -> None:
        """Every input of every node is produced before it is used; names are unique."""
        available = {value.name for value in self.inputs}
        seen = set()
        for node in self.nodes:
            if node.name in seen:
                raise BadInput(f"two layers are named '{node.name}'")
            seen.add(node.name)
            missing = [name for name in node.inputs if name not in available]
            if missing:
                raise BadInput(f"layer '{node.name}' uses {missing}, which no earlier layer produces")
            available.update(node.outputs)
        lost = [name for name in self.outputs if name not in available]
        if lost:
            raise BadInput(f"model outputs {lost} are produced by no layer")


def tie(created: list[Node], first: list[Node]) -> None:
    """A shared layer's later call (a Keras layer or a torch module called again): each node of ``created`` holding
    weights is tied to the node of the first call in its place, the same arrays, named in ``weights_of``. Writers
    reuse that call's layer or module; ONNX gets each call's own copy. A call that computes otherwise (TF 'same'
    pads differ with the input's size) keeps its own copy instead: one module could not compute both."""
    for node, owner in zip(created, first):
        if node.params and node.op == owner.op and _same(node.attrs, owner.attrs) and node.fused == owner.fused:
            node.params, node.attrs["weights_of"] = owner.params, owner.name


def _same(first: dict, second: dict) -> bool:
    try:
        return bool(first == second)
    except ValueError:  # an array among them: compared element by element, ambiguous as one truth value
        return False
