"""Transpose (Keras Permute, torch permute, ONNX Transpose); the batch axis stays first.

The node's ``perm`` is in IR order and ``layout`` is its output's pattern. Each framework's own
permutation is derived from the patterns on either side (``views.transpose_in``): a Keras Permute
acts on Keras' view of its input and gives Keras' view of its output. Relayouts (``relayout.py``) are
transposes too; where a framework holds both sides alike, it gets no transpose at all.
"""

from __future__ import annotations

from .. import views
from ..codetext import literal
from ..errors import Unsupported
from ..ir import Node
from .base import Convention, KerasSpec, OpDef
from .registry import register_keras, register_onnx, register_op, register_torch_function


def framework_perm(node, graph, framework: str) -> list[int]:
    """The node's permutation as ``framework`` applies it to its own tensors."""
    source = graph.layout(node.inputs[0])
    if source is None or node.attrs.get("layout") is None:
        return list(node.attrs["perm"])
    return views.transpose_in(node.attrs["perm"], source, node.attrs["layout"], framework)


def is_identity(perm) -> bool:
    return list(perm) == list(range(len(perm)))


class Transpose(OpDef):
    name = "transpose"
    summary = "Reorder the axes after the batch (canonical: a permutation of the channels-first tensor)."
    conventions = {
        "keras": Convention(("Permute",), {}, {"perm": "dims: 1-based, of the channels-last tensor"}),
        "torch": Convention(("permute",), {}, {"perm": "x.permute(0, ...)"}),
        "onnx": Convention(("Transpose",), {}, {"perm": "perm"}),
    }

    free_layout = True

    def output_shapes(self, node, input_shapes):
        shape = input_shapes[0]
        return [None if shape is None else tuple(shape[a] for a in node.attrs["perm"])]

    def node(self, name, inputs, outputs, perm, layout: str | None = None) -> Node:
        perm = [int(a) for a in perm]
        if not perm or perm[0] != 0 or sorted(perm) != list(range(len(perm))):
            raise Unsupported(f"layer '{name}': permutation {perm} must keep the batch axis first")
        if layout is not None and len(views.axes(layout)) != len(perm):
            raise Unsupported(f"layer '{name}': layout '{layout}' does not fit permutation {perm}")
        return Node(self.name, name, inputs, outputs, attrs={"perm": perm, "layout": layout})

    def keras_weight_names(self, config):
        return []

    def from_keras(self, layer):
        """Keras permutes its view of the input; the output's pattern is chosen when the graph is finished
        (by what consumes it), so the IR permutation is set there too (``resolve_keras``)."""
        source = layer.input_layouts[0]
        keras_perm = [0, *[int(d) for d in layer.config["dims"]]]
        if source is None or sorted(keras_perm) != list(range(len(views.axes(source)))):
            raise Unsupported(f"layer '{layer.name}' (Permute): dims {layer.config['dims']} do not fit its input")
        node = self.node(layer.name, layer.inputs, layer.outputs, keras_perm, layout=layer.output_layout)
        node.attrs["perm"] = views.transpose_from(keras_perm, source, node.attrs["layout"], "keras")
        return [node]

    def to_keras(self, node, graph):
        keras_perm = framework_perm(node, graph, "keras")
        if is_identity(keras_perm):
            return None  # Keras holds both sides alike
        if keras_perm[0] != 0:
            raise Unsupported(f"layer '{node.name}': moves the batch axis in Keras' layout")
        return KerasSpec("Permute", {"dims": keras_perm[1:]})

    def torch_module(self, node, graph):
        return None

    def torch_forward(self, node, graph, module, args):
        perm = framework_perm(node, graph, "torch")
        return args[0] if is_identity(perm) else f"{args[0]}.permute{literal(tuple(int(a) for a in perm))}"

    def from_torch_function(self, call):
        dims = call.args[1:]
        dims = list(dims[0]) if len(dims) == 1 and isinstance(dims[0], (list, tuple)) else list(dims)
        if "dims" in call.kwargs:
            dims = list(call.kwargs["dims"])
        rank = len(dims)
        return [self.node(call.name, call.inputs[:1], call.outputs, [d % rank for d in dims])]

    def from_torch_swap(self, call):
        """``x.transpose(a, b)`` / ``torch.transpose(x, a, b)``: a permutation swapping two axes."""
        shape = call.input_shapes[0]
        first, second = call.argument("dim0", 1, None), call.argument("dim1", 2, None)
        if shape is None or not isinstance(first, int) or not isinstance(second, int):
            raise Unsupported(f"'{call.name}': transpose({first}, {second}) needs both axes and the input's rank")
        perm = list(range(len(shape)))
        perm[first % len(shape)], perm[second % len(shape)] = perm[second % len(shape)], perm[first % len(shape)]
        return [self.node(call.name, call.inputs[:1], call.outputs, perm)]

    def to_onnx(self, node, builder):
        perm = framework_perm(node, builder.graph, "onnx")
        if is_identity(perm):
            builder.node("Identity", node.inputs[:1], node.outputs, node.name)
        else:
            builder.node("Transpose", node.inputs[:1], node.outputs, node.name, perm=perm)

    def from_onnx(self, onnx_node, context):
        perm = context.attrs(onnx_node).get("perm")
        if perm is None:
            shape = context.shape(onnx_node.input[0])
            perm = list(reversed(range(len(shape))))
        return [self.node(context.name(onnx_node), [onnx_node.input[0]], list(onnx_node.output), perm)]


TRANSPOSE = register_op(Transpose())
register_keras("Permute", TRANSPOSE)
register_torch_function("permute", TRANSPOSE.from_torch_function)
register_torch_function("torch.permute", TRANSPOSE.from_torch_function)
register_torch_function("transpose", TRANSPOSE.from_torch_swap)
register_torch_function("torch.transpose", TRANSPOSE.from_torch_swap)
register_onnx("Transpose", TRANSPOSE.from_onnx)
