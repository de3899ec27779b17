"""Keras models used as layers (keras.applications' ConvNeXt builds its stem and downsampling blocks as
Sequential models): their layers are read in line, with the weights stored under them."""

from __future__ import annotations

import numpy as np
import pytest

import converter
from conftest import RUNNERS, TARGET_SUFFIX, assert_close, run_keras_model
from test_architectures import seeded_keras

SHAPE = (9, 7, 3)  # channels-last, h != w


def nested_model(keras):
    stem = keras.Sequential([keras.Input(SHAPE), keras.layers.Conv2D(5, 3, name="stem_conv"),
                             keras.layers.BatchNormalization(name="stem_bn")], name="stem")
    x_in = keras.Input((None, None, 5))
    branch_a = keras.layers.Conv2D(4, 1, name="branch_a")(x_in)
    branch_b = keras.layers.Conv2D(2, 3, padding="same", name="branch_b")(x_in)
    block = keras.Model(x_in, [branch_a, branch_b], name="block")  # a Functional with two outputs
    inputs = keras.Input(SHAPE)
    a, b = block(stem(inputs))
    y = keras.layers.Concatenate(name="cat")([a, keras.layers.ReLU(name="relu")(b)])
    return seeded_keras(keras.Model(inputs, keras.layers.GlobalAveragePooling2D(name="pool")(y)))


@pytest.mark.parametrize("target", ["torch", "onnx"])
def test_nested_models_read_in_line(target, tmp_path, keras):
    model = nested_model(keras)
    model.save(tmp_path / "a.keras")
    x = np.random.default_rng(4).standard_normal((2, SHAPE[2], *SHAPE[:2])).astype(np.float32)
    out = tmp_path / f"b{TARGET_SUFFIX[target]}"
    converter.convert(tmp_path / "a.keras", out)
    assert_close(run_keras_model(model, x), RUNNERS[target](out, x))
    names = {node.name for node in converter.read(tmp_path / "a.keras").nodes}
    assert {"stem_conv", "stem_bn", "branch_a", "branch_b"} <= names  # the inner layers, under their own names
