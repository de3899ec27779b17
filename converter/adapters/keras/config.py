"""Turn a Keras model config into layers with their connections.

Understands Sequential and Functional configs in both the Keras 2 and Keras 3
serializations (inbound_nodes as nested lists, or as ``__keras_tensor__`` args).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ...errors import BadInput, Unsupported
from ...ir import Value

MODEL_CLASSES = ("Sequential", "Functional", "Model")


@dataclass
class LayerEntry:
    class_name: str
    name: str
    config: dict
    inputs: list[str]
    outputs: list[str]
    call_problems: list = field(default_factory=list)  # call arguments wconv does not convert (masks)
    call_options: dict = field(default_factory=dict)  # plain call arguments wconv converts (CALL_OPTIONS)
    constants: dict = field(default_factory=dict)  # position -> a number given in place of a tensor (x + 3.0)
    weights_of: str | None = None  # a shared layer's later call: the name of its first call, which holds the weights


@dataclass
class ModelLayout:
    name: str
    inputs: list[Value]
    outputs: list[str]
    layers: list[LayerEntry]  # InputLayers excluded
    # A Functional model built with dicts ({"image": x}, {"score": y}): key -> tensor name, in the model's order.
    input_keys: dict | None = None
    output_keys: dict | None = None
    # A model used as a layer (ConvNeXt's Sequential stem) -> the names of the layers read in line from it, at any
    # depth: a legacy .h5 keeps their weights in the model's one group.
    models: dict[str, set[str]] = field(default_factory=dict)


def parse_model(model: dict) -> ModelLayout:
    class_name = model.get("class_name")
    config = model.get("config", {})
    _check_layers(config)
    if class_name == "Sequential":
        return _sequential(config)
    if class_name in ("Functional", "Model"):
        return _functional(config)
    raise Unsupported(f"model class '{str(class_name)[:60]}' saves its constructor's arguments, not its layers "
                      "(Sequential and Functional models save their layers); pass --module naming its class (e.g. "
                      f"keras_hub.models:{str(class_name)[:60]}) to build it and read its layers")


def _check_layers(config) -> None:
    """The shape of a model config as wconv reads it, checked before it is read: each layer a JSON object
    with a class name, a config object and a name; batch shapes lists of sizes. Names the first bad layer."""
    if not isinstance(config, dict) or not isinstance(config.get("layers", []), list):
        raise BadInput("the model config has no list of layers")
    for index, layer in enumerate(config.get("layers", [])):
        problem = _layer_problem(layer)
        if problem:
            raise BadInput(f"layer #{index} of the model config: {problem}")


def _layer_problem(layer) -> str | None:
    if not isinstance(layer, dict):
        return f"a JSON {type(layer).__name__}, not an object"
    if not isinstance(layer.get("class_name"), str):
        return "no class_name"
    if not isinstance(layer.get("config"), dict):
        return f"'{str(layer['class_name'])[:60]}' without a config object"
    name = layer.get("name") or layer["config"].get("name")
    if not isinstance(name, str) or not name:
        return f"'{layer['class_name'][:60]}' without a name"
    shape = layer["config"].get("batch_shape") or layer["config"].get("batch_input_shape")
    if shape is not None and not (isinstance(shape, list) and
                                  all(d is None or (isinstance(d, int) and d >= 0) for d in shape)):
        return f"'{name[:60]}' has batch shape {str(shape)[:60]}, not a list of sizes"
    if not isinstance(layer.get("inbound_nodes", []), list):
        return f"'{name[:60]}' has inbound_nodes that are not a list"
    return None


def _sequential(config: dict) -> ModelLayout:
    layers = config.get("layers", [])
    shape = config.get("build_input_shape")
    input_name = "input"
    if layers and layers[0]["class_name"] == "InputLayer":
        first = layers.pop(0)["config"]
        shape, input_name = _batch_shape(first), first.get("name", input_name)
    elif layers:
        shape = _batch_shape(layers[0]["config"]) or shape
    if shape is None:
        raise BadInput("the Sequential model records no input shape (it was never built)")
    entries, previous = [], input_name
    for layer in layers:
        name = layer["config"]["name"]
        entries.append(LayerEntry(class_name(layer), name, layer["config"], [previous], [name]))
        previous = name
    return ModelLayout(config.get("name", "model"), [Value(input_name, tuple(shape))], [previous], entries)


def _functional(config: dict) -> ModelLayout:
    inputs, entries, aliases = [], [], {}  # aliases: a nested model's output tensor -> the inner tensor it is
    models = {}  # a model used as a layer -> its layers' names (ModelLayout.models)
    for layer in config.get("layers", []):
        name = layer.get("name") or layer["config"]["name"]
        if layer["class_name"] == "InputLayer":
            inputs.append(Value(name, tuple(_batch_shape(layer["config"]))))
            continue
        calls = layer.get("inbound_nodes", [])
        if not calls or len(calls) > 1 and layer["class_name"] in MODEL_CLASSES:
            raise Unsupported(f"layer '{name}' ({layer['class_name']}) is called {len(calls)} times; a model used "
                              "as a layer converts when it is called once")
        if layer["class_name"] in MODEL_CLASSES:  # a model used as a layer: its layers, in line
            inlined = _inline(name, layer, _call_inputs(calls[0]), aliases)
            models[name] = {entry.name for entry in inlined}
            entries.extend(inlined)
            continue
        for index, call in enumerate(calls):  # a shared layer: one entry per call, the later ones tied to the first
            called = call_name(name, index)
            entries.append(LayerEntry(class_name(layer), called, layer["config"], _call_inputs(call), [called],
                                      call_problems(call), call_options(call), _constants(call),
                                      name if index else None))
    for entry in entries:
        entry.inputs = [aliases.get(tensor, tensor) for tensor in entry.inputs]
    entries = _in_call_order(entries, {value.name for value in inputs})
    outputs = [_tensor_name(ref) for ref in _references(config.get("output_layers", []))]
    outputs = [aliases.get(tensor, tensor) for tensor in outputs]
    ordered = [_tensor_name(ref) for ref in _references(config.get("input_layers", []))]
    by_name = {value.name: value for value in inputs}
    missing = [name for name in ordered if name not in by_name]
    if missing:
        raise BadInput(f"the model's inputs {missing} are not InputLayers of it")
    return ModelLayout(config.get("name", "model"), [by_name[n] for n in ordered] or inputs, outputs, entries,
                       _keys(config.get("input_layers")), _keys(config.get("output_layers")), models)


def _inline(name: str, layer: dict, inputs: list[str], aliases: dict) -> list[LayerEntry]:
    """A nested model's layers (ConvNeXt's Sequential stem), reading the outer call's tensors; its outputs become
    aliases of the outer layer's. Its layers keep their own names, which its weights are stored under."""
    inner = parse_model({"class_name": layer["class_name"], "config": layer["config"]})
    if len(inner.inputs) != len(inputs):
        raise BadInput(f"layer '{name}' ({layer['class_name']}): takes {len(inner.inputs)} inputs, called with "
                       f"{len(inputs)}")
    given = {value.name: outer for value, outer in zip(inner.inputs, inputs)}
    for entry in inner.layers:
        entry.inputs = [given.get(tensor, tensor) for tensor in entry.inputs]
    for index, tensor in enumerate(inner.outputs):
        aliases[name if index == 0 else f"{name}:{index}"] = given.get(tensor, tensor)
    return inner.layers


