"""IR -> a Keras 3 model saved as ``.keras`` (or legacy ``.h5``), built with the Keras API."""

from __future__ import annotations

from os import PathLike
import copy
import inspect
import re

from ...progress import steps
from ...errors import Unsupported
from ...frameworks import require
from ...ir import Graph
from ... import views
from ...ops import OPS, KerasSpec
from ...ops.attention import ZEROS
from ...outputs import atomic_path
from ..fusion import fused_pairs
from ...flatten_rows import prefer
from . import legacy_h5


def build(graph: Graph):
    """The IR as an in-memory ``keras.Model`` with the converted weights set."""
    keras = require("keras")
    graph = prefer(copy.deepcopy(graph), "keras")  # Flatten -> Dense rows in Keras' order: no Permute
    tensors = {v.name: keras.Input(shape=views.shape_to(v.shape, v.layout, "keras")[1:], name=keras_name(v.name),
                                   dtype=v.dtype) for v in graph.inputs}
    built, shared = {}, graph.weight_owners()
    for name, spec, inputs, outputs in steps(keras_layers(graph, keras), "building Keras layers"):
        args = [tensors[value] for value in inputs]
        if spec is None:  # a relayout Keras has no use for: it holds both sides alike
            tensors[outputs[0]] = args[0]
            continue
        if spec.pre is not None:
            suffix = "crop" if spec.pre.class_name.startswith("Cropping") else \
                "pad" if "Padding" in spec.pre.class_name or spec.pre.class_name == "ops.Pad" else "pre"
            pre = keras_class(keras, spec.pre.class_name)(name=keras_name(f"{name}_{suffix}"), **spec.pre.config)
            args = [pre(args[0], **(spec.pre.call_options or {}))]
        if name in shared:  # a shared layer's later call: the first call's layer again, weights and all
            layer = built[shared[name]]
        else:
            layer = keras_class(keras, spec.class_name)(name=keras_name(name), **_config(keras, spec.config))
            built[name] = layer
        result = _call(layer, spec, args)
        if spec.post is not None:
            suffix = "crop" if spec.post.class_name.startswith("Cropping") else "post"
            result = keras_class(keras, spec.post.class_name)(name=keras_name(f"{name}_{suffix}"),
                                                              **spec.post.config)(result)
        tensors.update(zip(outputs, result if len(outputs) > 1 else [result]))
        if spec.weights and name not in shared:
            layer.set_weights(spec.weights)
    return keras.Model(_structure(graph, tensors, [v.name for v in graph.inputs], "input_keys"),
                       _structure(graph, tensors, graph.outputs, "output_keys"), name=keras_name(graph.name))


def _call(layer, spec: KerasSpec, args: list):
    """The layer applied to its IR inputs: positionally (in ``call_order``), some by keyword (one tensor, or a
    list), with plain options."""
    keywords = {key: [args[i] for i in index] if isinstance(index, list) else args[index]
                for key, index in (spec.call_keywords or {}).items()}
    keywords.update(spec.call_options or {})
    if spec.call_order:
        return layer(*[args[i] for i in spec.call_order], **keywords)
    if spec.call_keywords:
        return layer(args[0], **keywords)
    return layer(args[0] if len(args) == 1 else args, **keywords)


def _structure(graph: Graph, tensors: dict, names: list[str], keys: str):
    """One tensor, a list, or the dict a Keras source was built with (its keys recorded by the reader)."""
    keyed = graph.source.get(keys)
    if keyed and sorted(keyed.values()) == sorted(names):
        return {key: tensors[name] for key, name in keyed.items()}
    return [tensors[name] for name in names] if len(names) > 1 else tensors[names[0]]


def keras_layers(graph: Graph, keras):
    """(name, KerasSpec, inputs, outputs) per Keras layer; fused activations folded back where Keras can."""
    specs = _specs(graph)
    fused, folded = fused_pairs(graph), set()
    # a shared layer's calls are one Keras layer: an activation one call applies after it stays a layer of its own
    tied = graph.weight_owners()
    shared = set(tied) | set(tied.values())
    for node in graph.nodes:
        if node.name in folded:
            continue
        spec, outputs = specs[node.name], node.outputs
        activation = fused.get(node.name)
        if activation is not None and spec is not None and node.name not in shared and \
                _can_fold(keras, spec, specs[activation.name]):
            spec.config["activation"] = specs[activation.name].config["activation"]
            outputs = activation.outputs
            folded.add(activation.name)
        yield node.name, spec, node.inputs, outputs


