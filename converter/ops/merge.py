"""Merging branches: element-wise Add, Subtract, Multiply, Maximum, Minimum, Average; Concatenate."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..codetext import literal
from ..errors import ShapeMismatch, Unsupported
from ..ir import Node
from .base import Convention, KerasSpec, OpDef
from .affine import AFFINE, FORMS
from .batchnorm import from_onnx_shift
from .layer_scale import LAYER_SCALE
from .tokens import POSITION_EMBEDDING
from .registry import register_keras, register_onnx, register_op, register_torch_function
from .. import views
from ..relayout import SAME


@dataclass(frozen=True)
class Row:
    op: str
    keras: str
    torch_template: str  # forward() source; {0} {1} ... are the inputs
    torch_functions: tuple  # traced names read back as this op
    onnx: str
    binary: bool = False  # exactly two inputs (Subtract)


ROWS = (
    Row("add", "Add", " + ", ("operator.add", "torch.add", "add"), "Add"),
    Row("subtract", "Subtract", " - ", ("operator.sub", "torch.sub", "sub"), "Sub", binary=True),
    Row("multiply", "Multiply", " * ", ("operator.mul", "torch.mul", "mul"), "Mul"),
    Row("maximum", "Maximum", "torch.maximum", ("torch.maximum",), "Max"),
    Row("minimum", "Minimum", "torch.minimum", ("torch.minimum",), "Min"),
    Row("average", "Average", "mean", (), "Mean"),
)


class Merge(OpDef):
    input_kind = SAME
    def __init__(self, row: Row):
        self.row = row
        self.name = row.op
        self.summary = f"Element-wise {row.op}; inputs of one rank, axes of size 1 broadcast."
        self.conventions = {
            "keras": Convention((row.keras,), {}),
            "torch": Convention((row.torch_template.strip() if row.torch_functions else
                                 "torch.stack(...).mean(0)",), {}),
            "onnx": Convention((row.onnx,), {}),
        }

    def output_shapes(self, node, input_shapes):
        """Broadcast as every framework does once the ranks agree (squeeze-and-excitation's (N, C, 1, 1))."""
        if any(s is None for s in input_shapes):
            return [None]
        if len({len(s) for s in input_shapes}) != 1:
            raise Unsupported(f"layer '{node.name}' ({self.name}): inputs differ in rank {input_shapes}; "
                              "broadcasting across ranks is not supported yet")
        result = []
        for sizes in zip(*input_shapes):
            real = {d for d in sizes if d != 1}
            if len(real - {None}) > 1:
                raise ShapeMismatch(f"layer '{node.name}' ({self.name}): shapes {input_shapes} do not broadcast")
            result.append(next(iter(real)) if len(real) == 1 else (None if None in sizes else 1))
        return [tuple(result)]

    def node(self, name, inputs, outputs) -> Node:
        if len(inputs) < 2 or (self.row.binary and len(inputs) != 2):
            raise Unsupported(f"layer '{name}' ({self.name}): needs {'two' if self.row.binary else 'two or more'} "
                              f"tensor inputs, found {len(inputs)} (constants are not supported)")
        return Node(self.name, name, list(inputs), list(outputs))

    def keras_weight_names(self, config):
        return []

    def from_keras(self, layer):
        return [self.node(layer.name, layer.inputs, layer.outputs)]

    def to_keras(self, node, graph):
        return KerasSpec(self.row.keras, {})

    def torch_module(self, node, graph):
        return None

    def torch_forward(self, node, graph, module, args):
        template = self.row.torch_template
        if template.startswith(" "):
            return template.join(args)
        if template == "mean":
            return f"torch.stack([{', '.join(args)}]).mean(0)"
        expression = args[0]
        for arg in args[1:]:
            expression = f"{template}({expression}, {arg})"
        return expression

    def from_torch_function(self, call):
        numbers = [(i, a) for i, a in enumerate(call.args[:2]) if isinstance(a, (int, float)) and not isinstance(a, bool)]
        if len(call.args) == 2 and len(call.inputs) == 1 and len(numbers) == 1 and not call.kwargs \
                and self.name in FORMS:  # x + 3.0
            (position, number), = numbers
            return [AFFINE.of(self.name, call.name, call.inputs, call.outputs, number, position == 0)]
        if len(call.args) != 2 or len(call.inputs) != 2 or call.kwargs:
            raise Unsupported(f"'{call.name}': {call.function}{call.args}; only two tensors, no alpha, convert")
        return [self.node(call.name, call.inputs, call.outputs)]

    def to_onnx(self, node, builder):
        if self.row.onnx in ("Add", "Sub", "Mul") and len(node.inputs) > 2:
            current = node.inputs[0]
            for index, other in enumerate(node.inputs[1:]):
                last = index == len(node.inputs) - 2
                out = node.outputs[0] if last else f"{node.name}/{index}"
                builder.node(self.row.onnx, [current, other], [out], f"{node.name}/{index}" if not last else node.name)
                current = out
            return
        builder.node(self.row.onnx, node.inputs, node.outputs, node.name)

    def from_onnx(self, onnx_node, context):
        constants = [name for name in onnx_node.input if name in context.initializers]
        if onnx_node.op_type == "Mul" and len(constants) == 1 and len(onnx_node.input) == 2:
            scaled = LAYER_SCALE.from_onnx_mul(onnx_node, context, constants[0])  # a scale per channel
            if scaled is not None:
                return scaled
        if onnx_node.op_type == "Add" and len(constants) == 1 and len(onnx_node.input) == 2:
            embedded = POSITION_EMBEDDING.from_onnx_add(onnx_node, context, constants[0])  # a table per step
            if embedded is not None:
                return embedded
        if onnx_node.op_type in ("Add", "Sub") and len(constants) == 1 and len(onnx_node.input) == 2:
            shifted = from_onnx_shift(onnx_node, context, constants[0])  # a shift per channel
            if shifted is not None:
                return shifted
        if len(constants) == 1 and len(onnx_node.input) == 2 and self.name in FORMS \
                and context.initializers[constants[0]].size == 1:  # x + 3.0
            position = list(onnx_node.input).index(constants[0])
            context.used.add(constants[0])
            number = float(np.asarray(context.initializers[constants[0]]).reshape(()))
            return [AFFINE.of(self.name, context.name(onnx_node), [onnx_node.input[1 - position]],
                              list(onnx_node.output), number, position == 0)]
        if constants:
            raise Unsupported(f"{onnx_node.op_type} '{context.name(onnx_node)}' with the constant {constants}: "
                              "only tensors from other layers are supported")
        return [self.node(context.name(onnx_node), list(onnx_node.input), list(onnx_node.output))]


class Concatenate(OpDef):
    input_kind = SAME
    name = "concatenate"
    summary = "Join inputs along one axis (canonical, channels-first: the channel axis is 1)."
    conventions = {
        "keras": Convention(("Concatenate",), {}, {"axis": "axis=-1 (channels-last)"}),
        "torch": Convention(("torch.cat",), {}, {"axis": "dim=0"}),
        "onnx": Convention(("Concat",), {}, {"axis": "axis (required)"}),
    }

    def output_shapes(self, node, input_shapes):
        if any(s is None for s in input_shapes):
            return [None]
        axis = node.attrs["axis"]
        rank = len(input_shapes[0])
        for shape in input_shapes:
            if len(shape) != rank or any(a != b for i, (a, b) in enumerate(zip(shape, input_shapes[0])) if i != axis):
                raise ShapeMismatch(f"layer '{node.name}' (concatenate on axis {axis}): shapes {input_shapes} "
                                    "differ off that axis")
        total = sum(shape[axis] for shape in input_shapes)
        return [tuple(total if i == axis else d for i, d in enumerate(input_shapes[0]))]

    def node(self, name, inputs, outputs, axis, rank) -> Node:
        if len(inputs) == 1:  # torch.cat([x], 1), as torchvision's DenseNet writes it: x itself
            from .registry import OPS

            return OPS["identity"].node(name, list(inputs), list(outputs))
        if rank is None:
            raise Unsupported(f"layer '{name}': concatenate needs its inputs' rank")
        if int(axis) % rank == 0:
            raise Unsupported(f"layer '{name}': concatenation along the batch axis (axis 0) changes the batch size; "
                              "wconv converts models whose axis 0 is the batch")
        return Node(self.name, name, list(inputs), list(outputs), attrs={"axis": int(axis) % rank})

    def keras_weight_names(self, config):
        return []

    def from_keras(self, layer):
        layout = layer.input_layouts[0]
        rank = len(views.axes(layout)) if layout else None
        axis = views.axis_from(layer.config.get("axis", -1), layout, "keras") if layout else None
        return [self.node(layer.name, layer.inputs, layer.outputs, axis, rank)]

    def to_keras(self, node, graph):
        return KerasSpec("Concatenate", {"axis": views.axis_to(node.attrs["axis"], graph.layout(node.inputs[0]), "keras")})

    def torch_module(self, node, graph):
        return None

    def torch_forward(self, node, graph, module, args):
        return f"torch.cat([{', '.join(args)}], dim={literal(int(node.attrs['axis']))})"

    def from_torch_function(self, call):
        shape = call.input_shapes[0]
        return [self.node(call.name, call.inputs, call.outputs, call.argument("dim", 1, 0),
                          len(shape) if shape else None)]

    def to_onnx(self, node, builder):
        builder.node("Concat", node.inputs, node.outputs, node.name, axis=node.attrs["axis"])

    def from_onnx(self, onnx_node, context):
        constants = [name for name in onnx_node.input if name in context.initializers]
        if constants:
            raise Unsupported(f"Concat '{context.name(onnx_node)}' with the constant {constants}: only tensors from "
                              "other layers convert, and class tokens (the same rows for every sample, first)")
        shape = context.shape(onnx_node.input[0])
        return [self.node(context.name(onnx_node), list(onnx_node.input), list(onnx_node.output),
                          context.attrs(onnx_node)["axis"], len(shape) if shape else None)]


MERGES = {row.op: register_op(Merge(row)) for row in ROWS}
for _merge in MERGES.values():
    register_keras(_merge.row.keras, _merge)
    register_onnx(_merge.row.onnx, _merge.from_onnx)
    for _function in _merge.row.torch_functions:
        register_torch_function(_function, _merge.from_torch_function)
CONCATENATE = register_op(Concatenate())
register_keras("Concatenate", CONCATENATE)
register_torch_function("torch.cat", CONCATENATE.from_torch_function)
register_torch_function("torch.concat", CONCATENATE.from_torch_function)
register_onnx("Concat", CONCATENATE.from_onnx)
