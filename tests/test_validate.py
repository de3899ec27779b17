"""validate catches the classic porting mistakes and names the culprit layer first.

Each test starts from a correct wconv port (Keras -> torch) and injects one mistake into the
torch side, the way people get it wrong by hand.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import converter
from test_bad_input import assert_clean_failure, wconv


def keras_model(keras):
    """Conv (bias) -> BatchNorm (small variances, epsilon 1e-3) -> ReLU -> Flatten -> Dense(8) -> Dense(8, square)."""
    inputs = keras.Input((7, 6, 3))
    x = keras.layers.Conv2D(5, (3, 2), name="conv")(inputs)
    x = keras.layers.BatchNormalization(epsilon=1e-3, name="bn")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(8, activation="tanh", name="hidden")(x)
    model = keras.Model(inputs, keras.layers.Dense(8, name="square")(x))
    rng = np.random.default_rng(11)
    weights = []
    for variable in model.weights:
        values = rng.standard_normal(variable.shape).astype(np.float32) * 0.5
        if "variance" in variable.path:
            values = np.abs(values) * 0.02 + 0.01  # small: dropping epsilon 1e-3 must show
        weights.append(values)
    model.set_weights(weights)
    return model


@pytest.fixture
def port(tmp_path, keras):
    keras_model(keras).save(tmp_path / "source.keras")
    converter.convert(tmp_path / "source.keras", tmp_path / "port.pt")
    return tmp_path / "source.keras", tmp_path / "port.pt"


def inject(port_path, torch, mistake: str) -> list[str]:
    """Make the mistake in the port; returns the validate options it needs (an edited module is passed
    explicitly, since validate runs a .py found beside a .pt only if wconv generated it)."""
    state = torch.load(port_path, weights_only=True)
    if mistake == "dense_untransposed":  # a square kernel: the shapes cannot reveal it
        state["square.weight"] = state["square.weight"].T.contiguous()
    elif mistake == "conv_left_hwio":  # Keras' (h, w, i, o) bytes poured into torch's (o, i, h, w)
        weight = state["conv.weight"]
        state["conv.weight"] = weight.permute(2, 3, 1, 0).contiguous().reshape(weight.shape)
    elif mistake == "flatten_rows_not_permuted":  # rows left in Keras' (h, w, c) order
        weight = state["hidden.weight"]
        state["hidden.weight"] = weight.reshape(8, 5, 5, 5).permute(0, 2, 3, 1).reshape(8, -1).contiguous()
    elif mistake == "bias_lost":
        state["conv.bias"] = torch.zeros_like(state["conv.bias"])
    elif mistake == "batchnorm_epsilon_dropped":  # torch's default 1e-5 instead of Keras' 1e-3
        source = port_path.with_suffix(".py")
        text = source.read_text()
        source.write_text(re.sub(r"eps=0\.001", "eps=1e-05", text))
        assert source.read_text() != text
        return ["--target-module", f"{source}:Model"]
    torch.save(state, port_path)
    return []


def test_a_correct_port_passes_layer_by_layer(port):
    report = converter.validate(*port)
    assert report.ok and report.first_mismatch is None
    assert [layer.name for layer in report.layers] == ["conv", "bn", "relu", "flatten", "hidden", "square"]


CULPRITS = {
    "dense_untransposed": "square",
    "conv_left_hwio": "conv",
    "flatten_rows_not_permuted": "hidden",
    "bias_lost": "conv",
    "batchnorm_epsilon_dropped": "bn",
}


def _options(cli_options: list[str]) -> dict:
    """``--target-module M`` as validate's keyword."""
    return {"target_module": cli_options[1]} if cli_options else {}


@pytest.mark.parametrize("mistake", CULPRITS)
def test_mistake_is_caught_at_its_layer(mistake, port, torch):
    source, target = port
    report = converter.validate(source, target, **_options(inject(target, torch, mistake)))
    assert not report.ok and report.first_mismatch == CULPRITS[mistake]


def test_the_cli_exits_1_naming_the_mistakes_layer(port, torch):
    source, target = port
    options = inject(target, torch, "batchnorm_epsilon_dropped")
    result = wconv("validate", source, target, "--json", *options)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["first_mismatch"] == CULPRITS["batchnorm_epsilon_dropped"]


def test_mismatched_input_shape_is_bad_input(port):
    source, target = port
    result = wconv("validate", source, target, "--input-shape", "3,5,5")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unreadable_target_is_bad_input(port, tmp_path):
    source, _ = port
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07garbage")
    assert_clean_failure(wconv("validate", source, broken), 2, broken, "ONNX")


def test_assert_equivalent_names_the_culprit(port, torch):
    from converter.testing import assert_equivalent

    source, target = port
    assert_equivalent(source, target).ok
    inject(target, torch, "bias_lost")
    with pytest.raises(AssertionError, match="first layer beyond tolerance: conv"):
        assert_equivalent(source, target)


def test_junit_report(port, torch, tmp_path):
    from xml.etree import ElementTree

    source, target = port
    inject(target, torch, "dense_untransposed")
    result = wconv("validate", source, target, "--junit", tmp_path / "report.xml", "--html", tmp_path / "report.html")
    assert result.returncode == 1
    page = (tmp_path / "report.html").read_text()
    assert "first layer beyond tolerance: square" in page and "<svg" in page
    suite = ElementTree.parse(tmp_path / "report.xml").getroot()
    failed = [case.get("name") for case in suite.iter("testcase") if case.find("failure") is not None]
    assert failed[0] == "square" and int(suite.get("tests")) == 7


