"""A Keras model that leaves its spatial sizes free (``Input((None, None, 3))``, keras.applications with
``include_top=False``) needs them for TensorFlow's 'same' padding: ``--input-shape`` gives them, in Keras' own order.
A shape that contradicts what the model declares (channels first, by habit) is bad input, never transposed."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import RUNNERS, assert_close, run_inputs, run_keras_model
from test_bad_input import assert_clean_failure, digest, wconv


def _free_sized(keras, path, inputs: int = 1):
    """Convs with 'same' padding and stride 2 on an image of free height and width, then a global pool."""
    images = [keras.Input((None, None, 3), name=f"image{k}") for k in range(inputs)]
    x = images[0] if inputs == 1 else keras.layers.Add()(images)
    x = keras.layers.Conv2D(5, 4, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(images, keras.layers.Dense(4)(x))
    rng = np.random.default_rng(2)
    model.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in model.get_weights()])
    model.save(path)
    return model


def test_input_shape_fills_the_sizes_a_keras_model_leaves_free(tmp_path, keras):
    model = _free_sized(keras, tmp_path / "free.keras")
    result = wconv("convert", tmp_path / "free.keras", tmp_path / "port.pt", "--input-shape", "13,10,3")
    assert result.returncode == 0, result.stderr
    x = np.random.default_rng(5).standard_normal((2, 3, 13, 10)).astype(np.float32)
    assert_close(run_keras_model(model, x), RUNNERS["torch"](tmp_path / "port.pt", x))


def test_one_input_shape_is_every_inputs(tmp_path, keras):
    """A model of several inputs of the same free sizes (a text model's token ids, segment ids and padding mask)
    takes one --input-shape for all of them."""
    model = _free_sized(keras, tmp_path / "free.keras", inputs=2)
    result = wconv("convert", tmp_path / "free.keras", tmp_path / "port.onnx", "--input-shape", "13,10,3")
    assert result.returncode == 0, result.stderr
    rng = np.random.default_rng(5)
    images = [rng.standard_normal((2, 13, 10, 3)).astype(np.float32) for _ in range(2)]
    found = run_inputs("onnx", tmp_path / "port.onnx", [np.ascontiguousarray(x.transpose(0, 3, 1, 2)) for x in images])
    assert_close(np.asarray(model(images)), found[0])


@pytest.mark.parametrize("shape, inputs, words", [
    (None, 1, ["padding='same' needs the input's spatial sizes", "--input-shape"]),
    ("3,13,10", 1, ["does not fit the input the model declares", "(None, None, 3)", "channels last"]),
    ("13,10", 1, ["does not fit"]),
    ("3,13,10", 2, ["does not fit the input 'image0' the model declares", "(None, None, 3)"]),
])
def test_a_missing_or_contradicting_input_shape_is_refused(shape, inputs, words, tmp_path, keras):
    _free_sized(keras, tmp_path / "free.keras", inputs)
    before = digest(tmp_path / "free.keras")
    result = wconv("convert", tmp_path / "free.keras", tmp_path / "port.pt",
                   *(["--input-shape", shape] if shape else []))
    assert_clean_failure(result, 3 if shape is None else 2, tmp_path / "free.keras", *words)
    assert not (tmp_path / "port.pt").exists() and digest(tmp_path / "free.keras") == before
