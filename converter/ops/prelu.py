"""PReLU: x if x > 0 else alpha * x, with a learned alpha per channel, per element, or shared.

Canonical alpha broadcasts against the channels-first sample: (C, 1, 1) per channel, (1, 1, 1)
shared, (C, H, W) per element. Keras keeps it channels-last, shaped by ``shared_axes``; torch keeps
one value or one per channel (so per-element alphas are refused there).
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeMismatch, Unsupported
from ..ir import Node
from ..layouts import permute
from .base import Convention, KerasSpec, OpDef
from .registry import register_keras, register_onnx, register_op, register_torch_module
from .. import views

SPATIAL = ("s1", "s2", "s3")


def _axes(rank: int) -> tuple[str, str]:
    """(channels-first, channels-last) patterns of a sample of ``rank`` axes (batch excluded)."""
    spatial = " ".join(SPATIAL[: rank - 1])
    return f"c {spatial}".strip(), f"{spatial} c".strip()


class PRelu(OpDef):
    name = "prelu"
    input_kind = views.CHANNELS_FIRST
    summary = "x if x > 0 else alpha * x; alpha broadcasts against (C, spatial...)."
    params = {"alpha": "c h w"}  # as for a 2-D feature map; other ranks likewise
    notes = ("torch keeps alpha as (C,) or (1,): a Keras PReLU without shared spatial axes has no torch "
             "equivalent and is refused there.",)
    conventions = {
        "keras": Convention(("PReLU",), {"alpha": ("alpha", "h w c")}, {"sharing": "shared_axes (1-based)"}),
        "torch": Convention(("PReLU",), {"alpha": ("weight", "c")}, {"sharing": "num_parameters=1 or C"}),
        "onnx": Convention(("PRelu",), {"alpha": ("slope", "c h w")}, {"sharing": "broadcasting"}),
    }

    def output_shapes(self, node, input_shapes):
        shape = input_shapes[0]
        alpha = node.params["alpha"]
        if shape is not None:
            sample = shape[1:]
            if alpha.ndim != len(sample) or any(a not in (1, s) for a, s in zip(alpha.shape, sample) if s):
                raise ShapeMismatch(f"layer '{node.name}': alpha {alpha.shape} does not broadcast against {sample}")
        return [shape]

    def params_to(self, framework, node):
        alpha = node.params["alpha"]
        if framework == "torch":
            if any(size != 1 for size in alpha.shape[1:]):
                raise Unsupported(f"layer '{node.name}': torch PReLU has one alpha per channel; this one varies "
                                  f"over space {alpha.shape}")
            return {"weight": alpha.reshape(alpha.shape[0]).copy()}
        if framework == "keras":
            first, last = _axes(alpha.ndim)
            return {"alpha": permute(alpha, first, last, what=f"layer '{node.name}' alpha")}
        return {"slope": alpha}

    def keras_weight_names(self, config):
        return ["alpha"]

    def from_keras(self, layer):
        alpha = layer.weights["alpha"]
        first, last = _axes(alpha.ndim)
        return [Node(self.name, layer.name, layer.inputs, layer.outputs,
                     {"alpha": permute(alpha, last, first, what=f"layer '{layer.name}' alpha")})]

    def to_keras(self, node, graph):
        alpha = self.params_to("keras", node)["alpha"]
        # An axis of size 1 is shared (or has size 1 in the input, where sharing changes nothing).
        shared = [axis + 1 for axis, size in enumerate(alpha.shape) if size == 1]
        return KerasSpec("PReLU", {"shared_axes": shared or None}, [alpha])

    def torch_module(self, node, graph):
        return f"nn.PReLU(num_parameters={self.params_to('torch', node)['weight'].size})"

    def from_torch(self, layer):
        weight = layer.weights["weight"]
        shape = layer.input_shapes[0]
        rank = len(shape) - 1 if shape else 1
        return [Node(self.name, layer.name, layer.inputs, layer.outputs,
                     {"alpha": weight.reshape(weight.shape[0], *([1] * (rank - 1)))})]

    def to_onnx(self, node, builder):
        slope = builder.initializer(f"{node.name}.slope", node.params["alpha"])
        builder.node("PRelu", [node.inputs[0], slope], node.outputs, node.name)

    def from_onnx(self, onnx_node, context):
        slope = context.weight(onnx_node, 1)
        shape = context.shape(onnx_node.input[0])
        rank = len(shape) - 1 if shape else slope.ndim
        if slope.ndim > rank:
            raise Unsupported(f"PRelu '{context.name(onnx_node)}': slope {slope.shape} has more axes than a sample "
                              "(it broadcasts over the batch axis)")
        alpha = slope.reshape((1,) * (rank - slope.ndim) + slope.shape)  # numpy broadcasting prepends axes
        return [Node(self.name, context.name(onnx_node), [onnx_node.input[0]], list(onnx_node.output),
                     {"alpha": np.ascontiguousarray(alpha)})]


PRELU = register_op(PRelu())
register_keras("PReLU", PRELU)
register_torch_module("PReLU", PRELU.from_torch)
register_onnx("PRelu", PRELU.from_onnx)
