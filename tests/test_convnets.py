"""Convolutional networks in every direction, checked against the frameworks themselves.

Keras models are the sources for Keras->torch and Keras->ONNX; hand-written torch modules for
torch->Keras and torch->ONNX; those torch modules exported by torch.onnx are the sources for
ONNX->torch and ONNX->Keras. Inputs are canonical (channels-first) seeded normals; Keras is fed
and read channels-last.
"""

from __future__ import annotations

import numpy as np
import pytest

import converter
import keras_convnets
import torch_convnets
from conftest import TARGET_SUFFIX, TESTS, assert_close, import_file

TORCH_FILE = TESTS / "torch_convnets.py"


def canonical_input(shape, seed=5, batch=3):
    return np.random.default_rng(seed).standard_normal((batch, *shape)).astype(np.float32)


def keras_outputs(model, x):
    """``x``: one canonical array, or a list of them for several inputs."""
    from conftest import channels_first as to_channels_first, channels_last as to_channels_last

    x = [to_channels_last(a) for a in x] if isinstance(x, list) else to_channels_last(x)
    outputs = model(x, training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return [to_channels_first(np.asarray(o)) for o in outputs]


def torch_outputs(model, x):
    import torch

    with torch.no_grad():
        outputs = model(*[torch.from_numpy(a) for a in (x if isinstance(x, list) else [x])])
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return [o.numpy() for o in outputs]


def run_target(kind, path, x):
    if kind == "keras":
        import keras

        return keras_outputs(keras.saving.load_model(path, compile=False), x)
    if kind == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        arrays = x if isinstance(x, list) else [x]
        return session.run(None, {i.name: a for i, a in zip(session.get_inputs(), arrays)})
    import torch

    module = import_file(path.with_suffix(".py"), f"generated_{path.parent.name}_{path.stem}")
    model = module.Model()
    model.load_state_dict(torch.load(path, weights_only=True), strict=True)
    return torch_outputs(model.eval(), x)


def assert_outputs_match(expected, found):
    assert len(expected) == len(found)
    for index, (want, got) in enumerate(zip(expected, found)):
        assert_close(want, got, what=f"output {index}")


@pytest.mark.parametrize("target", ["torch", "onnx"])
@pytest.mark.parametrize("case", keras_convnets.MODELS)
def test_keras_convnet(case, target, tmp_path, keras):
    model = keras_convnets.seeded(keras_convnets.MODELS[case](keras))
    model.save(tmp_path / "source.keras")
    inputs = converter.read(tmp_path / "source.keras").inputs
    x = [canonical_input(v.shape[1:], seed=5 + i) for i, v in enumerate(inputs)]
    x = x[0] if len(x) == 1 else x
    out = tmp_path / f"out{TARGET_SUFFIX[target]}"
    converter.convert(tmp_path / "source.keras", out)
    assert_outputs_match(keras_outputs(model, x), run_target(target, out, x))


@pytest.mark.parametrize("saved_by", ["keras3-h5", "keras2-h5"])
@pytest.mark.parametrize("case", keras_convnets.MODELS)
def test_keras_convnet_from_legacy_h5(case, saved_by, tmp_path):
    """Every layer class from the legacy .h5 of Keras 3 and of Keras 2 (tf_keras), not only from .keras:
    the weights are named by class and config, whatever the file calls them."""
    if saved_by == "keras2-h5":
        import tf_keras as framework
    else:
        import keras as framework
    try:
        model = keras_convnets.seeded(keras_convnets.MODELS[case](framework))
    except (TypeError, ValueError, AttributeError) as error:  # a layer or option Keras 2 lacks
        pytest.skip(f"{saved_by} cannot build {case}: {error}")
    model.save(tmp_path / "source.h5")
    inputs = converter.read(tmp_path / "source.h5").inputs
    x = [canonical_input(v.shape[1:], seed=5 + i) for i, v in enumerate(inputs)]
    x = x[0] if len(x) == 1 else x
    converter.convert(tmp_path / "source.h5", tmp_path / "out.pt")
    assert_outputs_match(keras_outputs(model, x), run_target("torch", tmp_path / "out.pt", x))


def torch_source(case, tmp_path, torch):
    model = torch_convnets.seeded(torch_convnets.MODELS[case]())
    torch.save(model.state_dict(), tmp_path / "source.pt")
    return model, canonical_input(model.input_shape)


@pytest.mark.parametrize("target", ["keras", "onnx"])
@pytest.mark.parametrize("case", torch_convnets.MODELS)
def test_torch_convnet(case, target, tmp_path, torch):
    model, x = torch_source(case, tmp_path, torch)
    out = tmp_path / f"out{TARGET_SUFFIX[target]}"
    converter.convert(tmp_path / "source.pt", out, module=f"{TORCH_FILE}:{case}", input_shape=model.input_shape)
    assert_outputs_match(torch_outputs(model, x), run_target(target, out, x))


ONNX_SOURCES = [name for name, cls in torch_convnets.MODELS.items() if getattr(cls, "onnx_export", True)]


@pytest.mark.parametrize("target", ["torch", "keras"])
@pytest.mark.parametrize("case", ONNX_SOURCES)
def test_onnx_convnet(case, target, tmp_path, torch):
    """The ONNX source is what torch.onnx (TorchScript exporter, opset 17) makes of the torch module."""
    model, x = torch_source(case, tmp_path, torch)
    source = tmp_path / "source.onnx"
    # A fixed batch lets the exporter fold F.pad's size arithmetic into constants.
    torch.onnx.export(model, torch.from_numpy(x), source, dynamo=False, opset_version=17, input_names=["x"])
    expected = run_target("onnx", source, x)
    out = tmp_path / f"out{TARGET_SUFFIX[target]}"
    converter.convert(source, out)
    assert_outputs_match(expected, run_target(target, out, x))
