"""Real models that users brought and wconv refused or ported poorly (issue 19 §3), each pinned against the real
frameworks."""

from __future__ import annotations

import numpy as np
import pytest

import converter
import keras_convnets
import torch_convnets
from conftest import TESTS, assert_close
from test_convnets import canonical_input, keras_outputs, run_target, torch_outputs


def keras_training_only_layers(keras):
    """Every Keras layer that acts only in training, between a conv and a Dense."""
    inputs = keras.Input((9, 7, 3))
    x = keras.layers.Conv2D(4, (3, 2), name="conv")(inputs)
    x = keras.layers.SpatialDropout2D(0.4, name="spatial")(x)
    x = keras.layers.GaussianNoise(0.3, name="noise")(x)
    x = keras.layers.GaussianDropout(0.2, name="gaussian")(x)
    x = keras.layers.AlphaDropout(0.1, name="alpha")(x)
    x = keras.layers.Flatten(name="flat")(x)
    return keras_convnets.seeded(keras.Model(inputs, keras.layers.Dense(5, name="head")(x)))


@pytest.mark.parametrize("target", ["torch", "onnx"])
def test_keras_dropout_variants_are_the_identity(target, tmp_path, keras):
    model = keras_training_only_layers(keras)
    model.save(tmp_path / "source.keras")
    out = tmp_path / ("port.pt" if target == "torch" else "port.onnx")
    converter.convert(tmp_path / "source.keras", out)
    x = canonical_input((3, 9, 7))
    assert_close(keras_outputs(model, x)[0], run_target(target, out, x)[0])


@pytest.mark.parametrize("target", ["keras", "onnx"])
def test_torch_dropout_variants_are_the_identity(target, tmp_path, torch):
    model = torch_convnets.seeded(torch_convnets.TrainingOnlyLayers())
    torch.save(model.state_dict(), tmp_path / "source.pt")
    out = tmp_path / ("port.keras" if target == "keras" else "port.onnx")
    converter.convert(tmp_path / "source.pt", out, module=f"{TESTS / 'torch_convnets.py'}:TrainingOnlyLayers",
                      input_shape=model.input_shape)
    x = canonical_input(model.input_shape)
    assert_close(torch_outputs(model, x)[0], run_target(target, out, x)[0])