def _keys(refs) -> dict | None:
    """key -> tensor name for the dict form of input_layers/output_layers."""
    if not isinstance(refs, dict):
        return None
    return {str(key): _tensor_name(ref) for key, ref in refs.items()}


def _batch_shape(config: dict):
    shape = config.get("batch_shape") or config.get("batch_input_shape")
    return tuple(shape) if shape else None


# Tensors a layer may take by keyword, in the order they follow its positional ones (attention's value, key and
# mask; a recurrent layer's initial states; keras-hub's transformer layers' padding masks). A layer told of a mask
# finds it last (call_options).
MASK_KEYWORDS = ("attention_mask", "padding_mask", "decoder_padding_mask")
TENSOR_KEYWORDS = ("value", "key", "initial_state", *MASK_KEYWORDS)


def _call_inputs(call) -> list[str]:
    if isinstance(call, dict):  # Keras 3: {"args": [tensor or [tensors]], "kwargs": {}}
        tensors = keras3_tensors(call.get("args", []))
        tensors += [t for key in TENSOR_KEYWORDS for t in keras3_tensors([call.get("kwargs", {}).get(key)])]
        return [_tensor_name(t["config"]["keras_history"]) for t in tensors]
    # Keras 2: [[layer, node, tensor, kwargs], ...]; a second tensor may come as kwargs {"value": [layer, node, tensor]}
    names = [_tensor_name(ref) for ref in call]
    keywords = call[0][3] if call and len(call[0]) > 3 and isinstance(call[0][3], dict) else {}
    return names + [_tensor_name(ref) for key in TENSOR_KEYWORDS if isinstance(keywords.get(key), list)
                    for ref in _references(keywords[key])]


