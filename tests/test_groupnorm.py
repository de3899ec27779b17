"""GroupNorm over feature maps in each direction: Keras GroupNormalization, torch nn.GroupNorm, ONNX
GroupNormalization (opset 18: a scale per group; opset 21: per channel)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import converter
from conftest import RUNNERS, TARGET_SUFFIX, TESTS, assert_close, run_keras_model, run_torch_model
from models import onnx_model

GROUPS, CHANNELS = 3, 6


class ConvGroupNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, CHANNELS, 3)
        self.norm = nn.GroupNorm(GROUPS, CHANNELS, eps=1e-3)

    def forward(self, x):
        return self.norm(self.conv(x))


def feature_map(seed=2):
    return np.random.default_rng(seed).standard_normal((3, 4, 7, 5)).astype(np.float32)


@pytest.mark.parametrize("target", ["torch", "onnx"])
def test_keras_group_normalization(target, tmp_path, keras):
    from sequence_models import seeded_keras

    x_in = keras.Input((7, 5, 4))
    y = keras.layers.Conv2D(CHANNELS, 3, name="conv")(x_in)
    y = keras.layers.GroupNormalization(groups=GROUPS, name="norm")(y)
    model = seeded_keras(keras.Model(x_in, y), 5)
    model.save(tmp_path / "a.keras")
    out = tmp_path / f"b{TARGET_SUFFIX[target]}"
    converter.convert(tmp_path / "a.keras", out)
    x = feature_map()
    assert_close(run_keras_model(model, x), RUNNERS[target](out, x))


@pytest.mark.parametrize("target", ["keras", "onnx"])
def test_torch_group_norm(target, tmp_path):
    from sequence_models import seeded

    model = seeded(ConvGroupNorm())
    torch.save(model.state_dict(), tmp_path / "a.pt")
    out = tmp_path / f"b{TARGET_SUFFIX[target]}"
    converter.convert(tmp_path / "a.pt", out, module=f"{TESTS / 'test_groupnorm.py'}:ConvGroupNorm",
                      input_shape=[4, 7, 5])
    x = feature_map()
    assert_close(run_torch_model(model, x), RUNNERS[target](out, x))


@pytest.mark.parametrize("target", ["keras", "torch"])
@pytest.mark.parametrize("opset", [18, 21])
def test_onnx_group_normalization(opset, target, tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(4)
    size = GROUPS if opset == 18 else CHANNELS
    scale, bias = (rng.normal(0, 0.5, size).astype(np.float32) for _ in range(2))
    node = helper.make_node("GroupNormalization", ["x", "scale", "bias"], ["y"], name="norm", num_groups=GROUPS,
                            epsilon=1e-4)
    model, onnx = onnx_model([node], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, CHANNELS, 7, 5])],
                             [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, CHANNELS, 7, 5])],
                             [numpy_helper.from_array(scale, "scale"), numpy_helper.from_array(bias, "bias")], opset)
    onnx.save(model, tmp_path / "a.onnx")
    out = tmp_path / f"b{TARGET_SUFFIX[target]}"
    converter.convert(tmp_path / "a.onnx", out)
    x = np.random.default_rng(6).standard_normal((3, CHANNELS, 7, 5)).astype(np.float32)
    assert_close(RUNNERS["onnx"](tmp_path / "a.onnx", x), RUNNERS[target](out, x))


@pytest.mark.parametrize("target", ["keras", "torch"])
@pytest.mark.parametrize("source", ["torch.onnx", "wconv"])
def test_group_norm_spelled_out_in_onnx(source, target, tmp_path, keras):
    """torch.onnx before opset 18 and wconv itself write GroupNorm as Reshape/InstanceNormalization/Reshape, then
    Mul and Add per channel: read back as one GroupNorm."""
    from sequence_models import seeded

    model = seeded(ConvGroupNorm())
    x = feature_map()
    if source == "torch.onnx":
        torch.onnx.export(model, torch.from_numpy(x), tmp_path / "a.onnx", dynamo=False, opset_version=17,
                          input_names=["x"])
    else:
        torch.save(model.state_dict(), tmp_path / "a.pt")
        converter.convert(tmp_path / "a.pt", tmp_path / "a.onnx",
                          module=f"{TESTS / 'test_groupnorm.py'}:ConvGroupNorm", input_shape=[4, 7, 5])
    assert [node.op for node in converter.read(tmp_path / "a.onnx").nodes] == ["conv2d", "groupnorm"]
    out = tmp_path / f"b{TARGET_SUFFIX[target]}"
    converter.convert(tmp_path / "a.onnx", out)
    assert_close(run_torch_model(model, x), RUNNERS[target](out, x))
