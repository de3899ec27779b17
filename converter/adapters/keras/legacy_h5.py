"""Legacy ``.h5`` that Keras 2 (tf.keras, tf_keras) and Keras 3 both load.

Keras 3 writes its own serialization into a legacy ``.h5``'s ``model_config`` (``batch_shape``,
dtype policies as objects, ``{"args": ..., "kwargs": ...}`` call records, new arguments), which
Keras 2 cannot read. ``.h5`` is the Keras 2 users' format, so wconv rewrites the config into the
Keras 2 serialization, which Keras 3's legacy loader reads as well. The weights are untouched.
"""

from __future__ import annotations

import json

from ...errors import Unsupported
from .config import keras3_tensors

# Keras 3 arguments Keras 2 does not take, dropped when they hold their (Keras 2) default.
KERAS3_ONLY = {"optional": False, "quantization_config": None, "lora_rank": None, "lora_alpha": None,
               "input_axes": None, "output_axes": None}
RENAMED = {"LeakyReLU": {"negative_slope": "alpha"}}  # class -> Keras 3 argument -> Keras 2 argument
# class -> arguments Keras 2's class lacks, dropped when they hold what Keras 2 always does
KERAS2_LACKS = {name: {"data_format": "channels_last"} for name in ("ZeroPadding1D", "Cropping1D", "UpSampling1D")}
# Keras 3 activations that Keras 2 cannot resolve by name (tf_keras 2.21; a test tries every activation wconv
# writes), and names Keras 2 knows under another spelling.
KERAS2_MISSING_ACTIVATIONS = {"hard_silu", "hard_swish"}
ACTIVATION_NAMES = {"silu": "swish"}


def rewrite(path) -> None:
    """Rewrite the model_config of the legacy .h5 at ``path`` (written by Keras 3) for Keras 2."""
    import h5py

    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        f.attrs["model_config"] = json.dumps(keras2_model(config)).encode("utf-8")


def keras2_model(model: dict) -> dict:
    config = dict(model["config"])
    config["layers"] = [keras2_layer(layer) for layer in config["layers"]]
    lacking = [f"'{layer['name']}' ({layer['config']['activation']})" for layer in config["layers"]
               if isinstance(layer["config"].get("activation"), str)
               and layer["config"]["activation"] in KERAS2_MISSING_ACTIVATIONS]
    if lacking:
        raise Unsupported(f"Keras 2 has no activation for {', '.join(lacking)}, so a legacy .h5 would not load "
                          "there; write .keras (Keras 3) instead")
    differing = [f"'{layer['name']}'" for layer in config["layers"] if "hard_sigmoid" in json.dumps(layer["config"])]
    if differing:
        raise Unsupported(f"{', '.join(differing)} use hard_sigmoid, whose slope is 0.2 in Keras 2 and 1/6 in Keras 3, "
                          "so a legacy .h5 would compute otherwise in Keras 2; write .keras (Keras 3) instead")
    return {"class_name": model["class_name"], "config": config}


def keras2_layer(layer: dict) -> dict:
    class_name = layer["class_name"]
    dropped = {**KERAS3_ONLY, **KERAS2_LACKS.get(class_name, {})}
    config = {key: _value(value) for key, value in layer["config"].items()
              if not (key in dropped and value == dropped[key])}
    if isinstance(config.get("activation"), str):
        config["activation"] = ACTIVATION_NAMES.get(config["activation"], config["activation"])
    if class_name == "InputLayer" and "batch_shape" in config:
        config["batch_input_shape"] = config.pop("batch_shape")
    for new, old in RENAMED.get(class_name, {}).items():
        if new in config:
            config[old] = config.pop(new)
    result = {"class_name": class_name, "config": config, "name": layer.get("name", config.get("name"))}
    result["inbound_nodes"] = [_keras2_call(call) for call in layer.get("inbound_nodes", [])]
    return result


def _keras2_call(call) -> list:
    """``{"args": [tensor or [tensors]], "kwargs": {}}`` -> ``[[layer, node, tensor, {}], ...]``."""
    if not isinstance(call, dict):
        return call  # already Keras 2's form
    return [[*tensor["config"]["keras_history"], {}] for tensor in keras3_tensors(call.get("args", []))]


def _value(value):
    """Keras 3 objects in configs (dtype policies, initializers, regularizers) in Keras 2's form."""
    if isinstance(value, dict) and value.get("class_name") in ("DTypePolicy", "FloatDTypePolicy"):
        return value["config"]["name"]
    if isinstance(value, dict) and "class_name" in value and "config" in value and "module" in value:
        inner = {k: _value(v) for k, v in value["config"].items()
                 if not (k in KERAS3_ONLY and v == KERAS3_ONLY[k])}
        return {"class_name": value["class_name"], "config": inner}
    if isinstance(value, list):
        return [_value(v) for v in value]
    return value
