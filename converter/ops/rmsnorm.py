"""RMSNorm over the last axis: y = x / sqrt(mean(x^2) + epsilon) * scale (no mean subtracted, no bias).

Llama, Qwen2, Mistral and T5 normalize so. Keras 3 has ``RMSNormalization`` (epsilon 1e-6, weight ``scale``),
torch ``nn.RMSNorm`` (eps None: float32's machine epsilon, 1.19e-7; weight ``weight``); ONNX before opset 23 has no
op, so wconv writes it out (``Pow``, ``ReduceMean``, ``Add``, ``Sqrt``, ``Div``, ``Mul``), and reads that spelling
and torch.onnx's (``Sqrt`` then ``Reciprocal`` and ``Mul``) back (``adapters/onnx/rmsnorm_pass.py``). transformers'
own classes (``LlamaRMSNorm``, ...) write it out in forward(), read by ``adapters/torch/rms_norm_rule.py``.
"""

from __future__ import annotations

import numpy as np

from .. import views
from ..codetext import literal
from ..errors import Unsupported
from .base import Convention, KerasSpec
from .layernorm import LastAxisNorm
from .registry import register_keras, register_op, register_torch_module

TORCH_DEFAULT_EPS = float(np.finfo(np.float32).eps)  # nn.RMSNorm(eps=None) on float32


class RMSNorm(LastAxisNorm):
    name = "rmsnorm"
    summary = "y = x / sqrt(mean(x^2) + epsilon) * scale, over the last axis of each sample."
    params = {"scale": "f"}
    optional = frozenset({"scale"})
    conventions = {
        "keras": Convention(("RMSNormalization",), {"scale": ("scale", "f")}, {"epsilon": "epsilon=1e-6",
                                                                               "axis": "axis=-1"}),
        "torch": Convention(("RMSNorm",), {"scale": ("weight", "f")},
                            {"epsilon": "eps=None (float32: 1.19e-7)", "axis": "normalized_shape=(f,)"}),
        "onnx": Convention(("Pow/ReduceMean/Add/Sqrt/Div/Mul",), {"scale": ("Mul B", "f")},
                           {"epsilon": "the Add's constant", "axis": "ReduceMean axes=[-1]"}),
    }
    notes = ("A left-out scale is held as ones, which computes the same.",)

    def _scale(self, node, size: int) -> np.ndarray:
        return node.params.get("scale", np.ones(size, np.float32))

    # -- Keras ------------------------------------------------------------------
    def keras_weight_names(self, config):
        return ["scale"]

    def from_keras(self, layer):
        if layer.config.get("axis", -1) not in (-1, [-1]) and layer.input_layouts[0] is not None and \
                views.axis_from(layer.config["axis"], layer.input_layouts[0], "keras") != \
                len(layer.input_layouts[0].split()) - 1:
            raise Unsupported(f"layer '{layer.name}' (RMSNormalization): axis={layer.config.get('axis')}; only the "
                              "last axis converts")
        params = self.params_from("keras", layer.weights, layer.name)
        return [self.node(layer.name, layer.inputs, layer.outputs, params, layer.config.get("epsilon", 1e-6))]

    def to_keras(self, node, graph):
        size = int(graph.shape(node.inputs[0])[-1])
        return KerasSpec("RMSNormalization", {"axis": -1, "epsilon": node.attrs["epsilon"]},
                         [self._scale(node, size)])

    # -- torch ------------------------------------------------------------------
    def torch_module(self, node, graph):
        size = int(graph.shape(node.inputs[0])[-1])
        affine = "" if "scale" in node.params else ", elementwise_affine=False"
        return f"nn.RMSNorm({size}, eps={literal(node.attrs['epsilon'])}{affine})"

    def from_torch(self, layer):
        self.refuse_other_axes(layer)
        params = self.params_from("torch", layer.weights, layer.name)
        eps = layer.module.eps if layer.module.eps is not None else TORCH_DEFAULT_EPS
        return [self.node(layer.name, layer.inputs, layer.outputs, params, eps)]

    # -- ONNX -------------------------------------------------------------------
    def to_onnx(self, node, builder):
        name, x = node.name, node.inputs[0]
        two = builder.initializer(f"{name}.two", np.array(2.0, np.float32))
        axes = builder.initializer(f"{name}.axes", np.array([-1], np.int64))
        epsilon = builder.initializer(f"{name}.epsilon", np.array(node.attrs["epsilon"], np.float32))
        scale = builder.initializer(f"{name}.weight", self._scale(node, int(builder.graph.shape(x)[-1])))
        builder.node("Pow", [x, two], [f"{name}/square"], f"{name}/square")
        builder.node("ReduceMean", [f"{name}/square", axes], [f"{name}/mean"], f"{name}/mean", keepdims=1)
        builder.node("Add", [f"{name}/mean", epsilon], [f"{name}/shifted"], f"{name}/shifted")
        builder.node("Sqrt", [f"{name}/shifted"], [f"{name}/root"], f"{name}/root")
        builder.node("Div", [x, f"{name}/root"], [f"{name}/normalized"], f"{name}/normalized")
        builder.node("Mul", [f"{name}/normalized", scale], node.outputs, name)


RMSNORM = register_op(RMSNorm())
register_keras("RMSNormalization", RMSNORM)
register_torch_module("RMSNorm", RMSNORM.from_torch)
