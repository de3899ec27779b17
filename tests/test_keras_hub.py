"""keras-hub's backbones (BERT, GPT-2, DistilBERT, ViT), built tiny with seeded weights, convert to torch and ONNX
with ``--module keras_hub.models:<Backbone>`` (and ``--input-shape T`` for text), and predict like keras-hub itself:
the text models on padded batches, padding at the end, at the start (GPT-2's causal attention then has query steps
with nothing to attend to) and none; ViT on an image whose height is not its width."""

from __future__ import annotations

import numpy as np
import pytest

import converter
from conftest import TARGET_SUFFIX, assert_close, run_inputs
from test_architectures import seeded_keras

STEPS, VOCABULARY = 7, 50  # T apart from every width: hidden 8, intermediate 12, 2 heads of 4, 16 positions
SIZES = {"vocabulary_size": VOCABULARY, "num_layers": 2, "num_heads": 2, "hidden_dim": 8, "intermediate_dim": 12,
         "max_sequence_length": 16}
BACKBONES = {"bert": "BertBackbone", "gpt2": "GPT2Backbone", "distilbert": "DistilBertBackbone"}


@pytest.fixture
def keras_hub(keras):
    return pytest.importorskip("keras_hub")


def saved_backbone(keras_hub, family, folder):
    name = BACKBONES[family]
    model = seeded_keras(getattr(keras_hub.models, name)(**SIZES))
    model.save(folder / f"{family}.keras")
    return model, folder / f"{family}.keras", f"keras_hub.models:{name}"


def padded_inputs(model) -> dict:
    """Each input the backbone takes, by name: token ids, segment ids (BERT) and a padding mask whose rows are full,
    padded at the end and padded at the start."""
    rng = np.random.default_rng(1)
    mask = np.array([[1] * STEPS, [1] * 4 + [0] * (STEPS - 4), [0] * 2 + [1] * (STEPS - 2)], np.int64)
    made = {"token_ids": rng.integers(0, VOCABULARY, mask.shape), "padding_mask": mask,
            "segment_ids": rng.integers(0, 2, mask.shape)}
    return {name: made[name] for name in model.input}


@pytest.mark.parametrize("family, target", [(family, target) for family in sorted(BACKBONES)
                                           for target in ("torch", "onnx")] + [("gpt2", "keras"), ("bert", "keras")])
def test_keras_hub_text_backbones_convert_and_honour_the_padding_mask(keras_hub, keras, family, target, tmp_path):
    model, source, module = saved_backbone(keras_hub, family, tmp_path)
    out = tmp_path / f"port{TARGET_SUFFIX[target]}"
    converter.convert(source, out, module=module, input_shape=[STEPS])
    inputs = padded_inputs(model)
    graph = converter.read(source, module=module, input_shape=[STEPS])
    assert [value.name for value in graph.inputs] == list(inputs)  # the backbone's own inputs, in its order
    expected = model({name: x.astype("int32") for name, x in inputs.items()}, training=False)
    expected = list(expected.values()) if isinstance(expected, dict) else [expected]
    if target == "keras":  # the port takes and gives dicts, as the backbone does
        from converter import keras_layers  # noqa: F401  (wconv's ExplicitAttention, which the port holds)

        found = keras.saving.load_model(out, compile=False)(inputs)
        found = list(found.values()) if isinstance(found, dict) else [found]
    else:
        found = run_inputs(target, out, list(inputs.values()))
    if target == "torch":  # the generated module says what each input is
        text = (tmp_path / "port.py").read_text()
        assert f"token_ids (N, {STEPS}) int64 token ids" in text and \
            f"padding_mask (N, {STEPS}) int64 padding mask (1 a token, 0 padding)" in text
    assert len(found) == len(expected)
    for reference, result in zip(expected, found):
        assert_close(np.asarray(reference), result)


