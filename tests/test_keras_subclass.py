"""Keras models of a class of their own (keras-hub's backbones) save only their constructor's arguments: with
--module naming the class, wconv builds it to read its layers, and takes the weights from the file."""

from __future__ import annotations

import numpy as np
import pytest

import converter
from conftest import RUNNERS, TARGET_SUFFIX, TESTS, assert_close, run_keras_model
from test_architectures import seeded_keras
from test_bad_input import assert_clean_failure, wconv

MODULE = f"{TESTS / 'keras_subclass.py'}:TinyBackbone"


@pytest.fixture
def saved(tmp_path, keras):
    import keras_subclass

    model = seeded_keras(keras_subclass.TinyBackbone(width=5))
    model.save(tmp_path / "backbone.keras")
    return model, tmp_path / "backbone.keras"


@pytest.mark.parametrize("target", ["torch", "onnx"])
def test_a_functional_subclass_converts_with_its_class_named(saved, target, tmp_path):
    model, source = saved
    out = tmp_path / f"port{TARGET_SUFFIX[target]}"
    converter.convert(source, out, module=MODULE)
    x = np.random.default_rng(1).standard_normal((2, 3, 9, 7)).astype(np.float32)
    assert_close(run_keras_model(model, x), RUNNERS[target](out, x))


def test_without_its_class_it_is_refused_saying_what_to_pass(saved, tmp_path):
    _, source = saved
    result = wconv("keras-to-onnx", source, tmp_path / "port.onnx")
    assert_clean_failure(result, 3, source, "saves its constructor's arguments", "--module")


def test_a_class_other_than_the_files_is_bad_input(saved, tmp_path):
    _, source = saved
    (tmp_path / "other.py").write_text("import keras\n\n\nclass Other(keras.Model):\n    pass\n")
    with pytest.raises(converter.WconvError, match="the file holds a 'TinyBackbone'") as error:
        converter.convert(source, tmp_path / "port.onnx", module=f"{tmp_path / 'other.py'}:Other")
    assert error.value.exit_code == 2


@pytest.mark.parametrize("name, arguments", [
    ("ResNetBackbone", {"input_conv_filters": [64], "input_conv_kernel_sizes": [7], "stackwise_num_filters": [64, 16],
                        "stackwise_num_blocks": [1, 1], "stackwise_num_strides": [1, 2], "block_type": "basic_block"}),
    pytest.param("DenseNetBackbone", {"stackwise_num_repeats": [2, 2]}, marks=pytest.mark.slow),
    pytest.param("VGGBackbone", {"stackwise_num_repeats": [1, 1], "stackwise_num_filters": [8, 16]},
                 marks=pytest.mark.slow),
])
def test_keras_hub_backbones(name, arguments, tmp_path, keras):
    keras_hub = pytest.importorskip("keras_hub")
    model = seeded_keras(getattr(keras_hub.models, name)(image_shape=(32, 40, 3), **arguments))
    model.save(tmp_path / "backbone.keras")
    converter.convert(tmp_path / "backbone.keras", tmp_path / "port.onnx", module=f"keras_hub.models:{name}")
    x = np.random.default_rng(1).standard_normal((2, 3, 32, 40)).astype(np.float32)
    assert_close(run_keras_model(model, x), RUNNERS["onnx"](tmp_path / "port.onnx", x))


def test_a_libraries_layer_is_not_read_as_wconvs_layer_of_the_same_name(tmp_path, keras):
    """keras-hub's PositionEmbedding (the table itself, broadcast) is not wconv's (a table added to x): a file's layer
    registered by another package keeps that package in its name. Added to its own input (as keras-hub's backbones
    use it) it is read with that Add (test_keras_hub.py); used otherwise, it is refused by that name."""
    keras_hub = pytest.importorskip("keras_hub")
    x = keras.Input((6, 4))
    model = keras.Model(x, keras.layers.Dense(3)(keras_hub.layers.PositionEmbedding(sequence_length=6)(x)))
    model.save(tmp_path / "positions.keras")
    with pytest.raises(converter.WconvError, match="keras_hub>PositionEmbedding") as error:
        converter.convert(tmp_path / "positions.keras", tmp_path / "port.onnx")
    assert error.value.exit_code == 3 and not (tmp_path / "port.onnx").exists()