def _specs(graph: Graph) -> dict:
    """Every node's KerasSpec, or one error listing every node Keras cannot express."""
    specs, problems = {}, []
    for node in graph.nodes:
        try:
            specs[node.name] = OPS[node.op].to_keras(node, graph)
        except Unsupported as error:
            problems.append(str(error))
    if problems:
        raise Unsupported(f"{len(problems)} layer(s) cannot be written to Keras: {'; '.join(problems)}")
    return specs


def _config(keras, config: dict) -> dict:
    """A spec's config with wrapped layers built (Bidirectional's ``layer``)."""
    return {key: getattr(keras.layers, value.class_name)(**value.config) if isinstance(value, KerasSpec) else value
            for key, value in config.items()}


def keras_class(keras, class_name: str):
    """A Keras layer class, or a class Keras ships outside ``keras.layers`` that ``load_model`` reads back with no
    custom objects: the operations Keras 3 saves in functional models as nodes of their own (``ops.Split``,
    ``ops.Pad`` with -inf before a max pool), and keras.applications' ConvNeXt LayerScale."""
    if is_keras3_only(class_name):
        import importlib

        module, _, name = SHIPPED_ELSEWHERE.get(class_name, f"keras.src.ops.numpy:{class_name[4:]}").partition(":")
        return getattr(importlib.import_module(module), name)
    return getattr(keras.layers, class_name)


def is_keras3_only(class_name) -> bool:
    return isinstance(class_name, str) and (class_name.startswith("ops.") or class_name in SHIPPED_ELSEWHERE)


SHIPPED_ELSEWHERE = {"LayerScale": "keras.src.applications.convnext:LayerScale",  # class -> module:class
                     "ops.Gelu": "keras.src.ops.nn:Gelu",
                     "ClassTokens": "converter.keras_layers:ClassTokens",
                     "PositionEmbedding": "converter.keras_layers:PositionEmbedding",
                     "ExplicitAttention": "converter.keras_layers:ExplicitAttention",
                     "TokenPositions": "converter.keras_layers:TokenPositions"}


def _can_fold(keras, spec, activation_spec) -> bool:
    takes_activation = "activation" in inspect.signature(keras_class(keras, spec.class_name).__init__).parameters
    return takes_activation and activation_spec.class_name == "Activation"


def write(graph: Graph, path: str | PathLike) -> None:
    """Save the IR as a Keras file that ``keras.saving.load_model`` opens with no custom objects; a model with
    class tokens or a position table holds wconv's own layers, which ``import converter.keras_layers`` registers."""
    if str(path).lower().endswith((".h5", ".hdf5")):
        _refuse_keras3_only(graph)
    model = build(graph)
    with atomic_path(path) as temp:
        model.save(temp)
        if str(path).lower().endswith((".h5", ".hdf5")):
            legacy_h5.rewrite(temp)  # loadable by Keras 2 (tf_keras) as well as Keras 3


def _refuse_keras3_only(graph: Graph) -> None:
    """A legacy .h5 is for Keras 2 as well, which has none of the classes Keras 3 ships outside keras.layers."""
    found = sorted(name for name, spec in _specs(graph).items() if spec is not None and
                   (is_keras3_only(spec.class_name) or spec.pre is not None and is_keras3_only(spec.pre.class_name)))
    # Keras 2's MultiHeadAttention averages every value for a query step masked whole, whatever its dropout
    found += sorted(node.name for node in graph.nodes if node.attrs.get("empty_rows") == ZEROS)
    if found:
        raise Unsupported(f"layer(s) {found} need Keras 3 (operation nodes, keras.applications' LayerScale, wconv's own "
                          "layers, an attention giving a query step masked whole no value), which a legacy .h5 "
                          "cannot hold for Keras 2; write .keras")


def keras_name(name: str) -> str:
    """Keras 3 refuses '/' in names; torch paths use '.'."""
    return re.sub(r"[^0-9A-Za-z_-]", "_", name)
