"""torch models as model libraries write them (tests/torch_idioms.py): functional layers on a module's own
parameters, shape arithmetic folded for the declared shape, splits and slices, eval-time identities. Each converts
to Keras, ONNX and torch with the original's predictions, or is refused by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import converter
import torch_idioms
from conftest import RUNNERS, TARGET_SUFFIX, TESTS, assert_close, run_torch_model
from torch_convnets import seeded

IDIOMS = TESTS / "torch_idioms.py"
CONVERTED = ["LibraryLayers", "Splits", "CeilAvgPool", "LayerScales", "PaddedMaxPool", "Arithmetic",
             "StandardizedWeight", "ShiftPad"]


def convert(name, tmp_path, target):
    cls = getattr(torch_idioms, name)
    model = seeded(cls(), seed=4)
    torch.save(model.state_dict(), tmp_path / "a.pt")
    out = tmp_path / f"b{TARGET_SUFFIX[target]}"
    converter.convert(tmp_path / "a.pt", out, module=f"{IDIOMS}:{name}", input_shape=cls.input_shape)
    x = np.random.default_rng(7).standard_normal((3, *cls.input_shape)).astype(np.float32)
    return model, out, x


@pytest.mark.parametrize("target", ["keras", "onnx", "torch"])
@pytest.mark.parametrize("name", CONVERTED)
def test_library_idioms_convert(name, target, tmp_path):
    model, out, x = convert(name, tmp_path, target)
    assert_close(run_torch_model(model, x), RUNNERS[target](out, x))


@pytest.mark.parametrize("via", ["keras", "onnx"])
@pytest.mark.parametrize("name", ["Splits", "LayerScales", "PaddedMaxPool", "Arithmetic", "ShiftPad"])
def test_read_back(name, via, tmp_path):
    """Keras' ops.split node and LayerScale, ONNX's Split and Mul by a (C, 1, 1) constant, read back into torch."""
    model, out, x = convert(name, tmp_path, via)
    converter.convert(out, tmp_path / "c.pt")
    assert_close(run_torch_model(model, x), RUNNERS["torch"](tmp_path / "c.pt", x))


def test_functional_layers_keep_their_modules_names(tmp_path):
    """A functional layer is named after the module owning its weights; the BatchNorm's batch counter is its own."""
    torch.save(seeded(torch_idioms.LibraryLayers()).state_dict(), tmp_path / "a.pt")
    graph = converter.read(tmp_path / "a.pt", module=f"{IDIOMS}:LibraryLayers",
                           input_shape=torch_idioms.LibraryLayers.input_shape)
    ops = {node.name: node.op for node in graph.nodes}
    assert ops["stem"] == "conv2d" and ops["bn"] == "batchnorm" and ops["norm"] == "layernorm"
    assert ops["group"] == "groupnorm" and ops["linear"] == "dense"


def test_a_weight_computed_from_parameters_is_stored_under_their_module(tmp_path):
    """The standardized conv weight takes the conv's key (nothing else reads the raw one) and its layer the conv's
    name; the Linear's doubled weight, whose raw one the Linear reads too, gets a key of its own."""
    torch.save(seeded(torch_idioms.StandardizedWeight(), seed=4).state_dict(), tmp_path / "a.pt")
    graph = converter.read(tmp_path / "a.pt", module=f"{IDIOMS}:StandardizedWeight",
                           input_shape=torch_idioms.StandardizedWeight.input_shape)
    ops = {node.name: node.op for node in graph.nodes}
    assert ops["conv"] == "conv2d" and ops["head"] == "dense" and list(ops).count("head") == 1


@pytest.mark.parametrize("name, message", [
    ("InputDependentWeight", "its weight is computed in forward()"),
    ("BatchDependentShape", "'size' (size)"),
])
def test_what_cannot_be_read_is_refused_by_name(name, message, tmp_path):
    cls = getattr(torch_idioms, name)
    torch.save(cls().state_dict(), tmp_path / "a.pt")
    with pytest.raises(converter.WconvError) as error:
        converter.convert(tmp_path / "a.pt", tmp_path / "b.onnx", module=f"{IDIOMS}:{name}",
                          input_shape=cls.input_shape)
    assert error.value.exit_code == 3 and message in str(error.value)
    assert not (tmp_path / "b.onnx").exists()


def test_a_models_own_failing_check_is_bad_input(tmp_path):
    torch.save(torch_idioms.FailingAssert().state_dict(), tmp_path / "a.pt")
    with pytest.raises(converter.WconvError, match=r"fails on inputs of shape \[\(2, 3, 6, 5\)\] \(AssertionError: "
                                                   "input must be square\); check --input-shape") as error:
        converter.convert(tmp_path / "a.pt", tmp_path / "b.onnx", module=f"{IDIOMS}:FailingAssert",
                          input_shape=torch_idioms.FailingAssert.input_shape)
    assert error.value.exit_code == 2


def test_dropout_while_training_is_refused(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("import torch.nn.functional as F\nfrom torch import nn\n\n\nclass M(nn.Linear):\n"
                    "    def __init__(self):\n        super().__init__(4, 3)\n\n"
                    "    def forward(self, x):\n        return F.dropout(super().forward(x), 0.5, True)\n")
    torch.save(torch.nn.Linear(4, 3).state_dict(), tmp_path / "a.pt")
    with pytest.raises(converter.WconvError, match="F.dropout with training=True is random") as error:
        converter.convert(tmp_path / "a.pt", tmp_path / "b.onnx", module=f"{path}:M", input_shape=[4])
    assert error.value.exit_code == 3


def test_keras3_only_nodes_are_refused_in_a_legacy_h5(tmp_path):
    """A split (Keras 3's ops.split node) cannot go into a .h5, which Keras 2 must be able to load too."""
    cls = torch_idioms.Splits
    torch.save(seeded(cls()).state_dict(), tmp_path / "a.pt")
    with pytest.raises(converter.WconvError, match=r"need Keras 3 .*write .keras") as error:
        converter.convert(tmp_path / "a.pt", tmp_path / "b.h5", module=f"{IDIOMS}:Splits", input_shape=cls.input_shape)
    assert error.value.exit_code == 3 and not (tmp_path / "b.h5").exists()
