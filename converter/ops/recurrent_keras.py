"""Keras' recurrent wrappers: ``Bidirectional(layer, merge_mode=...)`` and Keras 2's ``CuDNNLSTM``/``CuDNNGRU``, read
as the recurrent ops of ``recurrent.py`` (where their conventions are)."""

from __future__ import annotations

from .. import views
from ..errors import WeightMismatch
from .base import KerasReader
from .recurrent import INFERENCE_KEYS, MERGES, RECURRENT, Recurrent, keras_outputs
from .registry import register_keras


class KerasBidirectional(KerasReader):
    """Keras ``Bidirectional(layer, merge_mode='concat')``: one IR node with both directions."""

    input_kind = views.FEATURES_LAST

    @staticmethod
    def _inner(config):
        inner = config.get("layer", {})
        return RECURRENT_BY_KERAS.get(inner.get("class_name")), inner.get("config", {})

    def keras_weight_names(self, config):
        op, inner = self._inner(config)
        names = op.keras_weight_names(inner) if op else []
        return [f"forward_{n}" for n in names] + [f"backward_{n}" for n in names]

    def keras_blocker(self, config):
        op, inner = self._inner(config)
        if op is None:
            return f"wraps {config.get('layer', {}).get('class_name')!r}, not a recurrent layer wconv converts"
        problems = [] if config.get("merge_mode", "concat") in (*MERGES, None) else \
            [f"merge_mode={config.get('merge_mode')!r}"]
        backward = config.get("backward_layer")
        if backward and (backward.get("class_name") != config["layer"].get("class_name") or any(
                backward.get("config", {}).get(key) != inner.get(key) for key in INFERENCE_KEYS)):
            problems.append("a backward_layer that computes otherwise than the forward one")
        if inner.get("go_backwards"):
            problems.append("a forward layer with go_backwards=True")
        inner_problem = op.keras_blocker(inner)
        return ", ".join(problems + ([inner_problem] if inner_problem else [])) or None

    def from_keras(self, layer):
        op, inner = self._inner(layer.config)
        directions = {}
        for prefix, keras_prefix in (("", "forward_"), ("reverse_", "backward_")):
            weights = {k[len(keras_prefix):]: v for k, v in layer.weights.items() if k.startswith(keras_prefix)}
            directions.update(op.from_keras_weights(weights, inner, prefix, layer.name))
        return [op.node(layer.name, layer.inputs, keras_outputs(layer, op.state_count("bidirectional")), directions,
                        direction="bidirectional",
                        merge=layer.config.get("merge_mode", "concat"),
                        **op.keras_attrs(inner, layer.keras_version))]


class KerasCuDNN(KerasReader):
    """Keras 2's ``CuDNNLSTM``/``CuDNNGRU`` (TF 1 era .h5): cuDNN's layer keeps both biases, stacked in one (2G,)
    vector (input then recurrent), which is torch's split exactly; its GRU applies the reset gate after the
    recurrent matmul (reset_after=True). Gates in Keras' order, sigmoid and tanh."""

    input_kind = views.FEATURES_LAST

    def __init__(self, op: Recurrent):
        self.op = op

    def keras_weight_names(self, config):
        return ["kernel", "recurrent_kernel", "bias"]

    def keras_blocker(self, config):
        return self.op.keras_blocker(self._plain(config))

    @staticmethod
    def _plain(config) -> dict:
        return {**config, "activation": "tanh", "recurrent_activation": "sigmoid", "reset_after": True,
                "use_bias": True}

    def from_keras_weights(self, weights, config, prefix, layer) -> dict:
        gates = len(self.op.cell.gates["keras"]) * int(config["units"])
        bias = weights["bias"]
        if bias.shape != (2 * gates,):
            raise WeightMismatch(f"layer '{layer}': cuDNN bias of shape {bias.shape}, expected ({2 * gates},)")
        split = bias.reshape(2, gates)
        plain = {**weights, "bias": split if self.op.cell.op == "gru" else split[0]}
        params = self.op.from_keras_weights(plain, self._plain(config), prefix, layer)
        if self.op.cell.op == "lstm":
            params[prefix + "b_hh"] = self.op._reordered({"b": split[1]}, "keras", "torch", f"layer '{layer}'")["b"]
        return params

    def keras_attrs(self, config, keras_version: str) -> dict:
        return self.op.keras_attrs(self._plain(config), keras_version)

    def node(self, *args, **kwargs):
        return self.op.node(*args, **kwargs)

    def state_count(self, direction: str) -> int:
        return self.op.state_count(direction)

    def from_keras(self, layer):
        params = self.from_keras_weights(layer.weights, layer.config, "", layer.name)
        return [self.node(layer.name, layer.inputs, keras_outputs(layer, self.op.state_count("forward")), params,
                          **self.keras_attrs(layer.config, layer.keras_version))]


CUDNN = {"CuDNNLSTM": KerasCuDNN(RECURRENT["lstm"]), "CuDNNGRU": KerasCuDNN(RECURRENT["gru"])}
RECURRENT_BY_KERAS = {**{op.cell.keras: op for op in RECURRENT.values()}, **CUDNN}
register_keras("Bidirectional", KerasBidirectional())
for _class, _reader in CUDNN.items():
    register_keras(_class, _reader)