@pytest.mark.parametrize("target", ["torch", "onnx", "keras"])
def test_keras_hub_vit_backbone_converts(keras_hub, target, tmp_path):
    """Patches from a Conv2D in row-major order (as Keras reshapes its channels-last map), the class token first,
    the position table added; pre-norm blocks with the exact GELU."""
    model = seeded_keras(keras_hub.models.ViTBackbone(image_shape=(20, 12, 3), patch_size=4, num_layers=2, num_heads=2,
                                                      hidden_dim=8, mlp_dim=12))
    model.save(tmp_path / "vit.keras")
    out = tmp_path / f"port{TARGET_SUFFIX[target]}"
    converter.convert(tmp_path / "vit.keras", out, module="keras_hub.models:ViTBackbone")
    image = np.random.default_rng(1).standard_normal((2, 20, 12, 3)).astype(np.float32)
    found = run_inputs(target, out, [image if target == "keras" else  # torch and ONNX ports take (n, c, h, w)
                                     np.ascontiguousarray(image.transpose(0, 3, 1, 2))])
    assert_close(np.asarray(model(image, training=False)), found[0])


def test_validate_names_the_keras_hub_layer_a_port_got_wrong(keras_hub, tmp_path):
    """0 wrong answers: validate runs the keras-hub source (its class imported, the file loaded safely) against the
    port, layer by layer, a TransformerEncoder compared at the node giving its output; a port whose second layer's
    query heads are swapped is named there, its first layer still matching."""
    import torch

    _, source, module = saved_backbone(keras_hub, "bert", tmp_path)
    converter.convert(source, tmp_path / "port.pt", module=module, input_shape=[STEPS])
    report = converter.validate(source, tmp_path / "port.pt", source_module=module, input_shape=[STEPS])
    assert report.ok and "transformer_layer_0.feedforward_layer_norm" in [diff.name for diff in report.layers]
    weights = torch.load(tmp_path / "port.pt", weights_only=True)
    key = "transformer_layer_1_self_attention_layer.query.weight"
    weights[key] = torch.cat([weights[key][4:], weights[key][:4]])  # heads 0 and 1 in each other's place
    torch.save(weights, tmp_path / "port.pt")
    report = converter.validate(source, tmp_path / "port.pt", source_module=module, input_shape=[STEPS])
    assert not report.ok and report.first_mismatch.startswith("transformer_layer_1"), report.first_mismatch


def test_a_free_sequence_length_is_refused_asking_for_it(keras_hub, tmp_path):
    _, source, module = saved_backbone(keras_hub, "gpt2", tmp_path)
    with pytest.raises(converter.WconvError, match="--input-shape") as error:
        converter.convert(source, tmp_path / "port.onnx", module=module)
    assert error.value.exit_code == 3 and not (tmp_path / "port.onnx").exists()


def test_more_steps_than_the_position_table_holds_is_a_shape_error(keras_hub, tmp_path):
    _, source, module = saved_backbone(keras_hub, "bert", tmp_path)
    with pytest.raises(converter.WconvError, match="position table has 16 rows"):
        converter.convert(source, tmp_path / "port.onnx", module=module, input_shape=[17])
    assert not (tmp_path / "port.onnx").exists()


def test_an_encoder_given_its_own_attention_mask_is_refused_by_name(keras_hub, keras, tmp_path):
    """A mask wconv does not build (TransformerEncoder's attention_mask, any (batch, T, T) values) is never dropped."""
    x, mask = keras.Input((5, 8)), keras.Input((5, 5), dtype="int32")
    encoder = keras_hub.layers.TransformerEncoder(intermediate_dim=12, num_heads=2, name="encoder")
    keras.Model([x, mask], encoder(x, attention_mask=mask)).save(tmp_path / "masked.keras")
    with pytest.raises(converter.WconvError, match="'encoder'.*attention_mask") as error:
        converter.convert(tmp_path / "masked.keras", tmp_path / "port.onnx")
    assert error.value.exit_code == 3 and not (tmp_path / "port.onnx").exists()


def test_a_keras_hub_option_wconv_does_not_know_is_refused_by_name():
    """A newer keras-hub's config option may change what its layer computes: each composite layer names the ones it
    does not know as blockers (listed with the others before anything is read), never ignores them."""
    from converter.ops import KERAS_CLASSES

    for class_name in ("keras_hub>TransformerEncoder", "ViTPatchingAndEmbedding", "ViTEncoder"):
        blocker = KERAS_CLASSES[class_name].keras_blocker({"name": "layer", "rope_scaling": 2.0})
        assert blocker == "rope_scaling not converted", (class_name, blocker)
