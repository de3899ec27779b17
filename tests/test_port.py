"""`wconv port`: a model's weights into a model the user wrote, whose layer names share nothing with the source's.

Real architectures against independently written targets (a Keras ResNet50 into a torchvision-named ResNet-50,
a Keras 2 VGG16 .h5 into a torchvision-named VGG16, a torch ResNet-18 into a Keras model built by a user's
function, a Keras LSTM text model into a hand-written torch LSTM), each judged by running the source in its own
framework against the filled target in its own. Then what must not pass: another architecture, one layer too many,
an ambiguous pair (settled by --map, and a wrong --map caught by the proof), a target that cannot express the
source (another epsilon, torchvision's v1.5 strides).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import converter
from conftest import TESTS, assert_close
from converter.porting import write_port
from port_modules import Attending, DepthwisePointwise, Square
from test_architectures import seeded_keras
from test_bad_input import assert_clean_failure, digest, wconv

torch = pytest.importorskip("torch")

TORCHVISION_STYLE = TESTS / "torchvision_style.py"
PORT_MODULES = TESTS / "port_modules.py"


def keras_predictions(model, x_channels_first):
    return np.asarray(model(np.transpose(x_channels_first, (0, 2, 3, 1)), training=False))


def filled(cls, weights, **arguments):
    model = cls(**arguments)
    model.load_state_dict({key: torch.from_numpy(np.array(value)) for key, value in weights.items()}, strict=True)
    return model.eval()


def torch_predictions(model, x):
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


@pytest.fixture
def keras_resnet50(tmp_path, keras):
    model = seeded_keras(keras.applications.ResNet50(weights=None, input_shape=(64, 48, 3), classes=10,
                                                     classifier_activation=None))
    model.save(tmp_path / "resnet50.keras")
    return model, tmp_path / "resnet50.keras"


@pytest.mark.slow  # a keras.applications ResNet50 (as the other large models): keeps the default suite under 10 min
def test_keras_resnet50_into_a_torchvision_named_resnet50(keras_resnet50, tmp_path):
    """Every pair found by topology alone (no name is shared), the conv biases Keras has moved into the
    BatchNorms after them (the target's convs have none); the CLI writes, then proves, exit 0."""
    from torchvision_style import ResNet50

    model, source = keras_resnet50
    into = f"{TORCHVISION_STYLE}:ResNet50"
    dry = wconv("port", source, tmp_path / "out.pt", "--into", into, "--module-args", '{"num_classes": 10}',
                "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    mapping = {row["source"]: row for row in json.loads(dry.stdout)["mapping"]}
    assert not (tmp_path / "out.pt").exists()
    assert len(mapping) == 107 and {row["reason"] for row in mapping.values()} == {"topology"}
    assert mapping["conv2_block1_0_conv"]["target"] == "layer1.0.downsample.0"
    assert mapping["conv2_block1_0_conv"]["permutation"] == "kernel h w i o -> weight o i h w"
    assert "moved into 'conv2_block1_0_bn'" in mapping["conv2_block1_0_conv"]["note"]
    assert mapping["conv5_block3_3_bn"]["target"] == "layer4.2.bn3" and mapping["predictions"]["target"] == "fc"
    done = wconv("port", source, tmp_path / "out.pt", "--into", into, "--module-args", '{"num_classes": 10}')
    assert done.returncode == 0, done.stderr
    assert "predictions match" in done.stdout
    x = np.random.default_rng(1).standard_normal((3, 3, 64, 48)).astype(np.float32)
    port = filled(ResNet50, _state(tmp_path / "out.pt"), num_classes=10)
    assert_close(keras_predictions(model, x), torch_predictions(port, x))


def _state(path):
    from converter.adapters.torch import load_state_dict

    return load_state_dict(path)


def test_keras2_vgg16_h5_into_a_torchvision_named_vgg16(tmp_path):
    """A Keras 2 (tf_keras) .h5: its Flatten takes (h, w, c); the target's classifier the flattened NCHW map."""
    tf_keras = pytest.importorskip("tf_keras")
    from torchvision_style import VGG16

    model = seeded_keras(tf_keras.applications.VGG16(weights=None, input_shape=(64, 48, 3), classes=10,
                                                     classifier_activation=None))
    model.save(tmp_path / "vgg16.h5")
    weights, mapping = converter.port(tmp_path / "vgg16.h5", f"{TORCHVISION_STYLE}:VGG16",
                                      into_args={"num_classes": 10, "pooled": (2, 1)})
    rows = {row.source: row for row in mapping}
    assert rows["fc1"].target == "classifier.0" and "(c h w)" in rows["fc1"].note
    assert rows["block1_conv1"].target == "features.0" and rows["predictions"].target == "classifier.6"
    x = np.random.default_rng(2).standard_normal((2, 3, 64, 48)).astype(np.float32)
    port = filled(VGG16, weights, num_classes=10, pooled=(2, 1))
    assert_close(keras_predictions(model, x), torch_predictions(port, x))


@pytest.mark.parametrize("into, suffix", [("function", ".keras"), pytest.param("function", ".h5", marks=pytest.mark.slow),
                                          pytest.param("file", ".keras", marks=pytest.mark.slow)])  # 17 s each
def test_torch_resnet18_into_a_keras_model_a_function_builds(into, suffix, tmp_path, keras):
    """The Keras model a user's function builds, or the user's own .keras file (its weights replaced)."""
    from keras_targets import resnet18
    from torch_convnets import seeded
    from torch_resnet import ResNet18

    model = seeded(ResNet18())
    torch.save(model.state_dict(), tmp_path / "resnet18.pt")
    target = f"{TESTS / 'keras_targets.py'}:resnet18"
    if into == "file":
        resnet18().save(tmp_path / "mine.keras")
        target = tmp_path / "mine.keras"
    out = tmp_path / f"filled{suffix}"
    result = wconv("port", tmp_path / "resnet18.pt", out, "--into", target,
                   "--source-module", f"{TESTS / 'torch_resnet.py'}:ResNet18", "--input-shape", "3,64,80")
    assert result.returncode == 0, result.stderr
    port = keras.saving.load_model(out, compile=False)
    assert [layer.name for layer in port.layers] == [layer.name for layer in resnet18().layers]
    x = np.random.default_rng(3).standard_normal((2, 3, 64, 80)).astype(np.float32)
    assert_close(torch_predictions(model, x), keras_predictions(port, x))


def test_keras_lstm_text_model_into_a_hand_written_torch_lstm(tmp_path, keras):
    """Gate order (Keras i f c o = torch i f g o) and the one Keras bias split over torch's two."""
    from torchvision_style import LSTMClassifier

    ids = keras.Input((11,), dtype="int32", name="ids")
    x = keras.layers.Embedding(37, 6, name="embedding")(ids)
    x = keras.layers.LSTM(9, name="encoder")(x)
    model = seeded_keras(keras.Model(ids, keras.layers.Dense(3, name="head")(x)))
    model.save(tmp_path / "text.keras")
    weights, mapping = converter.port(tmp_path / "text.keras", LSTMClassifier())
    assert [(row.source, row.target) for row in mapping] == [("embedding", "table"), ("encoder", "rnn"),
                                                            ("head", "scores")]
    tokens = np.random.default_rng(4).integers(0, 37, (4, 11))
    port = filled(LSTMClassifier, weights)
    with torch.no_grad():
        found = port(torch.from_numpy(tokens)).numpy()
    assert_close(np.asarray(model(tokens)), found)


def test_keras_attention_into_nn_multiheadattention(tmp_path, keras):
    """Keras' separate (E, heads, key_dim) q/k/v kernels packed into the user's in_proj_weight."""
    x_in = keras.Input((11, 8), name="x")
    attended = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4, name="mha")(x_in, x_in)
    y = keras.layers.LayerNormalization(name="ln")(keras.layers.Add(name="res")([x_in, attended]))
    model = seeded_keras(keras.Model(x_in, keras.layers.Dense(3, name="out")(y)))
    model.save(tmp_path / "attention.keras")
    weights, mapping = converter.port(tmp_path / "attention.keras", Attending())
    assert [(row.source, row.target) for row in mapping] == [("mha", "attention"), ("ln", "norm"), ("out", "head")]
    x = np.random.default_rng(6).standard_normal((4, 11, 8)).astype(np.float32)
    assert_close(np.asarray(model(x)), torch_predictions(filled(Attending, weights), x))


def test_a_torch_onnx_export_back_into_its_own_module(tmp_path):
    """An ONNX file (torch.onnx, attention spelled out) into the torch class it was exported from: what a user
    who kept only the .onnx does to get their module back."""
    from sequence_models import TransformerTagger, seeded, tokens

    model = seeded(TransformerTagger())
    torch.onnx.export(model, (torch.from_numpy(tokens()),), tmp_path / "tagger.onnx", dynamo=False, opset_version=17,
                      input_names=["ids"], dynamic_axes={"ids": {0: "batch"}})
    weights, mapping = converter.port(tmp_path / "tagger.onnx", TransformerTagger())
    assert ("/encoder/layers.1/self_attn", "encoder.layers.1.self_attn") in [(r.source, r.target) for r in mapping]
    ids = tokens(batch=3, seed=7)
    port = filled(TransformerTagger, weights)
    assert_close(torch_predictions(model, ids), torch_predictions(port, ids))


def separable_keras(keras):
    x = keras.Input((12, 10, 4), name="x")
    y = keras.layers.SeparableConv2D(6, 3, padding="same", depth_multiplier=2, name="sep")(x)
    y = keras.layers.GlobalAveragePooling2D(name="gap")(y)
    return seeded_keras(keras.Model(x, keras.layers.Dense(3, name="out")(y)))


@pytest.mark.parametrize("direction", ["keras->torch", "torch->keras"])
def test_separable_conv_against_depthwise_and_pointwise_modules(direction, tmp_path, keras):
    """One Keras SeparableConv2D (depth_multiplier 2) is two torch convs; either way round."""
    from torch_convnets import seeded

    x = np.random.default_rng(8).standard_normal((2, 4, 12, 10)).astype(np.float32)
    if direction == "keras->torch":
        model = separable_keras(keras)
        model.save(tmp_path / "separable.keras")
        weights, mapping = converter.port(tmp_path / "separable.keras", DepthwisePointwise())
        assert [(row.source, row.target) for row in mapping][:2] == [("sep/depthwise", "depthwise"), ("sep", "pointwise")]
        assert_close(keras_predictions(model, x), torch_predictions(filled(DepthwisePointwise, weights), x))
        return
    model = seeded(DepthwisePointwise())
    target = separable_keras(keras)
    torch.save(model.state_dict(), tmp_path / "two.pt")
    result = converter.port(tmp_path / "two.pt", target, module=f"{PORT_MODULES}:DepthwisePointwise",
                            input_shape=[4, 12, 10])
    write_port(result, tmp_path / "filled.keras")
    port = keras.saving.load_model(tmp_path / "filled.keras", compile=False)
    assert_close(torch_predictions(model, x), keras_predictions(port, x))


def dense_model(keras, widths=(16, 16), branches=False):
    """x -> Dense(16) -> Dense(16): a square kernel, whose orientation no shape can tell; or two parallel Dense
    of one shape, concatenated: which is which, no topology can tell."""
    x = keras.Input((16,), name="x")
    if branches:
        y = keras.layers.Concatenate(name="join")([keras.layers.Dense(8, name="left")(x),
                                                   keras.layers.Dense(8, name="right")(x)])
    else:
        y = x
        for index, width in enumerate(widths):
            y = keras.layers.Dense(width, activation="tanh", name=f"dense{index}")(y)
    return seeded_keras(keras.Model(x, keras.layers.Dense(3, name="out")(y)))


def test_a_square_dense_is_transposed_though_its_shape_fits_both_ways(tmp_path, keras):
    model = dense_model(keras)
    model.save(tmp_path / "square.keras")
    weights, _ = converter.port(tmp_path / "square.keras", Square())
    kernel = model.get_layer("dense0").get_weights()[0]
    assert np.array_equal(weights["a.weight"], kernel.T) and not np.array_equal(kernel, kernel.T)
    x = np.random.default_rng(5).standard_normal((4, 16)).astype(np.float32)
    port = filled(Square, weights)
    assert_close(np.asarray(model(x)), torch_predictions(port, x))


@pytest.mark.parametrize("case", ["another architecture", "one layer too many"])
def test_what_cannot_be_paired_is_listed_and_nothing_is_written(case, tmp_path, keras):
    dense_model(keras).save(tmp_path / "square.keras")
    into = f"{PORT_MODULES}:{'Branches' if case == 'another architecture' else 'Square'}"
    options = ["--module-args", '{"extra": true}'] if case == "one layer too many" else []
    before = digest(tmp_path / "square.keras")
    result = wconv("port", tmp_path / "square.keras", tmp_path / "out.pt", "--into", into, *options)
    assert result.returncode == 2 and "nothing written" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out.pt").exists() and digest(tmp_path / "square.keras") == before
    assert "candidates" in result.stdout
    if case == "one layer too many":
        assert "extra" in result.stdout and "no source" in result.stdout


@pytest.mark.slow  # 20 s and more on 2 cores
def test_an_ambiguous_pair_is_settled_by_map_and_a_wrong_map_is_caught(tmp_path, keras):
    dense_model(keras, branches=True).save(tmp_path / "branches.keras")
    into = f"{PORT_MODULES}:Branches"
    result = wconv("port", tmp_path / "branches.keras", tmp_path / "out.pt", "--into", into)
    assert result.returncode == 2 and "ambiguous" in result.stdout and not (tmp_path / "out.pt").exists()
    for mapping, code in (({"left": "p", "right": "q"}, 0), ({"left": "q", "right": "p"}, 1)):
        (tmp_path / "map.json").write_text(json.dumps(mapping))
        result = wconv("port", tmp_path / "branches.keras", tmp_path / "out.pt", "--into", into, "--map",
                       tmp_path / "map.json", "--force")
        assert result.returncode == code, result.stderr
    assert "predictions DIFFER" in result.stdout


@pytest.mark.slow  # 7 to 13 s on 2 cores: the default suite stays under 10 minutes
def test_a_target_that_cannot_express_the_source_is_refused(tmp_path):
    """Keras' default BatchNorm epsilon (1e-3) in a target for a torch source (1e-5): refused, naming the pair."""
    from keras_targets import resnet18
    from torch_convnets import seeded
    from torch_resnet import ResNet18

    torch.save(seeded(ResNet18()).state_dict(), tmp_path / "resnet18.pt")
    with pytest.raises(converter.WconvError, match=r"'bn1' -> 'stem_norm': epsilon 1e-05 in the source, 0.001") \
            as error:
        converter.port(tmp_path / "resnet18.pt", resnet18(epsilon=1e-3), module=f"{TESTS / 'torch_resnet.py'}:ResNet18",
                       input_shape=[3, 64, 80])
    assert error.value.exit_code == 3
    (tmp_path / "builders.py").write_text(f"import sys\nsys.path.insert(0, {str(TESTS)!r})\n"
                                          "from keras_targets import resnet18\n\n\n"
                                          "def wrong():\n    return resnet18(epsilon=1e-3)\n")
    result = wconv("port", tmp_path / "resnet18.pt", tmp_path / "out.keras", "--into", f"{tmp_path / 'builders.py'}:wrong",
                   "--source-module", f"{TESTS / 'torch_resnet.py'}:ResNet18", "--input-shape", "3,64,80")
    assert_clean_failure(result, 3, tmp_path / "resnet18.pt", "'bn1' -> 'stem_norm': epsilon")  # TF's lines kept off
    assert not (tmp_path / "out.keras").exists()
    rows = [line for line in result.stdout.splitlines() if line.startswith("bn1 ")]
    assert rows and "stem_norm" in rows[0] and "construct it with epsilon=1e-05" in rows[0], result.stdout


def test_a_dry_run_writes_nothing_so_an_existing_output_is_no_obstacle(tmp_path, keras):
    dense_model(keras).save(tmp_path / "square.keras")
    (tmp_path / "out.pt").write_bytes(b"kept")
    result = wconv("port", tmp_path / "square.keras", tmp_path / "out.pt", "--into", f"{PORT_MODULES}:Square",
                   "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "dense0" in result.stdout and (tmp_path / "out.pt").read_bytes() == b"kept"


@pytest.mark.slow  # 7 to 13 s on 2 cores: the default suite stays under 10 minutes
def test_a_free_sequence_length_is_traced_at_a_length_of_wconvs_choosing(tmp_path, keras):
    """keras.Input((None,)): the weights do not depend on the length, so port picks one, says which, and checks."""
    ids = keras.Input((None,), dtype="int32", name="ids")
    x = keras.layers.Embedding(37, 6, name="embedding")(ids)
    x = keras.layers.LSTM(9, name="encoder")(x)
    seeded_keras(keras.Model(ids, keras.layers.Dense(3, name="head")(x))).save(tmp_path / "free.keras")
    result = wconv("port", tmp_path / "free.keras", tmp_path / "out.pt", "--into",
                   f"{TESTS / 'torchvision_style.py'}:LSTMClassifier")
    assert result.returncode == 0, result.stderr
    assert "traced and checked with input shape 16" in result.stderr and "predictions match" in result.stdout


@pytest.mark.slow
def test_torchvision_resnet50_v1_5_cannot_take_keras_resnet50_v1(keras_resnet50):
    """torchvision's ResNet-50 strides its 3x3 convs where Keras' strides the 1x1 before them: the layers pair,
    and each pair that differs is named."""
    from third_party import import_torchvision

    torchvision = import_torchvision()
    _, source = keras_resnet50
    with pytest.raises(converter.WconvError, match=r"'conv3_block1_1_conv' -> 'layer2.0.conv1': strides \[2, 2\] in "
                                                   r"the source, \[1, 1\] in the target") as error:
        converter.port(source, torchvision.models.resnet50(num_classes=10))
    assert error.value.exit_code == 3
