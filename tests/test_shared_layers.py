"""Shared layers: a Keras layer called more than once (a Siamese network, a weight-tied block) and a torch module
with parameters called again. Each call is its own IR node, the later ones tied to the first (``weights_of``); the
ports share them too: the torch port calls one module again, the Keras port one layer, and ONNX gets each call's
copy. Judged by the original framework's predictions, both ways."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import converter
from converter.runners import load
from conftest import RUNNERS, TARGET_SUFFIX, assert_close, run_torch_model
from torch_convnets import seeded


class TiedConvs(nn.Module):
    """One conv applied twice (the second time to its own output), one Linear applied to two branches."""

    input_shape = (3, 8, 6)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(3, 4)

    def forward(self, x):
        once = torch.relu(self.conv(x))
        twice = self.conv(once)
        return self.head(self.pool(once).flatten(1)) - self.head(self.pool(twice).flatten(1))


def keras_siamese(keras):
    """A Conv2D and a Dense shared by two image inputs, and a square Dense applied twice, the second time to the
    output of a layer the config lists after it (the reader orders calls by what they read)."""
    from keras_convnets import seeded as seeded_keras

    left, right = keras.Input((9, 7, 3), name="left"), keras.Input((9, 7, 3), name="right")
    conv = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="conv")
    pool = keras.layers.GlobalAveragePooling2D(name="pool")
    embed = keras.layers.Dense(5, name="embed")
    square = keras.layers.Dense(5, activation="tanh", name="square")
    a, b = embed(pool(conv(left))), embed(pool(conv(right)))
    mixed = keras.layers.Dense(5, name="mix")(square(keras.layers.Subtract(name="gap")([a, b])))
    return seeded_keras(keras.Model([left, right], square(mixed)))


def test_a_keras_model_with_shared_layers_converts_and_keeps_them_shared(tmp_path, keras):
    model = keras_siamese(keras)
    model.save(tmp_path / "siamese.keras")
    rng = np.random.default_rng(3)
    x = [rng.standard_normal((2, 3, 9, 7)).astype(np.float32) for _ in range(2)]  # channels first, as torch takes
    expected = np.asarray(model([np.transpose(image, (0, 2, 3, 1)) for image in x], training=False))
    for target in ("torch", "onnx", "keras"):
        out = tmp_path / f"port{TARGET_SUFFIX[target]}"
        converter.convert(tmp_path / "siamese.keras", out)
        assert_close(expected, load(out).predict(x)[0], what=target)  # two inputs: wconv's runner of each framework
    state = torch.load(tmp_path / "port.pt", weights_only=True)
    assert sorted(state) == sorted(f"{name}.{p}" for name in ("conv", "embed", "square", "mix")
                                   for p in ("weight", "bias")), "one set of weights per shared layer"
    port = keras.saving.load_model(tmp_path / "port.keras")
    assert [layer.name for layer in port.layers].count("conv") == 1 and len(port.get_layer("conv")._inbound_nodes) == 2


@pytest.mark.parametrize("target", ["keras", "onnx", "torch"])
def test_a_torch_module_called_again_converts(target, tmp_path):
    model = seeded(TiedConvs(), seed=5)
    torch.save(model.state_dict(), tmp_path / "a.pt")
    out = tmp_path / f"b{TARGET_SUFFIX[target]}"
    converter.convert(tmp_path / "a.pt", out, module="test_shared_layers:TiedConvs", input_shape=TiedConvs.input_shape)
    x = np.random.default_rng(4).standard_normal((2, *TiedConvs.input_shape)).astype(np.float32)
    assert_close(run_torch_model(model, x), RUNNERS[target](out, x))
    if target == "keras":  # and back into torch, still tied: one conv, one head
        converter.convert(out, tmp_path / "c.pt")
        assert sorted(torch.load(tmp_path / "c.pt", weights_only=True)) == \
            ["conv.bias", "conv.weight", "head.bias", "head.weight"]
        assert_close(run_torch_model(model, x), RUNNERS["torch"](tmp_path / "c.pt", x))


def test_a_shared_conv_whose_calls_pad_differently_keeps_a_copy_per_call(tmp_path, keras):
    """TensorFlow's 'same' pads depend on the input's size: one conv called on a 9 x 7 and an 8 x 6 image pads
    each differently, which one torch module cannot do, so each call keeps its own copy of the weights."""
    big, small = keras.Input((9, 7, 3), name="big"), keras.Input((8, 6, 3), name="small")
    conv = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="conv")
    pool = keras.layers.GlobalAveragePooling2D(name="pool")
    from keras_convnets import seeded as seeded_keras

    model = seeded_keras(keras.Model([big, small], keras.layers.Add()([pool(conv(big)), pool(conv(small))])))
    model.save(tmp_path / "m.keras")
    rng = np.random.default_rng(6)
    x = [rng.standard_normal((2, 3, 9, 7)).astype(np.float32), rng.standard_normal((2, 3, 8, 6)).astype(np.float32)]
    expected = np.asarray(model([np.transpose(image, (0, 2, 3, 1)) for image in x], training=False))
    converter.convert(tmp_path / "m.keras", tmp_path / "port.pt")
    assert_close(expected, load(tmp_path / "port.pt").predict(x)[0])
    assert len(torch.load(tmp_path / "port.pt", weights_only=True)) == 4  # conv and conv#2, weight and bias each
