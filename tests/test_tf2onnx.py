"""ONNX files as tf2onnx writes them from Keras (tf_keras) models, read back into torch and Keras: NHWC inputs with
Transposes at the edges, Rescaling and Normalization written out on the NHWC input, BatchNorm folded into convs."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

import converter
from conftest import RUNNERS, TARGET_SUFFIX, assert_close

SHAPE = (40, 56, 3)  # channels-last, h != w


def seeded_tf_keras(model, seed=0):
    """Scaled random kernels, BatchNorm statistics and gammas/betas away from their defaults (tf_keras names)."""
    rng = np.random.default_rng(seed)
    weights = []
    for variable, current in zip(model.weights, model.get_weights()):
        values = rng.standard_normal(current.shape).astype(np.float32)
        if current.ndim > 1:
            fan_in = np.prod(current.shape[:-2] if "depthwise" in variable.name else current.shape[:-1])
            values /= np.sqrt(fan_in)
        elif "variance" in variable.name:
            values = np.abs(values) * 0.5 + 0.5
        elif "count" in variable.name:
            values = current
        else:
            values = values * 0.1 + (1.0 if "gamma" in variable.name else 0.0)
        weights.append(values)
    model.set_weights(weights)
    return model


def small_model(tf_keras):
    layers = tf_keras.layers
    inputs = tf_keras.Input(SHAPE)
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    x = layers.Normalization(mean=[0.1, -0.2, 0.3], variance=[0.5, 1.5, 2.0])(x)
    x = layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU(6.0)(x)
    x = layers.DepthwiseConv2D(3, padding="same")(x)
    x = layers.Activation("swish")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return tf_keras.Model(inputs, layers.Dense(5)(x))


def tf2onnx_file(model, path, shape=SHAPE):
    tf = pytest.importorskip("tensorflow")
    tf2onnx = pytest.importorskip("tf2onnx")
    spec = (tf.TensorSpec((None, *shape), tf.float32, name="x"),)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        tf2onnx.convert.from_keras(model, input_signature=spec, opset=17, output_path=str(path))


@pytest.mark.parametrize("target", ["torch", "keras"])
def test_tf2onnx_output_reads_back(target, tmp_path):
    tf_keras = pytest.importorskip("tf_keras")
    model = seeded_tf_keras(small_model(tf_keras))
    tf2onnx_file(model, tmp_path / "model.onnx")
    x = np.random.default_rng(3).uniform(0, 255, (2, *SHAPE)).astype(np.float32)  # NHWC, as the file takes it
    out = tmp_path / f"port{TARGET_SUFFIX[target]}"
    converter.convert(tmp_path / "model.onnx", out)
    assert_close(model(x, training=False).numpy(), RUNNERS[target](out, x))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["DenseNet121", "EfficientNetB0", "EfficientNetV2B0", "InceptionV3", "MobileNet",
                                  "MobileNetV2", "MobileNetV3Small", "ResNet50", "ResNet50V2", "VGG16", "Xception"])
def test_tf2onnx_keras_applications(name, tmp_path):
    tf_keras = pytest.importorskip("tf_keras")
    model = seeded_tf_keras(getattr(tf_keras.applications, name)(weights=None, input_shape=(96, 128, 3),
                                                                  classifier_activation=None))
    tf2onnx_file(model, tmp_path / "model.onnx", (96, 128, 3))
    x = np.random.default_rng(3).standard_normal((2, 96, 128, 3)).astype(np.float32)
    converter.convert(tmp_path / "model.onnx", tmp_path / "port.pt")
    assert_close(model(x, training=False).numpy(), RUNNERS["torch"](tmp_path / "port.pt", x), what="logits")
