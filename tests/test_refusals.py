"""Attributes with no faithful equivalent are refused with the layer's name and the reason, never approximated."""

from __future__ import annotations

import pytest

import converter
from converter.errors import Unsupported
from conftest import TESTS
from test_bad_input import assert_clean_failure, wconv

REFUSED = TESTS / "torch_refused.py"

TORCH_CASES = {
    "ReflectPadding": ("onnx", "'conv'", "padding_mode='reflect'"),
    "GroupedTranspose": ("keras", "'up'", "no groups"),
    "AlignCorners": ("onnx", "'up'", "align_corners=True"),
}


@pytest.mark.parametrize("case", TORCH_CASES)
def test_torch_attribute_refused(case, tmp_path, torch):
    import torch_refused

    model = getattr(torch_refused, case)()
    torch.save(model.state_dict(), tmp_path / "source.pt")
    target, layer, reason = TORCH_CASES[case]
    out = tmp_path / f"out.{'keras' if target == 'keras' else 'onnx'}"
    with pytest.raises(Unsupported) as error:
        converter.convert(tmp_path / "source.pt", out, module=f"{REFUSED}:{case}", input_shape=model.input_shape)
    assert layer in str(error.value) and reason in str(error.value)
    assert not out.exists()


def test_prelu_varying_over_space_is_refused_for_torch_only(tmp_path, keras):
    inputs = keras.Input((4, 3, 2))
    keras.Model(inputs, keras.layers.PReLU(name="spatial_prelu")(inputs)).save(tmp_path / "source.keras")
    result = wconv("keras-to-torch", tmp_path / "source.keras", tmp_path / "out.pt")
    assert_clean_failure(result, 3, tmp_path / "source.keras", "'spatial_prelu'", "varies over space")
    assert not (tmp_path / "out.pt").exists() and not (tmp_path / "out.py").exists()
    converter.convert(tmp_path / "source.keras", tmp_path / "out.onnx")  # ONNX broadcasts any alpha


def test_keras_channels_first_is_refused(tmp_path, keras):
    inputs = keras.Input((3, 8, 6))
    conv = keras.layers.Conv2D(4, 3, data_format="channels_first", name="cf_conv")(inputs)
    keras.Model(inputs, conv).save(tmp_path / "source.keras")
    with pytest.raises(Unsupported, match="'cf_conv'.*channels_first"):
        converter.read(tmp_path / "source.keras")
