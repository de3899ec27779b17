"""Real architectures: keras.applications models and a torch ResNet-18, with seeded non-trivial weights.

Logits (no classifier activation) must match within 1e-4 of the largest logit: deep residual nets
carry float32 noise of a few 1e-5 relative even between two runs of one framework, while a layout
bug shows as percents.
"""

from __future__ import annotations

import numpy as np
import pytest

import converter
import torch_convnets
from conftest import TESTS, TARGET_SUFFIX, assert_close
from test_convnets import canonical_input, keras_outputs, run_target, torch_outputs

INPUT = (96, 128, 3)  # channels-last, h != w
FAST = ["MobileNetV2", "ResNet50", "EfficientNetB0"]
SLOW = ["DenseNet121", "InceptionV3", "VGG16", "Xception"]


def seeded_keras(model, seed=0):
    """Scaled random kernels, BatchNorm statistics and gammas/betas away from their defaults."""
    rng = np.random.default_rng(seed)
    weights = []
    for variable in model.weights:
        values = rng.standard_normal(variable.shape).astype(np.float32)
        path = getattr(variable, "path", variable.name)  # Keras 3 has .path, Keras 2 .name
        if len(variable.shape) > 1:
            fan_in = np.prod(variable.shape[:-2] if "depthwise" in path else variable.shape[:-1])
            values /= np.sqrt(fan_in)
        elif "variance" in path:
            values = np.abs(values) * 0.5 + 0.5
        else:
            values = values * 0.1 + (1.0 if "gamma" in path else 0.0)
        weights.append(values)
    model.set_weights(weights)
    return model


def assert_logits_match(expected, found):
    assert_close(expected, found, what="logits")


def keras_application(name, target, tmp_path, keras):
    model = getattr(keras.applications, name)(weights=None, input_shape=INPUT, classifier_activation=None)
    seeded_keras(model).save(tmp_path / "source.keras")
    x = canonical_input((INPUT[2], *INPUT[:2]), batch=2)
    out = tmp_path / f"out{TARGET_SUFFIX[target]}"
    converter.convert(tmp_path / "source.keras", out)
    assert_logits_match(keras_outputs(model, x)[0], run_target(target, out, x)[0])


@pytest.mark.parametrize("target", ["torch", "onnx"])
@pytest.mark.parametrize("name", FAST)
def test_keras_application(name, target, tmp_path, keras):
    keras_application(name, target, tmp_path, keras)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["torch", "onnx"])
@pytest.mark.parametrize("name", SLOW)
def test_keras_application_slow(name, target, tmp_path, keras):
    keras_application(name, target, tmp_path, keras)


@pytest.mark.slow  # 7 to 25 s on 2 cores: the default suite stays under 10 minutes
@pytest.mark.parametrize("via", ["torch", "onnx"])
def test_keras_application_back_to_keras(via, tmp_path, keras):
    """EfficientNetB0 (rescaling, normalization, SE blocks, swish) to torch or ONNX and back to Keras."""
    model = getattr(keras.applications, "EfficientNetB0")(weights=None, input_shape=INPUT, classifier_activation=None)
    seeded_keras(model).save(tmp_path / "source.keras")
    middle = tmp_path / f"middle{TARGET_SUFFIX[via]}"
    converter.convert(tmp_path / "source.keras", middle)
    module = f"{middle.with_suffix('.py')}:Model" if via == "torch" else None
    converter.convert(middle, tmp_path / "back.keras", module=module)
    x = canonical_input((INPUT[2], *INPUT[:2]), batch=2)
    assert_logits_match(keras_outputs(model, x)[0], run_target("keras", tmp_path / "back.keras", x)[0])


@pytest.mark.parametrize("target", ["keras", "onnx"])
def test_torch_resnet18(target, tmp_path, torch):
    from torch_resnet import ResNet18

    model = torch_convnets.seeded(ResNet18(), seed=3)
    torch.save(model.state_dict(), tmp_path / "source.pt")
    x = canonical_input(ResNet18.input_shape, batch=2)
    out = tmp_path / f"out{TARGET_SUFFIX[target]}"
    converter.convert(tmp_path / "source.pt", out, module=f"{TESTS / 'torch_resnet.py'}:ResNet18",
                      input_shape=ResNet18.input_shape)
    assert_logits_match(torch_outputs(model, x)[0], run_target(target, out, x)[0])
