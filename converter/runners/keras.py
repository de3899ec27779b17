"""Run a Keras file with Keras itself, ``safe_mode=True`` (no deserialized Python code)."""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager

import numpy as np

from ..errors import BadInput, WconvError, first_line
from ..frameworks import require
from ..views import from_framework, to_framework, view
from . import ACTIVATED, Interface, Runner, known_pattern

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


def load(path, module: str | None = None, module_option: str = "--module", input_shape=None) -> Runner:
    """``module``: the class of a model that saves its constructor's arguments (a keras-hub backbone), as for
    reading it: imported, so that Keras finds the classes the file names; Keras builds it from the file's arguments."""
    keras = require("keras")
    from .. import keras_layers  # noqa: F401  (registers wconv's own layers, which a ViT port holds)

    if module:
        from ..adapters.torch.module import named

        named(module, module_option)

    try:
        with private_temp_folder():
            model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as error:  # Keras raises ValueError, TypeError, OSError... for bad files
        raise BadInput(f"{path}: Keras could not load it safely ({type(error).__name__}: {first_line(error)})") from None

    graph = _own_graph(path, module, input_shape)
    interface = Interface.of(graph) if graph is not None else Interface()

    def run(network, inputs, patterns=None):
        """IR order in and out; Keras itself sees its view of each value (``patterns``: of the outputs)."""
        inputs = [to_framework(x, interface.input(i, x.ndim), "keras") for i, x in enumerate(inputs)]
        keyed = isinstance(_input_structure(network), dict)  # a model built with dict inputs
        feed = dict(zip(input_keys(path, module), inputs)) if keyed else inputs if len(inputs) > 1 else inputs[0]
        outputs = network(feed, training=False)
        if isinstance(outputs, dict):  # a model built with dict outputs: in the order it declares them
            outputs = list(outputs.values())
        outputs = [np.asarray(o) for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]
        patterns = patterns or [interface.output(i, o.ndim) for i, o in enumerate(outputs)]
        return [from_framework(o, pattern, "keras") for o, pattern in zip(outputs, patterns)]

    def capture(inputs):
        """Each layer's output in IR order. A Flatten of a value Keras holds otherwise than the IR (a feature
        map) is recorded in the IR's (c, h, w) order, which is what its counterpart in a torch port computes;
        Keras' own is (h, w, c). A layer with ``activation=`` is recorded as ``<name>+activation``, as torch
        records its fused calls. A layer wconv reads as several nodes (keras-hub's TransformerEncoder) is recorded
        under the name of the node that gives its output, which a port keeps."""
        layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer" and _single_output(layer)]
        recorded = _recorded_names(graph)
        flattens = {layer.name: _flattened_layout(graph, layer) for layer in layers}
        tensors = [layer.input if flattens[layer.name] else layer.output for layer in layers]
        patterns = [flattens[layer.name] or _layout_of(graph, layer) for layer in layers]
        values = run(keras.Model(_input_structure(model), tensors), inputs, patterns)
        return {recorded[layer.name] if layer.name in recorded else
                layer.name + (ACTIVATED if _fused_activation(layer) else ""):
                value.reshape(len(value), -1) if flattens[layer.name] else value
                for layer, value in zip(layers, values)}

    return Runner(lambda inputs: run(model, inputs), capture, SAFETY, "keras")


def _input_structure(model):
    """``model.input`` (a dict for a model built with dict inputs), or the list of inputs where Keras has
    no such structure (a Sequential model raises ValueError)."""
    try:
        return model.input
    except (AttributeError, ValueError):
        return model.inputs


def input_keys(path, module: str | None = None) -> list[str]:
    """The keys of a dict-input model in the file's own order (which is wconv's input order); Keras may
    hand back the loaded model's dict in another. ``module``: as for reading the file (subclass.py)."""
    from ..adapters.keras.config import parse_model
    from ..adapters.keras.files import open_keras
    from ..adapters.keras.subclass import layer_graph

    config = open_keras(path).config
    return list(parse_model(layer_graph(module, config) if module else config).input_keys or {})


def _fused_activation(layer) -> bool:
    """A layer applying ``activation=`` after its own computation (Dense, Conv). A recurrent layer's activation
    acts inside its cell (it has no output before it), so it is not one."""
    recurrent = hasattr(layer, "cell") or hasattr(layer, "forward_layer")
    return getattr(layer, "activation", None) is not None and not recurrent and \
        getattr(layer.activation, "__name__", "linear") != "linear" and type(layer).__name__ != "Activation"


def _recorded_names(graph) -> dict:
    """Keras layer (its output value's name) -> the IR node giving that value, where no node has the layer's name:
    the last of the nodes a composite layer is read as."""
    if graph is None:
        return {}
    named = {node.name for node in graph.nodes}
    return {node.outputs[0]: node.name for node in graph.nodes if node.outputs and node.outputs[0] not in named}


def _own_graph(path, module=None, input_shape=None):
    """wconv's reading of the file (no TensorFlow), for each value's axis pattern; None if wconv cannot read it."""
    from ..adapters.keras.reader import read

    try:
        return read(path, module, input_shape)
    except WconvError:
        return None


def _layout_of(graph, layer) -> str | None:
    pattern = graph.layout(layer.name) if graph is not None else None
    return known_pattern([pattern], 0, len(layer.output.shape))


def _flattened_layout(graph, layer) -> str | None:
    """For a Flatten of a value Keras holds otherwise than the IR: the pattern of that value."""
    if type(layer).__name__ != "Flatten":
        return None
    node = next((n for n in graph.nodes if n.name == layer.name), None) if graph is not None else None
    pattern = known_pattern([graph.layout(node.inputs[0]) if node else None], 0, len(layer.input.shape))
    return pattern if view(pattern, "keras") != pattern else None


def _single_output(layer) -> bool:
    try:
        return not isinstance(layer.output, (list, tuple))
    except (AttributeError, ValueError):  # shared layers and nested models have no single output
        return False
