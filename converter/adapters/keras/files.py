"""Open Keras files as data: the model config (JSON) and each layer's weights (HDF5).

Handles legacy ``.h5`` written by Keras 2 (tf.keras / tf_keras) and Keras 3, and
the Keras 3 ``.keras`` zip. Uses h5py, zipfile and json only: no TensorFlow.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass

import h5py
import numpy as np

from ...errors import BadInput, WeightMismatch, first_line, quoted
from ...limits import Budget, check_config_size
from .hdf5 import check_file, read_text_attribute

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


@dataclass
class KerasFile:
    config: dict  # {"class_name": ..., "config": {...}}
    keras_version: str
    weights: "WeightSource"


class WeightSource:
    """Weights per layer name, as ``[(stored name or None, array), ...]`` in Keras' order."""

    def __init__(self, groups: dict[str, list]):
        self.groups = groups

    def layer(self, name: str) -> list:
        return self.groups.get(name, [])

    def layers_with_weights(self) -> set[str]:
        return {name for name, weights in self.groups.items() if weights}

    def split(self, model: str, layers: set[str]) -> None:
        """A legacy .h5 keeps a model used as a layer (ConvNeXt's Sequential stem) as one group holding its layers'
        weights, all the trainable ones first ('stem/bn/gamma', 'stem/conv/kernel', 'stem/bn/moving_mean'): each
        goes to the layer its path names (Keras 3 writes the models' names before it, Keras 2 does not), in the order
        stored, which is that layer's own. A .keras file has no such group."""
        for name, array in self.groups.pop(model, []):
            owner = next((part for part in str(name).split("/")[:-1] if part in layers), None)
            if owner is None:
                raise WeightMismatch(f"weight {quoted(name)} of {quoted(model)} (a model used as a layer) names none "
                                     "of its layers")
            self.groups.setdefault(owner, []).append((name, array))


def open_keras(path) -> KerasFile:
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head == HDF5_SIGNATURE:
        return _open_h5(path)
    if head[:4] == b"PK\x03\x04":
        return _open_zip(path)
    raise BadInput(f"{path}: not a Keras file (neither HDF5 nor a .keras zip)")


def _open_h5(path) -> KerasFile:
    try:
        with h5py.File(path, "r") as f:
            if "model_config" not in f.attrs:
                raise BadInput(f"{path}: HDF5 file without a model config (weights-only .h5 needs an architecture)")
            check_file(f, Budget(path))
            config = _config(read_text_attribute(f, "model_config", "model_config"))
            version = read_text_attribute(f, "keras_version", "keras_version") if "keras_version" in f.attrs \
                else "unknown"
            root = f["model_weights"] if "model_weights" in f else f
            groups = {name: _h5_layer_weights(root[name]) for name in root if isinstance(root[name], h5py.Group)}
    except (OSError, KeyError, ValueError) as error:
        raise BadInput(f"{path}: unreadable HDF5 ({first_line(error)})") from None
    return KerasFile(config, version, WeightSource(groups))


def _h5_layer_weights(group) -> list:
    names = [_text(n) for n in group.attrs.get("weight_names", [])]
    # Keras 2 writes 'dense/kernel:0'; Keras 3 writes 'dense/kernel' (under the names of the models holding the layer).
    return [(name, np.asarray(group[name])) for name in names]


def _open_zip(path) -> KerasFile:
    budget = Budget(path)
    try:
        with zipfile.ZipFile(path) as archive:
            members = {info.filename: info for info in archive.infolist()}
            if "config.json" not in members:
                raise BadInput(f"{path}: zip without config.json (not a .keras file)")
            for name in ("config.json", "metadata.json"):
                if name in members:
                    check_config_size(name, members[name].file_size)
            for name, info in members.items():  # declared sizes, before inflating anything (Keras unpacks assets)
                budget.declare(name, (info.file_size,), 1)
            config = _config(archive.read("config.json"))
            metadata = _config(archive.read("metadata.json")) if "metadata.json" in members else {}
            weights = archive.read("model.weights.h5") if "model.weights.h5" in members else None
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise BadInput(f"{path}: unreadable .keras zip ({first_line(error)})") from None
    if weights is None:
        raise BadInput(f"{path}: .keras zip without model.weights.h5")
    try:
        with h5py.File(io.BytesIO(weights), "r") as f:
            check_file(f, Budget(path))
            groups = _keras3_groups(f)
    except (OSError, KeyError, ValueError) as error:
        raise BadInput(f"{path}: unreadable model.weights.h5 ({first_line(error)})") from None
    return KerasFile(config, metadata.get("keras_version", "3"), WeightSource(groups))


def _keras3_groups(f) -> dict:
    """Keras 3 keys weight groups by class-derived paths (layers/dense_1/vars/0).

    The layer name is in the ``vars`` group's ``name`` attribute (Keras >= 3.?);
    files without it are matched by position later (see ``config.py``).
    """
    groups = {}
    layers = f.get("layers", {})
    for key in layers:
        vars_group = layers[key].get("vars")
        if vars_group is None:
            continue
        if isinstance(layers[key].get("layers"), h5py.Group) and not len(vars_group):
            groups.update(_keras3_groups(layers[key]))  # a nested model: its layers, which the reader reads in line
            continue
        name = _text(vars_group.attrs.get("name", f"@path:{key}"))
        groups[name] = _variables(layers[key])
    return groups


# Sub-layers in the order Keras lists their weights (a recurrent layer's cell, a Bidirectional's two layers,
# attention's projections); any other sub-layer after these, by name.
SUB_LAYER_ORDER = ("cell", "forward_layer", "backward_layer", "query_dense", "key_dense", "value_dense",
                   "output_dense")


def _sub_layer_rank(key: str) -> tuple:
    return SUB_LAYER_ORDER.index(key) if key in SUB_LAYER_ORDER else len(SUB_LAYER_ORDER), key


def stored_order(paths: list[str]) -> list[str]:
    """Variable paths under a layer (``mlp/dense_1/0``) in the order ``_variables`` lists them: at each level the
    layer's own variables by index, then its sub-layers by rank and name."""
    def rank(path):
        *groups, index = path.split("/")
        return [(1, *_sub_layer_rank(group)) for group in groups] + [(0, int(index))]

    return sorted(paths, key=rank)


def _variables(group, path: str = "") -> list:
    """A layer's own variables (stored name None), then those of its sub-layers (an LSTM keeps its weights in its
    cell), each named by its path under the layer (``_self_attention_layer/query_dense/0``): a layer whose weight
    names are paths (keras-hub's composite layers) has them checked against these."""
    found = [(f"{path}{index}" if path else None, np.asarray(group["vars"][index]))
             for index in sorted(group.get("vars", {}), key=int)]
    children = [key for key in group if key != "vars" and isinstance(group[key], h5py.Group)]
    for key in sorted(children, key=_sub_layer_rank):
        found.extend(_variables(group[key], f"{path}{key}/"))
    return found


def _config(text) -> dict:
    """A JSON object from the file; anything else is not a Keras config."""
    config = json.loads(text)
    if not isinstance(config, dict):
        raise BadInput(f"the model config is a JSON {type(config).__name__}, not an object")
    return config


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
