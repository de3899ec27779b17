"""Interface layout: channels-first ports by default, or the Keras source's channels-last with --keep-input-layout."""

from __future__ import annotations

import json

import numpy as np
import pytest

import converter
from conftest import import_file
from test_bad_input import wconv
from test_convnets import assert_outputs_match, canonical_input, keras_outputs


def keras_source(keras, tmp_path):
    """A feature map output and a logits output, so that both kinds of output are checked."""
    inputs = keras.Input((7, 9, 3))
    features = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="conv")(inputs)
    logits = keras.layers.Dense(2, name="dense")(keras.layers.Flatten(name="flatten")(features))
    model = keras.Model(inputs, [features, logits])
    rng = np.random.default_rng(2)
    model.set_weights([rng.standard_normal(w.shape).astype(np.float32) for w in model.get_weights()])
    model.save(tmp_path / "source.keras")
    return model


def channels_last_outputs(model, x_channels_last):
    return [np.asarray(o) for o in model(x_channels_last)]


@pytest.mark.slow  # 7 to 25 s on 2 cores: the default suite stays under 10 minutes
@pytest.mark.parametrize("target", ["torch", "onnx"])
def test_keep_input_layout_is_a_drop_in_replacement(target, tmp_path, keras, torch):
    model = keras_source(keras, tmp_path)
    x = np.random.default_rng(4).standard_normal((3, 7, 9, 3)).astype(np.float32)  # NHWC, as Keras takes it
    out = tmp_path / ("out.pt" if target == "torch" else "out.onnx")
    result = wconv(f"keras-to-{target}", tmp_path / "source.keras", out, "--keep-input-layout")
    assert result.returncode == 0, result.stderr
    if target == "torch":
        module = import_file(out.with_suffix(".py"), f"kept_{tmp_path.name}").Model()
        module.load_state_dict(torch.load(out, weights_only=True))
        assert module.wconv_interface == "channels_last"
        with torch.no_grad():
            found = [o.numpy() for o in module.eval()(torch.from_numpy(x))]
    else:
        import onnxruntime

        session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        assert session.get_inputs()[0].shape[1:] == [7, 9, 3]
        found = session.run(None, {session.get_inputs()[0].name: x})
    assert_outputs_match(channels_last_outputs(model, x), found)
    check = wconv("validate", tmp_path / "source.keras", out, "--json")  # validate reads the interface too
    assert check.returncode == 0 and json.loads(check.stdout)["ok"], check.stderr + check.stdout


def test_channels_last_port_reads_back(tmp_path, keras, torch):
    """The generated channels-last module is a torch source like any other (its permutes are read as such)."""
    model = keras_source(keras, tmp_path)
    converter.convert(tmp_path / "source.keras", tmp_path / "kept.pt", keep_input_layout=True)
    converter.convert(tmp_path / "kept.pt", tmp_path / "again.onnx", module=f"{tmp_path / 'kept.py'}:Model")
    import onnxruntime

    session = onnxruntime.InferenceSession(str(tmp_path / "again.onnx"), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(4).standard_normal((3, 7, 9, 3)).astype(np.float32)
    assert_outputs_match(channels_last_outputs(model, x), session.run(None, {session.get_inputs()[0].name: x}))


def test_default_port_is_channels_first(tmp_path, keras):
    model = keras_source(keras, tmp_path)
    converter.convert(tmp_path / "source.keras", tmp_path / "out.onnx")
    import onnxruntime

    session = onnxruntime.InferenceSession(str(tmp_path / "out.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[1:] == [3, 7, 9]
    x = canonical_input((3, 7, 9))
    assert_outputs_match(keras_outputs(model, x), session.run(None, {session.get_inputs()[0].name: x}))


def test_keep_input_layout_refused_for_keras_output(tmp_path, keras):
    keras_source(keras, tmp_path)
    with pytest.raises(converter.WconvError, match="torch and ONNX outputs"):
        converter.convert(tmp_path / "source.keras", tmp_path / "out.keras", keep_input_layout=True)