# Plain call arguments that change what a layer computes and that wconv converts -> their types: MultiHeadAttention's
# causal mask, ops.pad's fill value, ops.take's index
CALL_OPTIONS = {"use_causal_mask": bool, "constant_values": (int, float), "indices": int,
                "x2": (int, float)}  # ops.not_equal(x, x2=0): a padding mask (ops/padding_mask.py)


def _call_keywords(call) -> dict:
    return call.get("kwargs", {}) if isinstance(call, dict) else \
        (call[0][3] if call and len(call[0]) > 3 and isinstance(call[0][3], dict) else {})


def call_problems(call) -> list[str]:
    """Call arguments that change what a layer computes and that wconv does not convert (masks)."""
    return [f"{key}={'a tensor' if isinstance(value, (dict, list)) else repr(value)}"
            for key, value in _call_keywords(call).items()
            if key not in TENSOR_KEYWORDS + ("training",) and value is not None and value is not False
            and not _option(key, value)]  # not "in (None, False)": 0 == False, and x2=0 is an argument


def call_options(call) -> dict:
    """Plain options (CALL_OPTIONS) and, for a mask passed as a tensor, ``{keyword: True}``."""
    keywords = _call_keywords(call)
    options = {key: value for key, value in keywords.items() if _option(key, value)}
    return options | {key: True for key in MASK_KEYWORDS if isinstance(keywords.get(key), (dict, list))}


def _option(key, value) -> bool:
    return key in CALL_OPTIONS and isinstance(value, CALL_OPTIONS[key]) and not isinstance(value, (dict, list))


WCONV_PACKAGE = "wconv"  # converter.keras_layers.PACKAGE (not imported: it imports Keras)


def class_name(layer: dict) -> str:
    """A layer's class, or ``ops.<Class>`` for an operation Keras 3 records as a node of its own (``x + 3.0``,
    ``ops.split``): ``ops.Add`` is not the ``Add`` layer. A ``.keras`` file says so by the node's module. A legacy
    ``.h5`` has no modules; there, a node Keras 3 wrote (its calls are ``{"args": ..., "kwargs": ...}`` records) is an
    operation when its config lacks the "trainable" that every Keras 3 layer's and model's config holds.

    A class registered by a package of its own keeps its registered name, ``keras_hub>PositionEmbedding``: it is
    not wconv's ``PositionEmbedding`` (another config, other weights, another function), whose registered name
    ``wconv>PositionEmbedding`` reads as the class wconv's op table names."""
    registered = layer.get("registered_name")
    if isinstance(registered, str) and ">" in registered:
        package, _, name = registered.partition(">")
        return name if package == WCONV_PACKAGE else registered
    module = layer.get("module")
    if isinstance(module, str):
        return f"ops.{layer['class_name']}" if module.startswith("keras.src.ops.") else layer["class_name"]
    keras3 = any(isinstance(call, dict) for call in layer.get("inbound_nodes", []))
    return f"ops.{layer['class_name']}" if keras3 and "trainable" not in layer["config"] else layer["class_name"]


