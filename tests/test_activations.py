"""Every activation, as a layer of its own and fused into the layer before it, in each direction."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

import converter
from conftest import RUNNERS, TARGET_SUFFIX, TORCH_MODELS, assert_predictions_match, run_torch_model
from models import ACTIVATIONS, batch, keras_mlp, onnx_mlp

SIZES = (7, 5, 3)


@pytest.mark.parametrize("target", ["torch", "onnx"])
@pytest.mark.parametrize("form", ["fused", "layer"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_keras_activation(activation, form, target, tmp_path, keras):
    model = keras_mlp(keras, SIZES, activation=activation, fused=form == "fused", seed=11)
    source = tmp_path / "source.keras"
    model.save(source)
    x = batch(SIZES[0])
    out = tmp_path / f"out{TARGET_SUFFIX[target]}"
    converter.convert(source, out)
    assert_predictions_match(np.asarray(model(x)), RUNNERS[target](out, x))


# FunctionalMLP covers the activations without the tanh-approximate GELU.
TORCH_CASES = [(a, "module") for a in ACTIVATIONS + ["gelu_tanh"]] + [(a, "functional") for a in ACTIVATIONS]


@pytest.mark.parametrize("target", ["keras", "onnx"])
@pytest.mark.parametrize("activation, form", TORCH_CASES, ids=[f"{a}-{f}" for a, f in TORCH_CASES])
def test_torch_activation(activation, form, target, tmp_path, torch):
    from torch_models import MLP, FunctionalMLP, seeded_state

    cls = MLP if form == "module" else FunctionalMLP
    model = cls(SIZES, activation=activation).eval()
    source = tmp_path / "source.pt"
    torch.save(seeded_state(model, seed=5), source)
    x = batch(SIZES[0])
    out = tmp_path / f"out{TARGET_SUFFIX[target]}"
    options = dict(module=f"{TORCH_MODELS}:{cls.__name__}", module_args=json.dumps({"activation": activation}))
    converter.convert(source, out, **options)
    assert_predictions_match(run_torch_model(model, x), RUNNERS[target](out, x))


@pytest.mark.parametrize("target", ["torch", "keras"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_onnx_activation(activation, target, tmp_path):
    source = tmp_path / "source.onnx"
    onnx.save(onnx_mlp(SIZES, activation=activation, seed=9), source)
    x = batch(SIZES[0])
    out = tmp_path / f"out{TARGET_SUFFIX[target]}"
    converter.convert(source, out)
    assert_predictions_match(RUNNERS["onnx"](source, x), RUNNERS[target](out, x))


def test_keras_fused_activation_stays_fused(tmp_path, keras):
    """Keras -> torch -> Keras gives back Dense(activation=...), not an extra Activation layer."""
    model = keras_mlp(keras, SIZES, activation="elu", fused=True, seed=2)
    model.save(tmp_path / "a.keras")
    converter.convert(tmp_path / "a.keras", tmp_path / "b.pt")
    converter.convert(tmp_path / "b.pt", tmp_path / "c.keras", module=f"{tmp_path / 'b.py'}:Model")
    back = keras.saving.load_model(tmp_path / "c.keras")
    assert [type(layer).__name__ for layer in back.layers] == ["InputLayer", "Dense", "Dense", "Dropout"]
    assert [layer.get_config()["activation"] for layer in back.layers[1:3]] == ["elu", "elu"]


class Gelus(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 6)
        self.exact = torch.nn.GELU()
        self.fc2 = torch.nn.Linear(6, 3)
        self.approximate = torch.nn.GELU(approximate="tanh")

    def forward(self, x):
        return self.approximate(self.fc2(self.exact(self.fc(x))))


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
@pytest.mark.parametrize("target", ["torch", "keras"])
def test_gelu_spelled_out_by_torch_onnx(target, dynamo, tmp_path):
    """Before opset 20 torch.onnx writes GELU with Erf (exact) or Tanh (approximate): read back as one GELU.
    The two exporters multiply by x and by 0.5 in different orders."""
    from conftest import assert_close
    from sequence_models import seeded

    model = seeded(Gelus())
    x = (np.random.default_rng(3).standard_normal((5, 4)) * 2).astype(np.float32)
    torch.onnx.export(model, (torch.from_numpy(x),), tmp_path / "a.onnx", dynamo=dynamo,
                      opset_version=18 if dynamo else 17, input_names=["x"])
    assert [(n.op, n.attrs.get("approximate")) for n in converter.read(tmp_path / "a.onnx").nodes] == \
        [("dense", None), ("gelu", "none"), ("dense", None), ("gelu", "tanh")]
    out = tmp_path / f"b{TARGET_SUFFIX[target]}"  # Keras: the tanh one as ops.gelu(approximate=True)
    converter.convert(tmp_path / "a.onnx", out)
    assert_close(run_torch_model(model, x), RUNNERS[target](out, x))
