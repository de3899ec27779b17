"""Bugs found on real models (issue 8 §5), each pinned by a test against the real frameworks."""

from __future__ import annotations

import json

import pytest
import torch_convnets

import converter
from conftest import TESTS
from test_bad_input import assert_clean_failure, wconv

TORCH_FILE = TESTS / "torch_convnets.py"


def test_a_reused_parameter_free_module_validates_call_by_call(tmp_path, torch):
    model = torch_convnets.seeded(torch_convnets.ReusedActivation())
    torch.save(model.state_dict(), tmp_path / "source.pt")
    module = f"{TORCH_FILE}:ReusedActivation"
    converter.convert(tmp_path / "source.pt", tmp_path / "port.pt", module=module, input_shape=model.input_shape)
    result = wconv("validate", tmp_path / "source.pt", tmp_path / "port.pt", "--source-module", module, "--json",
                   "--input-shape", ",".join(map(str, model.input_shape)))
    assert result.returncode == 0, result.stderr
    layers = [layer["name"] for layer in json.loads(result.stdout)["layers"]]
    assert {"relu", "relu#2", "relu#3"} <= set(layers), layers


class SharedWeights(torch_convnets.nn.Module):
    input_shape = (3, 8, 6)

    def __init__(self):
        super().__init__()
        self.conv = torch_convnets.nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        return self.conv(self.conv(x))


def test_a_module_with_parameters_called_twice_is_refused_by_name(tmp_path, torch):
    model = SharedWeights()
    torch.save(model.state_dict(), tmp_path / "source.pt")
    with pytest.raises(converter.WconvError) as error:
        converter.convert(tmp_path / "source.pt", tmp_path / "out.onnx", module=f"{__file__}:SharedWeights",
                          input_shape=model.input_shape)
    assert error.value.exit_code == 3 and "'conv'" in str(error.value) and "shared weights" in str(error.value)
    assert not (tmp_path / "out.onnx").exists()
