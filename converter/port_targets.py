"""The model a port fills: the user's ``nn.Module`` or Keras model, read into the IR, and given its weights back.

A target is read on the source's input shapes with its own freshly made weights (``read_target``). Filling takes
the target's IR nodes holding the source's params and makes the target's own weights from them through the op
table: a torch state_dict under the module's own keys (``TorchTarget``), or each Keras layer's weights in its
order (``KerasTarget``, through the Keras writer's specs, Flatten -> Dense rows back in Keras' order). Either must
be exactly the target's: every tensor, no other, every shape.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import numpy as np

from . import api
from .errors import BadInput, ShapeMismatch, WeightMismatch, about
from .frameworks import quiet
from .ir import Graph, Node
from .ops import OPS

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


def read_target(into, into_args, source: Graph):
    """``into``: an nn.Module or keras.Model, a ``.keras``/``.h5`` file, or ``file.py:name``/``pkg.mod:name``
    naming a module class or a function that builds either (called with ``into_args``)."""
    from .adapters.torch import load_module

    shapes = trace_shapes(source)
    label = into if isinstance(into, str) else type(into).__name__
    if isinstance(into, str) and into.lower().endswith(KERAS_SUFFIXES) and Path(into).is_file():
        model = _load_keras(into)
    elif isinstance(into, str):
        with quiet():  # the user's code may import TensorFlow, whose import writes to stderr
            model = load_module(into, into_args, option="--into")
    else:
        model = into
    with about(f"--into {label}"):
        if _is_torch(model):
            return TorchTarget(model, [list(shape) for shape in shapes])
        if type(model).__module__.startswith(("keras", "tf_keras")) and hasattr(model, "get_layer"):
            return KerasTarget(model)
        raise BadInput(f"is a {type(model).__name__}, neither an nn.Module nor a keras.Model")


FREE_SIZE = 16  # a size the source leaves free (a sequence length), for tracing the target: no weight depends on it


def trace_shapes(source: Graph) -> list[tuple]:
    """The source's input shapes (IR order, no batch axis), a free size set to FREE_SIZE."""
    if any(value.shape is None for value in source.inputs):
        raise BadInput(f"the source's inputs have unknown ranks ({[v.name for v in source.inputs]}); "
                       "pass --input-shape")
    return [tuple(FREE_SIZE if size is None else size for size in value.shape[1:]) for value in source.inputs]


def free_sizes_filled(source: Graph) -> bool:
    return any(None in value.shape[1:] for value in source.inputs if value.shape is not None)


def _is_torch(model) -> bool:
    try:
        import torch
    except ImportError:
        return False
    return isinstance(model, torch.nn.Module)


def _load_keras(path):
    from .frameworks import require

    keras = require("keras")
    from . import keras_layers  # noqa: F401  (a model wconv wrote may hold wconv's own layers)

    return keras.saving.load_model(path, compile=False, safe_mode=True)  # the user's own model file


class TorchTarget:
    kind, suffixes = "torch", (".pt", ".pth", ".safetensors")

    def __init__(self, model, input_shapes):
        from .adapters.torch.reader import from_module

        self.model = model
        state = {key: value.detach().cpu().numpy() for key, value in model.state_dict().items()}
        self.graph = from_module(model, state, input_shapes=input_shapes)
        self.shapes = {key: tuple(value.shape) for key, value in state.items()}

    def weights(self, filled: dict[str, Node]) -> dict:
        """state_dict key -> array, for the target's layers holding the source's params."""
        weights = {}
        for node in filled.values():
            op = OPS[node.op]
            weights.update({f"{node.name}.{key}": value
                            for key, value in {**op.params_to("torch", node), **op.torch_buffers(node)}.items()})
        _check_keys(weights, self.shapes)
        return weights

    def write(self, weights: dict, out) -> None:
        from .adapters.torch.writer import save_state_dict

        save_state_dict(weights, out)


class KerasTarget:
    kind, suffixes = "keras", KERAS_SUFFIXES

    def __init__(self, model):
        self.model = model
        with tempfile.TemporaryDirectory() as folder:  # read as any Keras file is: by wconv's own reader
            path = Path(folder) / "target.keras"
            model.save(path)
            self.graph = api.read(path)
        self.graph.name = model.name

    def weights(self, filled: dict[str, Node]) -> dict:
        """Keras layer name -> its weights in Keras' order, made by the Keras writer's specs. A layer the reader
        split (SeparableConv2D: ``sep/depthwise`` then ``sep``) takes its nodes' weights in order."""
        from .flatten_rows import prefer

        graph = copy.deepcopy(self.graph)
        graph.nodes = [filled.get(node.name, node) for node in graph.nodes]
        graph = prefer(graph, "keras")  # Flatten -> Dense rows in Keras' order
        layers, weights = {layer.name for layer in self.model.layers}, {}
        for node in graph.nodes:
            if node.name in filled:
                owner = node.name if node.name in layers else node.name.partition("/")[0]
                weights.setdefault(owner, []).extend(OPS[node.op].to_keras(node, graph).weights or [])
        expected = {layer.name: [tuple(w.shape) for w in layer.weights] for layer in self.model.layers if layer.weights}
        made = {name: [tuple(np.shape(w)) for w in arrays] for name, arrays in weights.items()}
        if made != expected:
            missing = sorted(set(expected) - set(made))
            wrong = sorted(name for name in set(made) & set(expected) if made[name] != expected[name])
            raise WeightMismatch(f"the weights made do not fit the target's layers: not filled {missing}; "
                                 f"made but not in the target {sorted(set(made) - set(expected))}; "
                                 + "; ".join(f"{name} {made[name]}, the target's {expected[name]}" for name in wrong))
        return weights

    def write(self, weights: dict, out) -> None:
        from .adapters.keras import legacy_h5
        from .outputs import atomic_path

        for name, arrays in weights.items():
            self.model.get_layer(name).set_weights(arrays)
        with atomic_path(out) as temp:
            self.model.save(temp)
            if str(out).lower().endswith((".h5", ".hdf5")):
                legacy_h5.rewrite(temp)


def _check_keys(weights: dict, expected: dict) -> None:
    """The state_dict made is exactly the target's: every key, no other, every shape."""
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    wrong = sorted(key for key in set(weights) & set(expected) if tuple(np.shape(weights[key])) != expected[key])
    if missing or extra or wrong:
        details = [f"not filled: {missing}"] if missing else []
        details += [f"made but not in the target: {extra}"] if extra else []
        details += [f"{key} {tuple(np.shape(weights[key]))}, the target's {expected[key]}" for key in wrong]
        raise WeightMismatch(f"the weights made do not load into the target with strict=True: {'; '.join(details)}")


def fit(ours: Node, theirs: Node) -> Node:
    """The target layer holding the source layer's params (a bias the source does not have: zeros, the same
    layer)."""
    params = {}
    for name, mine in theirs.params.items():
        value = ours.params.get(name)
        if value is None:
            if name not in OPS[theirs.op].optional:
                raise WeightMismatch(f"'{ours.name}' has no {name} for '{theirs.name}'")
            value = np.zeros_like(mine)
        if tuple(value.shape) != tuple(mine.shape):
            raise ShapeMismatch(f"'{ours.name}' {name} {tuple(value.shape)} does not fit '{theirs.name}' "
                                f"{tuple(mine.shape)}")
        params[name] = np.asarray(value, dtype=mine.dtype)
    return Node(theirs.op, theirs.name, theirs.inputs, theirs.outputs, params, theirs.attrs, theirs.fused)
