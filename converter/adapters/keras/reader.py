"""Keras file -> IR, through the op table. Never imports TensorFlow or Keras."""

from __future__ import annotations

from os import PathLike
from typing import Sequence
from ...progress import steps
from ...errors import BadInput, Unsupported, UnsupportedLayers, WeightMismatch, about, quoted
from ... import untrusted
from ...ir import Graph, Value, tie
from ... import relayout, views
from ...ops import KERAS_CLASSES, KerasLayer
from ...shapes import Shapes, finish
from ...flatten_rows import prefer
from . import chains
from .config import parse_model, snake_case
from .files import open_keras
from .subclass import layer_graph

CODE_LAYERS = {"Lambda": "holds Python code, which wconv never runs from a file",
               "TFOpLambda": "holds a TensorFlow op call, which wconv never runs from a file"}


def read(path: str | PathLike, module: str | None = None, input_shape: Sequence[int] | None = None) -> Graph:
    """Read a Keras ``.h5`` (Keras 2 or 3) or ``.keras`` file into the canonical IR. ``module`` names the class of a
    model that saves only its constructor's arguments (keras-hub's backbones): see subclass.py. ``input_shape``
    (without the batch axis, as Keras holds the input) fills the sizes a one-input model leaves free."""
    with untrusted.malformed_input(path):
        untrusted.open_input(path)  # parsed once in a limited child first
        with about(path):
            return _read(path, module, input_shape)


def _read(path, module=None, input_shape=None) -> Graph:
    keras_file = open_keras(path)
    if module:
        keras_file.config = layer_graph(module, keras_file.config)
    layout = parse_model(keras_file.config)
    for model, layers in layout.models.items():
        keras_file.weights.split(model, layers)
    if input_shape is not None:
        layout.inputs = _given_shapes(layout.inputs, input_shape)
    layout.layers = chains.merge(layout.layers)  # operation nodes that together are one op
    refuse_unsupported(layout.layers)
    consumers = relayout.consumers_of(layout.layers)

    def kind(value):  # for values whose layout is a choice: model inputs, Permute outputs
        return relayout.preferred_kind(consumers, value, lambda entry: KERAS_CLASSES.get(entry.class_name))

    inputs = [_input_value(v, kind(v.name)) for v in layout.inputs]
    shapes = Shapes(inputs)
    nodes, used, made, calls = [], set(), {}, {}
    path_keys = _keras3_path_keys(keras_file.config, layout)
    for index, entry in steps(enumerate(layout.layers), "reading Keras layers"):
        reader = KERAS_CLASSES[entry.class_name]
        owner = entry.weights_of or entry.name  # a shared layer's later call reads the first call's weights
        group = owner if owner in keras_file.weights.groups else path_keys.get(owner)
        used.add(group)
        stored = keras_file.weights.layer(group)
        weights = _name_weights(index, entry, stored, reader.keras_weight_names(entry.config))
        refuse_channels_first(entry)
        layer_inputs = list(entry.inputs)
        relayouts = relayout.conform(layer_inputs, reader.input_kind, shapes.layouts, "keras", made)
        shapes.add(relayouts)
        nodes.extend(relayouts)
        chosen = _chosen_layout(kind(entry.outputs[0]), shapes.of(layer_inputs)) if reader.free_layout else None
        layer = KerasLayer(entry.class_name, entry.name, entry.config, weights, layer_inputs, entry.outputs,
                           shapes.of(layer_inputs), shapes.layouts_of(layer_inputs), chosen,
                           str(keras_file.keras_version), entry.call_options, entry.constants)
        created = reader.from_keras(layer)
        if entry.weights_of:
            tie(created, calls[entry.weights_of])
        calls[entry.name] = created
        shapes.add(created)
        nodes.extend(created)
    unused = sorted(keras_file.weights.layers_with_weights() - used)
    if unused:
        raise WeightMismatch(f"weights stored for layers the model does not use: {unused}")
    graph = Graph(layout.name, inputs, layout.outputs, nodes,
                  source={"format": "keras", "keras_version": keras_file.keras_version, "layout": "channels_last",
                          "path": str(path), **_keyed(layout)})
    return prefer(finish(graph, "keras"), "torch")  # Flatten -> Dense rows in the canonical (torch) order


