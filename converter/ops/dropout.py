"""Dropout and its variants: the identity at inference; kept as a node so layer names survive a round trip."""

from __future__ import annotations

from ..codetext import literal
from ..errors import Unsupported
from ..ir import Node
from .base import Convention, KerasSpec, OpDef
from .registry import register_keras, register_onnx, register_op, register_torch_function, register_torch_module


# Layers that only act in training (dropping channels, multiplying or adding noise): the identity in inference,
# where Keras runs them with training=False and torch in eval().
KERAS_VARIANTS = ("SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "AlphaDropout", "GaussianDropout",
                  "GaussianNoise")
TORCH_VARIANTS = ("Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout")
TORCH_FUNCTIONS = ("dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout")


class Dropout(OpDef):
    name = "dropout"
    summary = ("Identity at inference (the rate only matters in training); every variant reads as it, and is "
               "written as plain Dropout.")
    elementwise = True
    conventions = {
        "keras": Convention(("Dropout", *KERAS_VARIANTS), {}, {"rate": "rate"}),
        "torch": Convention(("Dropout", *TORCH_VARIANTS), {}, {"rate": "p=0.5"}),
        "onnx": Convention(("Dropout", "Identity"), {}, {"rate": "ratio input (written as Identity)"}),
    }

    def keras_weight_names(self, config):
        return []

    def from_keras(self, layer):
        rate = layer.config.get("rate", layer.config.get("stddev", 0.5))  # GaussianNoise has a stddev instead
        return [Node(self.name, layer.name, layer.inputs, layer.outputs, attrs={"rate": rate})]

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
for _keras_class in ("Dropout", *KERAS_VARIANTS):
    register_keras(_keras_class, DROPOUT)
for _torch_class in ("Dropout", *TORCH_VARIANTS):
    register_torch_module(_torch_class, DROPOUT.from_torch)
for _function in TORCH_FUNCTIONS:
    register_torch_function(f"torch.nn.functional.{_function}", DROPOUT.from_dropout_function)
register_torch_function("torchvision.ops.stochastic_depth.stochastic_depth", DROPOUT.from_stochastic_depth)
register_onnx("Dropout", DROPOUT.from_onnx)
