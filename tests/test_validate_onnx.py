"""validate and --check with ONNX on either side: every weighted layer is compared with its counterpart, a
weight corrupted inside the .onnx is named first, and the exit code, the text, --json and --junit agree."""

from __future__ import annotations

import json
from xml.etree import ElementTree

import numpy as np
import pytest

import converter
from test_bad_input import wconv


def cnn(keras):
    """Conv (3x2 kernel) -> BatchNorm -> Flatten -> Dense(relu) -> square Dense -> logits; BatchNorm's statistics away
    from their defaults."""
    inputs = keras.Input((9, 7, 3))
    x = keras.layers.Conv2D(5, (3, 2), name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Flatten(name="flat")(x)
    x = keras.layers.Dense(12, activation="relu", name="fc")(x)
    x = keras.layers.Dense(12, name="square")(x)
    return seeded(keras.Model(inputs, keras.layers.Dense(4, name="logits")(x)))


def tagger(keras):
    """An LSTM over (T=6, F=5) with 7 units, then a Dense on its last state."""
    inputs = keras.Input((6, 5))
    x = keras.layers.LSTM(7, name="lstm")(inputs)
    return seeded(keras.Model(inputs, keras.layers.Dense(3, name="head")(x)))


def seeded(model):
    rng = np.random.default_rng(5)
    model.set_weights([np.abs(w) + 0.5 if "variance" in v.path else w
                       for v, w in ((v, rng.standard_normal(v.shape).astype(np.float32) * 0.5) for v in model.weights)])
    return model


MODELS = {"cnn": cnn, "lstm": tagger}
WEIGHTED = {"cnn": ["conv", "bn", "fc", "square", "logits"], "lstm": ["lstm", "head"]}


def corrupt(onnx_path, mistake: str) -> str:
    """One weight inside the .onnx made wrong the way hand ports get it wrong; returns the layer to blame."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(onnx_path)
    weights = {t.name: t for t in model.graph.initializer}
    layer = {"dense": "square", "conv": "conv", "recurrent": "lstm"}[mistake]
    name = f"{layer}.R" if mistake == "recurrent" else f"{layer}.weight"  # R: ONNX LSTM's recurrent kernel
    array = numpy_helper.to_array(weights[name])
    if mistake == "dense":  # a square kernel left untransposed: its shape cannot tell
        array = array.T
    elif mistake == "conv":  # Keras' (h, w, i, o) bytes poured into (o, i, h, w)
        array = array.transpose(2, 3, 1, 0).reshape(array.shape)
    else:  # the recurrent kernel's gates in Keras' order (i, f, c, o) where ONNX wants (i, o, f, c)
        gates = np.split(array, 4, axis=1)
        array = np.concatenate([gates[0], gates[2], gates[1], gates[3]], axis=1)
    weights[name].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(array), name))
    onnx.save(model, onnx_path)
    return layer


@pytest.fixture(params=list(MODELS))
def ported(request, tmp_path, keras):
    source = tmp_path / f"{request.param}.keras"
    MODELS[request.param](keras).save(source)
    converter.convert(source, tmp_path / f"{request.param}.onnx")
    return request.param, source, tmp_path / f"{request.param}.onnx"


@pytest.mark.parametrize("direction", ["keras->onnx", "onnx->keras"])
def test_every_weighted_layer_of_an_onnx_side_is_compared(ported, direction):
    kind, keras_file, onnx_file = ported
    source, target = (keras_file, onnx_file) if direction == "keras->onnx" else (onnx_file, keras_file)
    report = converter.validate(source, target)
    assert report.ok and report.first_mismatch is None
    compared = [layer.name for layer in report.layers]
    assert all(name in compared for name in WEIGHTED[kind]), compared


@pytest.mark.parametrize("target", ["torch", "keras"])
def test_check_from_onnx_agrees_with_itself(ported, target, tmp_path):
    """onnx-to-torch/keras --check: the layer table, the verdict and the exit code say the same thing."""
    kind, _, onnx_file = ported
    out = tmp_path / f"back.{'pt' if target == 'torch' else 'keras'}"
    result = wconv(f"onnx-to-{target}", onnx_file, out, "--check")
    assert result.returncode == 0, result.stderr
    assert "predictions match" in result.stdout and "mismatch" not in result.stdout.lower()
    for name in WEIGHTED[kind]:
        assert f"\n{name} " in result.stdout, result.stdout


CORRUPTIONS = [("cnn", "dense"), ("cnn", "conv"), ("lstm", "recurrent")]


@pytest.mark.parametrize("side", ["onnx-target", "onnx-source"])
@pytest.mark.parametrize("kind,mistake", CORRUPTIONS, ids=[m for _, m in CORRUPTIONS])
def test_a_corrupted_onnx_weight_is_named_first(kind, mistake, side, tmp_path, keras):
    keras_file, onnx_file = tmp_path / f"{kind}.keras", tmp_path / f"{kind}.onnx"
    MODELS[kind](keras).save(keras_file)
    converter.convert(keras_file, onnx_file)
    culprit = corrupt(onnx_file, mistake)
    source, target = (keras_file, onnx_file) if side == "onnx-target" else (onnx_file, keras_file)
    report = converter.validate(source, target)
    assert not report.ok and report.first_mismatch == culprit


def test_the_cli_names_the_corrupted_weight_in_its_json_and_junit(tmp_path, keras):
    """What the in-process reports above say, the command says: exit 1, --json and --junit."""
    keras_file, onnx_file = tmp_path / "cnn.keras", tmp_path / "cnn.onnx"
    MODELS["cnn"](keras).save(keras_file)
    converter.convert(keras_file, onnx_file)
    culprit = corrupt(onnx_file, "dense")
    junit = tmp_path / "report.xml"
    result = wconv("validate", keras_file, onnx_file, "--json", "--junit", junit)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["first_mismatch"] == culprit
    assert f"first layer beyond tolerance: {culprit}" in report["verdict"]
    suite = ElementTree.parse(junit).getroot()
    failed = [case.get("name") for case in suite.iter("testcase") if case.find("failure") is not None]
    assert failed[0] == culprit and int(suite.get("failures")) == len(failed)


def test_the_text_verdict_marks_the_same_first_mismatch(tmp_path, keras):
    """The table and the verdict line say what --json says (the corrupted square Dense, ONNX as the target)."""
    cnn(keras).save(tmp_path / "cnn.keras")
    converter.convert(tmp_path / "cnn.keras", tmp_path / "cnn.onnx")
    corrupt(tmp_path / "cnn.onnx", "dense")
    text = wconv("validate", tmp_path / "cnn.keras", tmp_path / "cnn.onnx")
    assert text.returncode == 1 and "predictions DIFFER" in text.stdout
    assert "first layer beyond tolerance: square" in text.stdout
    assert next(line for line in text.stdout.splitlines() if "FIRST MISMATCH" in line).startswith("square ")


def test_a_layer_beyond_tolerance_fails_even_when_the_outputs_match(tmp_path, keras):
    """A mismatch a later layer hides (a ReLU zeroing it) still fails: exit code, text, --json and --junit agree."""
    inputs = keras.Input((4,))
    x = keras.layers.Dense(6, name="hidden")(inputs)
    x = keras.layers.ReLU(name="relu")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(x))
    model.get_layer("hidden").set_weights([np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32),
                                           np.full(6, -100.0, np.float32)])  # every unit dead after the ReLU
    model.get_layer("out").set_weights([np.ones((6, 2), np.float32), np.array([0.5, -0.25], np.float32)])
    model.save(tmp_path / "dead.keras")
    converter.convert(tmp_path / "dead.keras", tmp_path / "dead.onnx")
    import onnx
    from onnx import numpy_helper

    onnx_model = onnx.load(tmp_path / "dead.onnx")
    bias = next(t for t in onnx_model.graph.initializer if t.name == "hidden.bias")
    bias.CopyFrom(numpy_helper.from_array(np.full(6, -90.0, np.float32), "hidden.bias"))  # still dead, but wrong
    onnx.save(onnx_model, tmp_path / "dead.onnx")
    result = wconv("validate", tmp_path / "dead.keras", tmp_path / "dead.onnx", "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 1 and report["ok"] is False and report["first_mismatch"] == "hidden"
    assert all(output["ok"] for output in report["outputs"])
    assert report["verdict"].startswith("outputs match but layers DIFFER")