def _given_shapes(inputs: list[Value], given) -> list[Value]:
    """The inputs with ``given`` (Keras' order, no batch axis) for their shape: one shape for every input (a text
    model's token ids, segment ids and padding mask share their length). It must agree with every size each input
    declares, so a channels-first shape given for a channels-last model is caught, never transposed."""
    given = tuple(int(size) for size in given)
    for value in inputs:
        declared = tuple(value.shape[1:]) if value.shape is not None else None
        if declared is not None and (len(declared) != len(given) or any(
                size is not None and size != wanted for size, wanted in zip(declared, given))):
            which = f"input '{value.name}'" if len(inputs) > 1 else "input"
            raise BadInput(f"--input-shape {','.join(map(str, given))} does not fit the {which} the model declares, "
                           f"{tuple(declared)} (Keras' order, channels last; None is free)")
    return [Value(value.name, (None, *given), value.dtype, value.layout) for value in inputs]


def _input_value(value: Value, kind: str | None) -> Value:
    """A model input in IR order: Keras holds it in its view of the pattern its first layers compute on."""
    if value.shape is None:
        return value
    pattern = views.default(kind or views.CHANNELS_FIRST, len(value.shape))
    return Value(value.name, views.shape_from(value.shape, pattern, "keras"), layout=pattern)


def _chosen_layout(kind: str | None, input_shapes) -> str | None:
    """For a layer whose output layout is a choice (Permute): the pattern its consumers compute on."""
    if not input_shapes or input_shapes[0] is None:
        return None
    return views.default(kind or views.CHANNELS_FIRST, len(input_shapes[0]))


def _keyed(layout) -> dict:
    """The dict keys of a model built with dicts, kept so that a Keras port takes and gives the same dicts."""
    keys = {"input_keys": layout.input_keys, "output_keys": layout.output_keys}
    return {name: value for name, value in keys.items() if value}


def refuse_unsupported(entries) -> None:
    """One error listing every layer wconv cannot convert, by name and class."""
    listing = [(entry.name, entry.class_name, _problem(entry)) for entry in entries]
    problems = [f"{quoted(name)} ({quoted(kind, 60)[1:-1]}{': ' + problem if problem else ''})"
                for name, kind, problem in listing if problem is not None]
    if problems:
        raise UnsupportedLayers.of(problems, listing)


def _problem(entry) -> str | None:
    """Why wconv cannot convert this layer ('' where its class alone says it), or None."""
    if entry.class_name in CODE_LAYERS:
        return CODE_LAYERS[entry.class_name]
    if entry.class_name not in KERAS_CLASSES:
        return ""
    if (blocker := KERAS_CLASSES[entry.class_name].keras_blocker(entry.config)) is not None:
        return blocker
    if entry.call_problems:
        return f"called with {', '.join(entry.call_problems)}, not converted"
    return None


def refuse_channels_first(entry) -> None:
    if entry.config.get("data_format") == "channels_first":
        raise Unsupported(f"layer '{entry.name}' ({entry.class_name}): data_format='channels_first' is not "
                          "supported yet; wconv reads channels-last Keras models")


def _name_weights(index: int, entry, stored: list, expected: list[str]) -> dict:
    """Weights named by position in Keras' own order for the layer's class and config, never by the names
    the file stores: Keras 3 writes a DepthwiseConv2D's kernel into a legacy .h5 as 'kernel', and reading
    that name as a plain conv kernel converts to a wrong model. Where the expected names are paths of sub-layers
    (``_feedforward_layer_norm/0``: two layer norms' weights have the same shapes) a ``.keras`` file's must match."""
    if len(stored) != len(expected):
        raise WeightMismatch(
            f"weight count mismatch for layer #{index} (named {entry.name}): expected {len(expected)} "
            f"({', '.join(expected) or 'none'}), found {len(stored)}"
        )
    wrong = [f"{name} where {wanted} belongs" for wanted, (name, _) in zip(expected, stored)
             if "/" in wanted and name is not None and "/" in str(name) and str(name) != wanted]
    if wrong:
        raise WeightMismatch(f"layer #{index} (named {entry.name}) stores its weights in other sub-layers than its "
                             f"class has: {', '.join(wrong[:3])}")
    return {wanted: array for wanted, (_, array) in zip(expected, stored)}


def _keras3_path_keys(model: dict, layout) -> dict:
    """Layer name -> '@path:<key>' for .keras files whose weight groups lack a name attribute."""
    counts, keys = {}, {}
    classes = [layer["class_name"] for layer in model.get("config", {}).get("layers", [])]
    names = [layer.get("name") or layer["config"]["name"] for layer in model.get("config", {}).get("layers", [])]
    for class_name, name in zip(classes, names):
        base = snake_case(class_name)
        seen = counts.get(base, 0)
        counts[base] = seen + 1
        keys[name] = f"@path:{base}" + (f"_{seen}" if seen else "")
    return keys
