"""Run a Keras file with Keras itself, ``safe_mode=True`` (no deserialized Python code)."""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager

import numpy as np

from ..errors import BadInput, first_line
from ..frameworks import require
from ..layouts import to_channels_first, to_channels_last
from . import Runner

SAFETY = "Keras load_model(safe_mode=True, compile=False)"


@contextmanager
def private_temp_folder():
    """Python's temp folder, for the duration, is a fresh one that is removed afterwards, whatever happened:
    Keras unpacks archives into temp folders and a failed load leaves them behind."""
    folder = tempfile.mkdtemp(prefix="wconv-keras-")
    previous = tempfile.tempdir
    tempfile.tempdir = folder
    try:
        yield folder
    finally:
        tempfile.tempdir = previous
        shutil.rmtree(folder, ignore_errors=True)


def load(path) -> Runner:
    keras = require("keras")
    try:
        with private_temp_folder():
            model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as error:  # Keras raises ValueError, TypeError, OSError... for bad files
        raise BadInput(f"{path}: Keras could not load it safely ({type(error).__name__}: {first_line(error)})") from None

    def run(network, inputs):
        """Canonical (channels-first) in and out; Keras itself sees channels-last."""
        inputs = [to_channels_last(x) for x in inputs]
        keyed = isinstance(_input_structure(network), dict)  # a model built with dict inputs
        feed = dict(zip(input_keys(path), inputs)) if keyed else inputs if len(inputs) > 1 else inputs[0]
        outputs = network(feed, training=False)
        if isinstance(outputs, dict):  # a model built with dict outputs: in the order it declares them
            outputs = list(outputs.values())
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return [to_channels_first(np.asarray(o)) for o in outputs]

    def capture(inputs):
        """Each layer's output, canonical. A Flatten of a feature map is recorded in the canonical (c, h, w)
        order, which is what its counterpart in a channels-first port computes; Keras' own is (h, w, c).
        A layer with ``activation=`` is recorded as ``<name>+activation``, as torch records its fused calls."""
        layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer" and _single_output(layer)]
        tensors = [layer.input if _flattens_feature_map(layer) else layer.output for layer in layers]
        values = run(keras.Model(_input_structure(model), tensors), inputs)
        return {layer.name + (ACTIVATED if _fused_activation(layer) else ""):
                value.reshape(len(value), -1) if _flattens_feature_map(layer) else value
                for layer, value in zip(layers, values)}

    return Runner(lambda inputs: run(model, inputs), capture, SAFETY)


ACTIVATED = "+activation"  # the name suffix of a layer's output after its fused activation


def _input_structure(model):
    """``model.input`` (a dict for a model built with dict inputs), or the list of inputs where Keras has
    no such structure (a Sequential model raises ValueError)."""
    try:
        return model.input
    except (AttributeError, ValueError):
        return model.inputs


def input_keys(path) -> list[str]:
    """The keys of a dict-input model in the file's own order (which is wconv's input order); Keras may
    hand back the loaded model's dict in another."""
    from ..adapters.keras.config import parse_model
    from ..adapters.keras.files import open_keras

    return list(parse_model(open_keras(path).config).input_keys or {})


def _fused_activation(layer) -> bool:
    return getattr(layer, "activation", None) is not None and \
        getattr(layer.activation, "__name__", "linear") != "linear" and type(layer).__name__ != "Activation"


def _flattens_feature_map(layer) -> bool:
    return type(layer).__name__ == "Flatten" and len(layer.input.shape) >= 3


def _single_output(layer) -> bool:
    try:
        return not isinstance(layer.output, (list, tuple))
    except (AttributeError, ValueError):  # shared layers and nested models have no single output
        return False
