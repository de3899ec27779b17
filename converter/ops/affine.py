"""Arithmetic with a number: x * scale + offset, elementwise (MobileNetV3's hard-sigmoid, ``relu6(x + 3) / 6``).

Keras 3 records ``x + 3.0`` as an operation node (``ops.Add`` with the number in its call), torch traces it as
``operator.add(x, 3.0)``, ONNX spells it Add/Mul/Sub/Div with a scalar constant. Keras gets it back as a
``Rescaling`` layer, which computes exactly x * scale + offset.
"""

from __future__ import annotations

import numpy as np

from ..codetext import literal
from ..errors import Unsupported
from ..ir import Node
from ..relayout import SAME
from .base import Convention, KerasReader, KerasSpec, OpDef
from .registry import register_keras, register_onnx, register_op, register_torch_function

# operation -> (scale, offset) of x op c, and of c op x (None: not an affine map of x)
FORMS = {
    "add": (lambda c: (1.0, c), lambda c: (1.0, c)),
    "subtract": (lambda c: (1.0, -c), lambda c: (-1.0, c)),
    "multiply": (lambda c: (c, 0.0), lambda c: (c, 0.0)),
    "divide": (lambda c: (1.0 / c, 0.0), None),
}


class Affine(OpDef):
    name = "affine"
    elementwise = True
    input_kind = SAME  # Keras' ops.Add of two tensors reads as the merge it is: both in one layout
    summary = "x * scale + offset with two numbers (arithmetic with a constant)."
    conventions = {
        "keras": Convention(("Rescaling", "x + 3.0 (ops.Add, ...)", "CustomScaleLayer"), {},
                            {"numbers": "scale, offset"}),
        "torch": Convention(("x * scale + offset", "x / c"), {}, {"numbers": "Python numbers"}),
        "onnx": Convention(("Mul", "Add", "Sub", "Div"), {}, {"numbers": "scalar constants"}),
    }

    def node(self, name, inputs, outputs, scale: float, offset: float) -> Node:
        return Node(self.name, name, list(inputs), list(outputs), attrs={"scale": float(scale), "offset": float(offset)})

    def of(self, operation: str, name: str, inputs, outputs, constant: float, constant_first: bool) -> Node:
        """``x <operation> constant`` (or ``constant <operation> x``) as x * scale + offset."""
        forms = FORMS.get(operation)
        form = forms and forms[1 if constant_first else 0]
        if form is None or (operation == "divide" and constant == 0):
            raise Unsupported(f"layer '{name}': {'c ' + operation + ' x' if constant_first else operation + ' by ' + str(constant)} "
                              "is not x * scale + offset; not converted")
        return self.node(name, inputs, outputs, *form(float(constant)))

    def keras_weight_names(self, config):
        return []

    def from_keras(self, layer):
        """Keras 3's ``ops.Add``/``Subtract``/``Multiply``/``Divide`` node with one number and one tensor; with two
        tensors (``x + y`` of Keras tensors), the merge it is."""
        from .merge import MERGES

        operation = {"ops.Add": "add", "ops.Subtract": "subtract", "ops.Multiply": "multiply",
                     "ops.Divide": "divide", "ops.TrueDivide": "divide"}[layer.class_name]
        if not layer.constants and operation in MERGES:
            return [MERGES[operation].node(layer.name, layer.inputs, layer.outputs)]
        if len(layer.inputs) != 1 or len(layer.constants) != 1:
            raise Unsupported(f"layer '{layer.name}' ({layer.class_name}): only one tensor and one number convert")
        (position, constant), = layer.constants.items()
        return [self.of(operation, layer.name, layer.inputs, layer.outputs, constant, position == 0)]

    def to_keras(self, node, graph):
        return KerasSpec("Rescaling", {"scale": node.attrs["scale"], "offset": node.attrs["offset"]})

    def torch_module(self, node, graph):
        return None

    def torch_forward(self, node, graph, module, args):
        scale, offset = node.attrs["scale"], node.attrs["offset"]
        expression = args[0] if scale == 1.0 else f"{args[0]} * {literal(scale)}"
        return expression if offset == 0.0 else f"{expression} + {literal(offset)}"

    def to_onnx(self, node, builder):
        scale, offset = node.attrs["scale"], node.attrs["offset"]
        value = node.inputs[0]
        if scale != 1.0 or offset == 0.0:
            scaled = node.outputs[0] if offset == 0.0 else f"{node.name}/scaled"
            builder.node("Mul", [value, builder.initializer(f"{node.name}.scale", np.float32(scale))], [scaled],
                         node.name if offset == 0.0 else scaled)
            value = scaled
        if offset != 0.0:
            builder.node("Add", [value, builder.initializer(f"{node.name}.offset", np.float32(offset))],
                         node.outputs, node.name)


    def from_torch_division(self, call):
        """``x / 6``: a number divides; a tensor dividing is not converted."""
        number = call.args[1] if len(call.args) == 2 else None
        if len(call.inputs) != 1 or not isinstance(number, (int, float)) or isinstance(number, bool) or call.kwargs:
            raise Unsupported(f"'{call.name}': {call.function}{call.args}; only a tensor divided by a number converts")
        return [self.of("divide", call.name, call.inputs, call.outputs, number, False)]

    def from_onnx_division(self, onnx_node, context):
        name, divisor = context.name(onnx_node), onnx_node.input[1]
        if divisor not in context.initializers or context.initializers[divisor].size != 1:
            raise Unsupported(f"Div '{name}': only a tensor divided by a constant number converts")
        context.used.add(divisor)
        number = float(np.asarray(context.initializers[divisor]).reshape(()))
        return [self.of("divide", name, [onnx_node.input[0]], list(onnx_node.output), number, False)]


class KerasCustomScale(KerasReader):
    """keras.applications' InceptionResNetV2 ``CustomScaleLayer``: inputs[0] + inputs[1] * scale, read as the scale
    (an affine node) and the add it is."""

    @staticmethod
    def keras_weight_names(config):
        return []

    @staticmethod
    def from_keras(layer):
        from .merge import MERGES

        if len(layer.inputs) != 2:
            raise Unsupported(f"layer '{layer.name}' (CustomScaleLayer): takes two tensors, found {len(layer.inputs)}")
        scaled = f"{layer.name}/scaled"
        return [AFFINE.node(scaled, layer.inputs[1:], [scaled], float(layer.config.get("scale", 1.0)), 0.0),
                MERGES["add"].node(layer.name, [layer.inputs[0], scaled], layer.outputs)]


AFFINE = register_op(Affine())
for _class in ("ops.Add", "ops.Subtract", "ops.Multiply", "ops.Divide", "ops.TrueDivide"):
    register_keras(_class, AFFINE)
register_keras("CustomScaleLayer", KerasCustomScale())
for _function in ("operator.truediv", "torch.div", "div", "truediv"):
    register_torch_function(_function, AFFINE.from_torch_division)
register_onnx("Div", AFFINE.from_onnx_division)