def _constants(call) -> dict:
    """Numbers a Keras 3 operation was called with in place of a tensor, by position (``ops.add(x, 3.0)``), and an
    index of whole slices and numbers (``x[:, 0, :]``, an ``ops.GetItem``) as a tuple, a whole slice as None."""
    if not isinstance(call, dict):
        return {}
    found = {index: float(arg) for index, arg in enumerate(call.get("args", []))
             if isinstance(arg, (int, float)) and not isinstance(arg, bool)}
    return found | {index: key for index, arg in enumerate(call.get("args", []))
                    if isinstance(arg, list) and (key := _index_key(arg)) is not None}


def _index_key(items: list) -> tuple | None:
    """``[{"class_name": "__slice__", "config": {all None}}, 0, ...]`` -> ``(None, 0, ...)``; None for anything
    else (a partial slice, a tensor, a list of numbers alone)."""
    key = []
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool):
            key.append(item)
        elif isinstance(item, dict) and item.get("class_name") == "__slice__" and \
                isinstance(item.get("config"), dict) and all(v is None for v in item["config"].values()):
            key.append(None)
        else:
            return None
    return tuple(key) if None in key else None


def keras3_tensors(args) -> list:
    """The ``__keras_tensor__`` records in a Keras 3 call's (nested) args."""
    found = []
    for arg in args:
        if isinstance(arg, dict) and arg.get("class_name") == "__keras_tensor__":
            found.append(arg)
        elif isinstance(arg, list):
            found.extend(keras3_tensors(arg))
    return found


def _references(refs) -> list:
    """``["x", 0, 0]``, ``[["x", 0, 0], ...]`` or ``{"key": ["x", 0, 0], ...}`` -> list of references."""
    if isinstance(refs, dict):
        return list(refs.values())
    if refs and isinstance(refs[0], str):
        return [refs]
    return list(refs)


def _tensor_name(ref) -> str:
    layer, node, tensor = ref[0], ref[1], ref[2]
    called = call_name(layer, node if isinstance(node, int) else 0)
    return called if tensor == 0 else f"{called}:{tensor}"


def call_name(layer: str, index: int) -> str:
    """The name of a layer's ``index``-th call: the layer's own for the first, ``name#2`` for the second (as torch
    modules called again are named)."""
    return layer if index == 0 else f"{layer}#{index + 1}"


def _in_call_order(entries: list, available: set) -> list:
    """``entries`` ordered so that each comes after the entries producing its inputs: a shared layer's later call
    may read layers that the config lists after the layer. The config's order is kept where it already fits."""
    produced = {output for entry in entries for output in entry.outputs}
    done, ordered, waiting = set(available), [], list(entries)
    while waiting:
        ready = next((entry for entry in waiting
                      if all(base(tensor) in done or base(tensor) not in produced for tensor in entry.inputs)), None)
        if ready is None:
            return ordered + waiting  # a cycle or a dangling input: the reader names it
        waiting.remove(ready)
        ordered.append(ready)
        done.update(base(output) for output in ready.outputs)
    return ordered


def base(tensor: str) -> str:
    """A layer output's name without its tensor index (``split:1`` -> ``split``)."""
    return tensor.rsplit(":", 1)[0] if ":" in tensor and tensor.rsplit(":", 1)[1].isdigit() else tensor


def snake_case(class_name: str) -> str:
    """Keras 3's path name for a class (``LeakyReLU`` -> ``leaky_re_lu``)."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()
