"""Shared helpers: save source models, run converted models with their real frameworks."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
TESTS = Path(__file__).parent
ROOT = TESTS.parent
TORCH_MODELS = TESTS / "torch_models.py"


@pytest.fixture(scope="session")
def keras():
    import keras

    return keras


@pytest.fixture(scope="session")
def torch():
    import torch

    return torch


def run_keras(path, x):
    """Canonical (channels-first) input and output; Keras sees channels-last."""
    import keras
    import converter.keras_layers  # noqa: F401  (wconv's own layers, in ViT ports)

    return run_keras_model(keras.saving.load_model(path, compile=False), x)


def channels_last(x):
    """A feature map (N, C, spatial...) as Keras holds it, (N, spatial..., C); vectors stay as they are."""
    x = np.asarray(x)
    return np.ascontiguousarray(np.moveaxis(x, 1, -1)) if x.ndim >= 3 else x


def channels_first(x):
    x = np.asarray(x)
    return np.ascontiguousarray(np.moveaxis(x, -1, 1)) if x.ndim >= 3 else x


def run_keras_model(model, x):
    """For the feature-map and vector models of these tests: x and the result channels-first."""
    return channels_first(model(channels_last(x), training=False))


def run_onnx(path, x):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def import_file(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def torch_generated(pt_path):
    """wconv's generated Model with its state_dict loaded strictly, as a user would."""
    import torch

    module = import_file(Path(pt_path).with_suffix(".py"), f"generated_{abs(hash(str(pt_path)))}")
    model = module.Model()
    model.load_state_dict(torch.load(pt_path, weights_only=True), strict=True)
    return model.eval()


def run_torch_model(model, x):
    import torch

    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def run_torch(pt_path, x):
    return run_torch_model(torch_generated(pt_path), x)


RUNNERS = {"keras": run_keras, "torch": run_torch, "onnx": run_onnx}
TARGET_SUFFIX = {"keras": ".keras", "torch": ".pt", "onnx": ".onnx"}


# Every comparison in the suite uses wconv's own rule, max|expected - found| <= atol + rtol * max|expected|,
# with validate's float32 defaults (1e-5, 1e-4). Never a bare absolute bound: float32 sums over
# thousands of terms round differently on CPUs with other vector units (AVX-512, AMX, oneDNN kernels),
# by up to a few 1e-5 of the largest value, while every layout mistake wconv guards against shows as
# percents (the validate tests inject them and see them fail at these tolerances).
def assert_close(expected, found, atol=None, rtol=None, what="outputs"):
    from converter.validation import compare, tolerances

    expected, found = np.asarray(expected), np.asarray(found)
    atol, rtol = tolerances(expected.dtype, atol, rtol)
    assert expected.shape == found.shape, (what, expected.shape, found.shape)
    assert np.abs(expected).max(initial=0) > 0, f"the {what} are all zero: the test would prove nothing"
    diff = compare(what, expected, found, atol, rtol)
    assert diff.ok, (f"{what}: max abs diff {diff.max_abs:.3g} > {atol:g} + {rtol:g} x "
                     f"{float(np.abs(expected).max()):.3g} (relative {diff.max_rel:.3g})")


assert_predictions_match = assert_close


def run_inputs(target, path, inputs) -> list:
    """A Keras, torch (its generated module) or ONNX file run on several inputs (in the model's input order); its
    outputs as a list."""
    if target == "torch":
        import torch

        with torch.no_grad():
            found = torch_generated(path)(*[torch.from_numpy(x) for x in inputs])
        return [o.numpy() for o in (found if isinstance(found, (list, tuple)) else [found])]
    if target == "keras":
        import keras

        found = keras.saving.load_model(path, compile=False)(inputs)
        return [np.asarray(o) for o in (found if isinstance(found, (list, tuple)) else [found])]
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {spec.name: x for spec, x in zip(session.get_inputs(), inputs)})
