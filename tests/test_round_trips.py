"""Keras -> torch -> Keras and torch -> Keras -> torch give back the original weights exactly."""

from __future__ import annotations

import json

import numpy as np

import converter
from conftest import TORCH_MODELS, torch_generated
from models import keras_mlp

SIZES = (7, 5, 3)


def test_keras_torch_keras_restores_weights(tmp_path, keras):
    model = keras_mlp(keras, SIZES, activation="relu", use_bias=True, seed=21)
    model.save(tmp_path / "a.keras")
    converter.convert(tmp_path / "a.keras", tmp_path / "b.pt")
    converter.convert(tmp_path / "b.pt", tmp_path / "c.keras", module=f"{tmp_path / 'b.py'}:Model")
    back = keras.saving.load_model(tmp_path / "c.keras", compile=False)
    original = {layer.name: layer.get_weights() for layer in model.layers}
    restored = {layer.name: layer.get_weights() for layer in back.layers}
    for name, weights in original.items():
        assert len(restored[name]) == len(weights), name
        for before, after in zip(weights, restored[name]):
            assert before.shape == after.shape and np.array_equal(before, after), name


def test_torch_keras_torch_restores_state_dict(tmp_path, torch):
    from torch_models import MLP, seeded_state

    model = MLP(SIZES, activation="sigmoid", bias=False)
    state = seeded_state(model, seed=4)
    torch.save(state, tmp_path / "a.pt")
    args = json.dumps({"activation": "sigmoid", "bias": False})
    converter.convert(tmp_path / "a.pt", tmp_path / "b.keras", module=f"{TORCH_MODELS}:MLP", module_args=args)
    converter.convert(tmp_path / "b.keras", tmp_path / "c.pt")
    restored = torch.load(tmp_path / "c.pt", weights_only=True)
    original = [value for value in state.values()]
    assert [tuple(v.shape) for v in restored.values()] == [tuple(v.shape) for v in original]
    for before, after in zip(original, restored.values()):
        assert torch.equal(before, after)
    torch_generated(tmp_path / "c.pt")  # and the generated module loads it strictly


def test_ir_file_round_trip(tmp_path, keras):
    model = keras_mlp(keras, SIZES, activation="softmax", seed=8)
    model.save(tmp_path / "a.keras")
    graph = converter.read(tmp_path / "a.keras")
    converter.write(graph, tmp_path / "a.wconv")
    again = converter.read(tmp_path / "a.wconv")
    assert [(n.op, n.name, n.inputs, n.outputs, n.attrs, n.fused) for n in again.nodes] == \
        [(n.op, n.name, n.inputs, n.outputs, n.attrs, n.fused) for n in graph.nodes]
    for before, after in zip(graph.nodes, again.nodes):
        assert before.params.keys() == after.params.keys()
        assert all(np.array_equal(before.params[k], after.params[k]) for k in before.params)


def test_legacy_h5_output_and_safetensors_state_dict(tmp_path, keras):
    """Keras -> torch safetensors -> Keras legacy .h5, predictions checked at the end."""
    from conftest import assert_close, run_keras
    from models import batch

    model = keras_mlp(keras, SIZES, activation="selu", seed=12)
    model.save(tmp_path / "a.keras")
    converter.convert(tmp_path / "a.keras", tmp_path / "b.safetensors")
    converter.convert(tmp_path / "b.safetensors", tmp_path / "c.h5", module=f"{tmp_path / 'b.py'}:Model")
    x = batch(SIZES[0])
    assert_close(np.asarray(model(x)), run_keras(tmp_path / "c.h5", x))
