"""Keras 3 models whose graphs hold what is not a keras.layers layer: arithmetic with numbers (ops.Add(x, 3.0),
MobileNetV3's hard-sigmoid), ops.clip, ops.split, keras.applications' LayerScale (ConvNeXt) and CustomScaleLayer
(InceptionResNetV2). Converted to torch and ONNX and back to Keras, with the original's predictions."""

from __future__ import annotations

import numpy as np
import pytest

import converter
from conftest import RUNNERS, TARGET_SUFFIX, assert_close, run_keras_model

SHAPE = (7, 9, 6)  # channels-last, h != w


def keras_ops_model(keras):
    from keras.src.applications.convnext import LayerScale
    from keras.src.applications.inception_resnet_v2 import CustomScaleLayer

    rng = np.random.default_rng(11)
    x_in = keras.Input(SHAPE)
    y = keras.layers.Conv2D(6, 3, padding="same", name="conv")(x_in)
    gate = keras.layers.ReLU(6.0, name="relu6")(y + 3.0) * (1.0 / 6.0)  # hard-sigmoid, as MobileNetV3 writes it
    y = keras.layers.Multiply(name="hard_swish")([y, gate])
    y = keras.ops.clip((2.0 - y) / 4.0, -0.3, 0.4)
    a, b = keras.ops.split(y, [2], axis=-1)
    b = keras.layers.Conv2D(2, 1, name="mix")(b)
    y = keras.layers.Concatenate(name="cat")([a, b])
    y = CustomScaleLayer(0.17, name="residual")([y, keras.layers.Conv2D(4, 1, name="branch")(y)])
    y = LayerScale(1e-6, 4, name="layer_scale")(y)
    model = keras.Model(x_in, y)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in layer.get_weights()])
    return model


@pytest.mark.parametrize("target", ["torch", "onnx"])
def test_keras_ops_nodes_convert_and_read_back(target, tmp_path, keras):
    model = keras_ops_model(keras)
    model.save(tmp_path / "a.keras")
    x = np.random.default_rng(2).standard_normal((3, SHAPE[2], *SHAPE[:2])).astype(np.float32)
    reference = run_keras_model(model, x)
    out = tmp_path / f"b{TARGET_SUFFIX[target]}"
    converter.convert(tmp_path / "a.keras", out)
    assert_close(reference, RUNNERS[target](out, x))
    module = f"{out.with_suffix('.py')}:Model" if target == "torch" else None
    converter.convert(out, tmp_path / "c.keras", module=module)
    assert_close(reference, RUNNERS["keras"](tmp_path / "c.keras", x))


@pytest.mark.parametrize("target", ["torch", "onnx"])
def test_keras_ops_gelu_keeps_its_approximation(target, tmp_path, keras):
    """``keras.ops.gelu`` defaults to the tanh approximation (the activation 'gelu' to the exact one): each is read
    as the GELU it computes."""
    x_in = keras.Input((5,))
    y = keras.ops.gelu(keras.layers.Dense(7, name="fc")(x_in))
    y = keras.ops.gelu(keras.layers.Dense(6, name="fc2")(y), approximate=False)
    model = keras.Model(x_in, y)
    for layer in model.layers:
        layer.set_weights([np.random.default_rng(3).standard_normal(w.shape).astype(np.float32)
                           for w in layer.get_weights()])
    model.save(tmp_path / "a.keras")
    assert [(n.op, n.attrs.get("approximate")) for n in converter.read(tmp_path / "a.keras").nodes] == \
        [("dense", None), ("gelu", "tanh"), ("dense", None), ("gelu", "none")]
    x = (np.random.default_rng(4).standard_normal((3, 5)) * 2).astype(np.float32)
    out = tmp_path / f"b{TARGET_SUFFIX[target]}"
    converter.convert(tmp_path / "a.keras", out)
    assert_close(run_keras_model(model, x), RUNNERS[target](out, x))


def test_indexing_other_than_one_step_is_refused_by_name(tmp_path, keras):
    """x[:, 0, :] is one step (keras-hub's BERT pooler: test_keras_hub.py); x[0], one sample of the batch, is not a
    layer wconv converts: refused by name, never misread."""
    x = keras.Input((6, 4))
    keras.Model(x, keras.layers.Dense(3)(x)[0]).save(tmp_path / "first.keras")
    with pytest.raises(converter.WconvError, match="GetItem") as error:
        converter.convert(tmp_path / "first.keras", tmp_path / "port.onnx")
    assert error.value.exit_code == 3 and not (tmp_path / "port.onnx").exists()
