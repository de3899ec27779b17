"""Flatten between frameworks: Keras flattens its channels-last view, torch and ONNX the IR order. A Keras
Flatten reads as a relayout then a Flatten; where Dense layers follow, the permutation goes into their rows
(flatten_rows.py), elsewhere a transpose runs. Feature maps are non-square (h != w) with C != h, w."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import converter
from conftest import RUNNERS, TARGET_SUFFIX, TESTS, assert_close, run_keras_model, run_torch_model

MODULES = TESTS / "test_flatten_rows.py"


class FlattenHead(nn.Module):
    """conv -> flatten -> (Linear or nothing): torch's flatten takes (c, h, w)."""

    def __init__(self, dense: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.head = nn.Linear(4 * 5 * 3, 2) if dense else None

    def forward(self, x):
        flat = torch.flatten(torch.relu(self.conv(x)), 1)
        return self.head(flat) if self.head is not None else flat


def feature_map():
    return np.random.default_rng(3).standard_normal((2, 3, 7, 5)).astype(np.float32)


def keras_model(keras, dense: bool):
    from sequence_models import seeded_keras

    x_in = keras.Input((7, 5, 3))
    y = keras.layers.Flatten(name="flatten")(keras.layers.Conv2D(4, 3, activation="relu", name="conv")(x_in))
    if dense:
        y = keras.layers.Dense(2, name="head")(y)
    return seeded_keras(keras.Model(x_in, y), 7)


@pytest.mark.parametrize("target", ["torch", "onnx"])
@pytest.mark.parametrize("dense", [True, False], ids=["dense", "output"])
def test_keras_flatten(dense, target, tmp_path, keras):
    """Followed by Dense: its rows permuted, no transpose runs; the flattened map as an output: a transpose."""
    model = keras_model(keras, dense)
    model.save(tmp_path / "a.keras")
    out = tmp_path / f"b{TARGET_SUFFIX[target]}"
    converter.convert(tmp_path / "a.keras", out)
    x = feature_map()
    assert_close(run_keras_model(model, x), RUNNERS[target](out, x))
    ops = [node.op for node in converter.read(tmp_path / "a.keras").nodes]
    assert ("transpose" in ops) is not dense
    if target == "torch":
        assert ("permute" in (tmp_path / "b.py").read_text().split("def forward")[1]) is not dense


@pytest.mark.parametrize("dense", [True, False], ids=["dense", "output"])
def test_torch_flatten_to_keras(dense, tmp_path, keras):
    """Followed by Linear: the Dense rows permuted into Keras' order, no Permute; as an output: a Permute."""
    from sequence_models import seeded

    model = seeded(FlattenHead(dense))
    torch.save(model.state_dict(), tmp_path / "a.pt")
    converter.convert(tmp_path / "a.pt", tmp_path / "b.keras", module=f"{MODULES}:FlattenHead",
                      module_args={"dense": dense}, input_shape=[3, 7, 5])
    x = feature_map()
    assert_close(run_torch_model(model, x), RUNNERS["keras"](tmp_path / "b.keras", x))
    layers = [type(layer).__name__ for layer in keras.saving.load_model(tmp_path / "b.keras").layers]
    assert ("Permute" in layers) is not dense


def test_ir_files_of_schema_1_keep_keras_flatten_order(tmp_path, keras):
    """Schema 1 kept a Keras Flatten's order as an attribute (order='channels_last'); loading one spells it as
    schema 2 does, a transpose to Keras' view first, so it computes what it did."""
    from security.hostile import rewrite_ir_metadata

    model = keras_model(keras, dense=False)
    model.save(tmp_path / "a.keras")
    converter.convert(tmp_path / "a.keras", tmp_path / "a.wconv")

    def as_schema_1(spec):
        relayout = next(node for node in spec["nodes"] if node["op"] == "transpose")
        spec["nodes"].remove(relayout)
        flatten = next(node for node in spec["nodes"] if node["op"] == "flatten")
        flatten["inputs"], flatten["attrs"] = relayout["inputs"], {"order": "channels_last"}
        spec["schema"] = 1

    rewrite_ir_metadata(tmp_path / "a.wconv", as_schema_1)
    converter.convert(tmp_path / "a.wconv", tmp_path / "b.onnx")
    x = feature_map()
    assert_close(run_keras_model(model, x), RUNNERS["onnx"](tmp_path / "b.onnx", x))
