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


def ported_like_keras(model, folder, target: str, shape):
    """The Keras ``model`` converted to ``target`` (torch or onnx), checked to predict like Keras on a seeded
    input of ``shape`` (channels first); the port's path."""
    model.save(folder / "source.keras")
    out = folder / ("port.pt" if target == "torch" else "port.onnx")
    converter.convert(folder / "source.keras", out)
    x = canonical_input(shape)
    assert_close(keras_outputs(model, x)[0], run_target(target, out, x)[0])
    return out


@pytest.mark.parametrize("target", ["torch", "onnx"])
def test_keras_dropout_variants_are_the_identity(target, tmp_path, keras):
    ported_like_keras(keras_training_only_layers(keras), tmp_path, target, (3, 9, 7))


@pytest.mark.parametrize("target", ["keras", "onnx"])
def test_torch_dropout_variants_are_the_identity(target, tmp_path, torch):
    model = torch_convnets.seeded(torch_convnets.TrainingOnlyLayers())
    torch.save(model.state_dict(), tmp_path / "source.pt")
    out = tmp_path / ("port.keras" if target == "keras" else "port.onnx")
    converter.convert(tmp_path / "source.pt", out, module=f"{TESTS / 'torch_convnets.py'}:TrainingOnlyLayers",
                      input_shape=model.input_shape)
    x = canonical_input(model.input_shape)
    assert_close(torch_outputs(model, x)[0], run_target(target, out, x)[0])


def keras_squeeze_excite(keras):
    """EfficientNet's squeeze-excite: GlobalAveragePooling2D -> Reshape((1, 1, C)) -> 1x1 convs -> Multiply."""
    inputs = keras.Input((9, 7, 6))
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv")(inputs)
    s = keras.layers.GlobalAveragePooling2D(name="squeeze")(x)
    s = keras.layers.Reshape((1, 1, 8), name="se_reshape")(s)
    s = keras.layers.Conv2D(2, 1, activation="relu", name="se_reduce")(s)
    s = keras.layers.Conv2D(8, 1, activation="sigmoid", name="se_expand")(s)
    x = keras.layers.Multiply(name="excite")([x, s])
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras_convnets.seeded(keras.Model(inputs, keras.layers.Dense(3, name="head")(x)))


@pytest.mark.parametrize("target", ["torch", "onnx"])
def test_a_reshape_to_unit_axes_needs_no_transpose(target, tmp_path, keras):
    """Reshape((1, 1, C)) before a conv reshapes straight to (N, C, 1, 1): no Transpose in ONNX, no permute in
    torch (EfficientNetB0 had 16)."""
    import onnx

    out = ported_like_keras(keras_squeeze_excite(keras), tmp_path, target, (6, 9, 7))
    if target == "onnx":
        assert "Transpose" not in {node.op_type for node in onnx.load(out).graph.node}
    else:
        assert "permute" not in out.with_suffix(".py").read_text()


def test_the_keras_port_of_a_reshape_to_unit_axes_needs_no_permute(tmp_path, keras):
    keras_squeeze_excite(keras).save(tmp_path / "se.keras")
    converter.convert(tmp_path / "se.keras", tmp_path / "se.onnx")
    converter.convert(tmp_path / "se.onnx", tmp_path / "back.keras")
    back = keras.saving.load_model(tmp_path / "back.keras")
    assert "Permute" not in {type(layer).__name__ for layer in back.layers}
    x = canonical_input((6, 9, 7))
    assert_close(keras_outputs(keras_squeeze_excite(keras), x)[0], keras_outputs(back, x)[0])


def test_moving_unit_axes_moves_no_element():
    from converter.views import moves_elements

    assert not moves_elements([0, 3, 1, 2], (None, 1, 1, 8))  # (N, 1, 1, C) -> (N, C, 1, 1)
    assert moves_elements([0, 3, 1, 2], (None, 2, 1, 8))
    assert not moves_elements([0, 2, 1], (None, 1, 5))
    assert moves_elements([0, 2, 1], (None, None, 5))  # an unknown size may be other than 1


def test_inspect_lists_every_layer_of_a_model_it_cannot_convert(tmp_path, keras):
    """A Lambda: inspect still lists the model, marks what cannot be converted, and exits 3 naming it."""
    import json

    from test_bad_input import wconv

    inputs = keras.Input((6,))
    x = keras.layers.Dense(4, name="d1")(inputs)
    x = keras.layers.Lambda(lambda t: t * 2, name="double")(x)
    keras.Model(inputs, keras.layers.Dense(2, name="d2")(x)).save(tmp_path / "lambda.keras")
    text = wconv("inspect", tmp_path / "lambda.keras")
    assert text.returncode == 3 and "'double' (Lambda" in text.stderr
    assert len(text.stderr.strip().splitlines()) == 1
    rows = {line.split()[0]: line.split()[2] for line in text.stdout.splitlines()[2:] if len(line.split()) >= 3}
    assert rows["d1"] == "yes" and rows["d2"] == "yes" and rows["double"] == "NO:"
    listed = wconv("inspect", tmp_path / "lambda.keras", "--json")
    assert listed.returncode == 3
    layers = json.loads(listed.stdout)["layers"]
    assert [(layer["name"], layer["supported"]) for layer in layers] == [("d1", True), ("double", False), ("d2", True)]


def test_inspect_lists_every_node_of_an_onnx_file_it_cannot_convert(tmp_path):
    import json

    import onnx
    from onnx import TensorProto, helper

    from test_bad_input import wconv

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"], name="relu"), helper.make_node("Det", ["r"], ["y"], name="det")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "det.onnx")
    listed = wconv("inspect", tmp_path / "det.onnx", "--json")
    assert listed.returncode == 3 and "'det' (Det)" in listed.stderr
    layers = json.loads(listed.stdout)["layers"]
    assert [(layer["name"], layer["type"], layer["supported"]) for layer in layers] == \
        [("relu", "Relu", True), ("det", "Det", False)]
