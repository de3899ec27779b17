"""Dropout: the identity at inference; kept as a node so layer names survive a round trip."""

from __future__ import annotations

from ..codetext import literal
from ..errors import Unsupported
from ..ir import Node
from .base import Convention, KerasSpec, OpDef
from .registry import register_keras, register_onnx, register_op, register_torch_function, register_torch_module


class Dropout(OpDef):
    name = "dropout"
    summary = "Identity at inference (the rate only matters in training)."
    elementwise = True
    conventions = {
        "keras": Convention(("Dropout",), {}, {"rate": "rate"}),
        "torch": Convention(("Dropout",), {}, {"rate": "p=0.5"}),
        "onnx": Convention(("Dropout", "Identity"), {}, {"rate": "ratio input (written as Identity)"}),
    }

    def keras_weight_names(self, config):
        return []

    def from_keras(self, layer):
        return [Node(self.name, layer.name, layer.inputs, layer.outputs, attrs={"rate": layer.config.get("rate", 0.5)})]

    def to_keras(self, node, graph):
        return KerasSpec("Dropout", {"rate": node.attrs.get("rate", 0.5)})

    def from_torch(self, layer):
        return [Node(self.name, layer.name, layer.inputs, layer.outputs, attrs={"rate": layer.module.p})]

    def from_dropout_function(self, call):
        """``F.dropout(x, p, training)``: the identity when ``training`` is False (``self.training`` in eval())."""
        if call.argument("training", 2, True) is not False:
            raise Unsupported(f"'{call.name}': F.dropout with training={call.argument('training', 2, True)} is random; "
                              "only training=False (eval) converts")
        return [Node(self.name, call.name, call.inputs[:1], call.outputs, attrs={"rate": float(call.argument("p", 1, 0.5))})]

    def from_stochastic_depth(self, call):
        """torchvision's ``stochastic_depth(x, p, mode, training)`` (timm's DropPath is traced away): the identity
        when ``training`` is False, as a module in eval() passes it."""
        if call.argument("training", 3, True) is not False:
            raise Unsupported(f"'{call.name}': stochastic_depth with training={call.argument('training', 3, True)} "
                              "drops rows at random; only training=False (eval) converts")
        return [Node(self.name, call.name, call.inputs[:1], call.outputs, attrs={"rate": float(call.argument("p", 1, 0))})]

    def torch_module(self, node, graph):
        return f"nn.Dropout(p={literal(float(node.attrs.get('rate', 0.5)))})"

    def to_onnx(self, node, builder):
        builder.node("Identity", node.inputs[:1], node.outputs, node.name)

    def from_onnx(self, onnx_node, context):
        # Dropout's optional mask output must be unused (the reader refuses it otherwise): at inference it
        # would be all ones. Its training_mode input must be a constant False: dropout in training is random.
        if len(onnx_node.input) > 2 and onnx_node.input[2]:
            mode = context.initializers.get(onnx_node.input[2])
            if mode is None or bool(mode):
                raise Unsupported(f"Dropout '{context.name(onnx_node)}': training_mode "
                                  f"{'is computed at run time' if mode is None else 'is true'}; dropout while "
                                  "training is random, and wconv converts inference models")
            context.used.add(onnx_node.input[2])
        outputs = [name for name in onnx_node.output[:1]]
        return [Node(self.name, context.name(onnx_node), list(onnx_node.input[:1]), outputs, attrs={"rate": 0.0})]


DROPOUT = register_op(Dropout())
register_keras("Dropout", DROPOUT)
register_torch_module("Dropout", DROPOUT.from_torch)
register_torch_function("torchvision.ops.stochastic_depth.stochastic_depth", DROPOUT.from_stochastic_depth)
register_torch_function("torch.nn.functional.dropout", DROPOUT.from_dropout_function)
register_onnx("Dropout", DROPOUT.from_onnx)
