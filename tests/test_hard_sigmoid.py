"""The hard sigmoid, clip(alpha x + beta, 0, 1): torch's Hardsigmoid (MobileNetV3's squeeze-excitation gate)
and Keras 3's hard_sigmoid are x/6 + 1/2, Keras 2's hard_sigmoid 0.2x + 1/2, ONNX's HardSigmoid either."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import converter
from conftest import RUNNERS, TARGET_SUFFIX, TESTS, assert_close, run_keras_model, run_torch_model


class Gates(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 9)
        self.gate = nn.Hardsigmoid()
        self.fc2 = nn.Linear(9, 4)

    def forward(self, x):
        return F.hardsigmoid(self.fc2(self.gate(self.fc(x))))


def inputs():
    return (np.random.default_rng(0).standard_normal((5, 6)) * 4).astype(np.float32)  # reaching both clips


@pytest.mark.parametrize("target", ["keras", "onnx", "torch"])
def test_torch_hardsigmoid(target, tmp_path):
    from sequence_models import seeded

    model = seeded(Gates())
    torch.save(model.state_dict(), tmp_path / "a.pt")
    out = tmp_path / f"b{TARGET_SUFFIX[target]}"
    converter.convert(tmp_path / "a.pt", out, module=f"{TESTS / 'test_hard_sigmoid.py'}:Gates")
    assert_close(run_torch_model(model, inputs()), RUNNERS[target](out, inputs()))


@pytest.mark.parametrize("saved_by", ["keras3", "keras2"])
def test_keras_hard_sigmoid_follows_the_files_version(saved_by, tmp_path):
    """Keras 3's converts everywhere; Keras 2's (slope 0.2) to ONNX, and is refused for torch and Keras 3."""
    from sequence_models import seeded_keras

    framework = __import__("keras" if saved_by == "keras3" else "tf_keras")
    x_in = framework.Input((6,))
    y = framework.layers.Dense(9, activation="hard_sigmoid", name="fc")(x_in)
    y = framework.layers.Activation("hard_sigmoid", name="gate")(framework.layers.Dense(4, name="fc2")(y))
    model = seeded_keras(framework.Model(x_in, y), 2)
    model.save(tmp_path / "a.h5")
    converter.convert(tmp_path / "a.h5", tmp_path / "b.onnx")
    assert_close(run_keras_model(model, inputs()), RUNNERS["onnx"](tmp_path / "b.onnx", inputs()))
    if saved_by == "keras3":
        for target in ("torch", "keras"):
            out = tmp_path / f"c{TARGET_SUFFIX[target]}"
            converter.convert(tmp_path / "a.h5", out)
            assert_close(run_keras_model(model, inputs()), RUNNERS[target](out, inputs()))
        return
    for target in ("torch", "keras"):
        with pytest.raises(converter.WconvError, match="slope 0.2") as error:
            converter.convert(tmp_path / "a.h5", tmp_path / f"c{TARGET_SUFFIX[target]}")
        assert error.value.exit_code == 3