@pytest.mark.parametrize("correct", [True, False], ids=["correct", "flatten_rows_not_permuted"])
def test_hand_written_port_is_matched_by_alignment(correct, tmp_path, keras, torch):
    """A port made by hand names its layers otherwise: they are paired as `wconv port` pairs them (topology and
    shapes), and the first mismatch is the Dense whose rows were left in Keras' order."""
    from conftest import TESTS
    from hand_port import port_weights

    model = keras_model(keras)
    model.save(tmp_path / "source.keras")
    torch.save(port_weights(model, permute_flatten_rows=correct), tmp_path / "hand.pt")
    report = converter.validate(tmp_path / "source.keras", tmp_path / "hand.pt",
                                target_module=f"{TESTS / 'hand_port.py'}:HandPort")
    assert report.matching == "by alignment (names, topology, shapes)"
    assert [layer.name for layer in report.layers] == ["conv ~ features", "bn ~ norm", "hidden ~ fc1", "square ~ fc2"]
    assert report.ok is correct
    assert report.first_mismatch == (None if correct else "hidden ~ fc1")


@pytest.mark.slow  # 7 to 13 s on 2 cores: the default suite stays under 10 minutes
def test_layout_stated_by_the_user(tmp_path, keras, torch):
    """A channels-last ONNX file wconv did not record (metadata stripped) validates once the user says so."""
    import onnx

    keras_model(keras).save(tmp_path / "source.keras")
    converter.convert(tmp_path / "source.keras", tmp_path / "kept.onnx", keep_input_layout=True)
    model = onnx.load(tmp_path / "kept.onnx")
    del model.metadata_props[:]
    onnx.save(model, tmp_path / "unrecorded.onnx")
    assert wconv("validate", tmp_path / "source.keras", tmp_path / "unrecorded.onnx").returncode == 2  # shapes
    result = wconv("validate", tmp_path / "source.keras", tmp_path / "unrecorded.onnx", "--target-layout",
                   "channels_last", "--json")
    assert result.returncode == 0, result.stderr


def test_different_output_counts_are_bad_input(tmp_path, keras):
    keras_model(keras).save(tmp_path / "one.keras")
    inputs = keras.Input((7, 6, 3))
    conv = keras.layers.Conv2D(2, 3)(inputs)
    keras.Model(inputs, [conv, keras.layers.Flatten()(conv)]).save(tmp_path / "two.keras")
    converter.convert(tmp_path / "two.keras", tmp_path / "two.onnx")
    assert_clean_failure(wconv("validate", tmp_path / "one.keras", tmp_path / "two.onnx"), 2, tmp_path / "one.keras",
                         "1 outputs", "has 2")


def test_default_tolerances_follow_the_dtype():
    from converter.validation import tolerances

    assert tolerances(np.dtype("float32"), None, None) == (1e-5, 1e-4)
    assert tolerances(np.dtype("float16"), None, None) == (1e-3, 1e-2)
    assert tolerances(np.dtype("float16"), 0.5, None) == (0.5, 1e-2)


def test_layers_before_an_in_place_activation_are_recorded_as_they_were(tmp_path, torch):
    """torchvision and timm end blocks with ReLU(inplace=True), which rewrites the BatchNorm's output tensor: the
    torch source's layers are recorded as copies, so that the BatchNorm is compared as it computed."""
    from torch import nn

    from torch_convnets import seeded

    path = tmp_path / "net.py"
    path.write_text("from torch import nn\n\n\nclass Net(nn.Sequential):\n    def __init__(self):\n"
                    "        super().__init__(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(inplace=True), "
                    "nn.Flatten(), nn.Linear(4 * 5 * 4, 3))\n")
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(inplace=True), nn.Flatten(),
                          nn.Linear(4 * 5 * 4, 3))
    torch.save(seeded(model).state_dict(), tmp_path / "a.pt")
    converter.convert(tmp_path / "a.pt", tmp_path / "b.onnx", module=f"{path}:Net", input_shape=[3, 7, 6])
    report = converter.validate(tmp_path / "a.pt", tmp_path / "b.onnx", source_module=f"{path}:Net",
                                input_shape=[3, 7, 6])
    assert report.ok and report.first_mismatch is None, [layer.name for layer in report.layers if not layer.ok]
    assert "1" in [layer.name for layer in report.layers]  # the BatchNorm, compared


@pytest.mark.slow  # 7 to 13 s on 2 cores: the default suite stays under 10 minutes
def test_given_inputs_are_taken_as_the_source_takes_them(port, tmp_path, keras):
    """--inputs for a Keras source are channels last, as Keras takes them; the report says so. The same batch
    given channels last compares exactly as the seeded random batch it came from."""
    source, target = port
    from converter.validation import load_inputs, random_inputs

    batch = random_inputs([(None, 3, 7, 6)], 4, 0)[0]  # IR order: (N, C, H, W)
    np.save(tmp_path / "x.npy", np.moveaxis(batch, 1, -1))  # as Keras takes it: (N, H, W, C)
    given = converter.validate(source, target, inputs=load_inputs(tmp_path / "x.npy")).to_dict()
    random = converter.validate(source, target).to_dict()
    assert given["ok"] and given["inputs"].endswith("(channels last)")
    assert given["input_shapes"] == random["input_shapes"] == [[4, 3, 7, 6]]
    assert [layer["max_abs"] for layer in given["layers"]] == [layer["max_abs"] for layer in random["layers"]]
    np.save(tmp_path / "wrong.npy", batch)  # channels first for a Keras source: Keras cannot run it
    assert wconv("validate", source, target, "--inputs", tmp_path / "wrong.npy").returncode == 2
