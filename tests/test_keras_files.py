"""Keras files are read as data: Keras 2 and 3 .h5 and .keras, with no TensorFlow import."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import converter
from conftest import ROOT, assert_close, run_torch
from models import batch, keras_mlp

SEED_MLP = ROOT / "fixtures" / "seed_mlp.h5"

NO_FRAMEWORK_READ = """
import sys
from converter.adapters import keras
from converter.inspect import inspect_file
graph = keras.read(sys.argv[1])
description = inspect_file(sys.argv[1])
loaded = sorted(m for m in ("tensorflow", "keras", "tf_keras", "torch") if m in sys.modules)
assert not loaded, f"reading imported {loaded}"
print(len(graph.nodes), description["parameters"])
"""


def test_keras2_fixture_is_read_without_tensorflow():
    """In a fresh interpreter: read and inspect the Keras 2 .h5, then check sys.modules."""
    result = subprocess.run([sys.executable, "-c", NO_FRAMEWORK_READ, str(SEED_MLP)], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["4", str(2000 * 32 + 32 + 32 + 1)]


def test_keras2_fixture_is_the_classic_model():
    graph = converter.read(SEED_MLP)
    assert graph.source["keras_version"].startswith("2.")
    assert [(n.op, n.params["kernel"].shape if n.params else None) for n in graph.nodes] == [
        ("dense", (32, 2000)), ("relu", None), ("dense", (1, 32)), ("sigmoid", None)]


def test_keras2_fixture_predictions_match_in_torch(tmp_path, keras):
    x = batch(2000)
    expected = np.asarray(keras.saving.load_model(SEED_MLP, compile=False, safe_mode=True)(x))
    converter.convert(SEED_MLP, tmp_path / "seed.pt")
    assert_close(expected, run_torch(tmp_path / "seed.pt", x))


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
@pytest.mark.parametrize("kind", ["sequential", "functional"])
def test_keras3_files(kind, suffix, tmp_path, keras):
    model = keras_mlp(keras, (7, 5, 3), activation="tanh", seed=1)
    if kind == "sequential":
        model = keras.Sequential([keras.Input((7,)), *model.layers[1:]])
    path = tmp_path / f"model{suffix}"
    model.save(path)
    x = batch(7)
    converter.convert(path, tmp_path / "out.pt")
    assert_close(np.asarray(model(x)), run_torch(tmp_path / "out.pt", x))


def test_keras2_functional_h5(tmp_path):
    """Keras 2's functional config (nested-list inbound_nodes), made with tf_keras."""
    import tf_keras

    inputs = tf_keras.Input((7,), name="x")
    hidden = tf_keras.layers.Dense(5, activation="gelu", name="hidden")(inputs)
    outputs = tf_keras.layers.LeakyReLU(alpha=0.25, name="leaky")(tf_keras.layers.Dense(3, name="out")(hidden))
    model = tf_keras.Model(inputs, outputs)
    rng = np.random.default_rng(3)
    model.set_weights([rng.standard_normal(w.shape).astype("float32") for w in model.get_weights()])
    model.save(tmp_path / "k2.h5")
    x = batch(7)
    converter.convert(tmp_path / "k2.h5", tmp_path / "out.pt")
    assert_close(model.predict(x, verbose=0), run_torch(tmp_path / "out.pt", x))
