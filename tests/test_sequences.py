"""Sequence models (token ids, Dense over a sequence, LayerNorm, Conv1D over a sequence) in six directions.

Each model is made in its source framework (ONNX sources by torch.onnx.export of the torch model), run
there, converted, and run in the target framework on the same seeded ids.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

import converter
from conftest import TESTS, assert_close, run_torch_model, torch_generated
from sequence_models import STEPS, VOCABULARY, keras_layer_norms, keras_text_cnn, seeded, sequence, tokens

SEQUENCE_MODELS = TESTS / "sequence_models.py"
SUFFIX = {"keras": ".keras", "torch": ".pt", "onnx": ".onnx"}


def run_file(framework, path, x):
    """A model file run by its own framework, on ``x`` as every framework holds a sequence: (N, T[, F])."""
    if framework == "keras":
        import keras

        return np.asarray(keras.saving.load_model(path, compile=False)(x, training=False))
    if framework == "torch":
        return run_torch_model(torch_generated(path), x)
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def make_source(framework, name, tmp_path, keras, x):
    """(path, convert options, reference outputs) for the model ``name`` made in ``framework``."""
    import torch

    import sequence_models

    if framework == "keras":
        model = {"text_cnn": keras_text_cnn, "layer_norms": keras_layer_norms}[name](keras)
        path = tmp_path / "source.keras"
        model.save(path)
        return path, {}, np.asarray(model(x, training=False))
    cls = {"text_cnn": sequence_models.TextCNN, "layer_norms": sequence_models.LayerNormVariants}[name]
    model = seeded(cls())
    reference = run_torch_model(model, x)
    if framework == "torch":
        path = tmp_path / "source.pt"
        torch.save(model.state_dict(), path)
        return path, {"module": f"{SEQUENCE_MODELS}:{cls.__name__}", "input_shape": list(x.shape[1:])}, reference
    path = tmp_path / "source.onnx"
    torch.onnx.export(model, torch.from_numpy(x), path, dynamo=False, opset_version=17, input_names=["x"])
    return path, {}, reference


DIRECTIONS = [(s, t) for s in SUFFIX for t in SUFFIX if s != t]
DIRECTION_IDS = [f"{s}->{t}" for s, t in DIRECTIONS]


INPUTS = {"text_cnn": tokens, "layer_norms": sequence}


@pytest.mark.parametrize("source, target", DIRECTIONS, ids=DIRECTION_IDS)
@pytest.mark.parametrize("name", list(INPUTS))
def test_predictions_match(name, source, target, tmp_path, keras):
    x = INPUTS[name]()
    path, options, reference = make_source(source, name, tmp_path, keras, x)
    out = tmp_path / f"out{SUFFIX[target]}"
    converter.convert(path, out, **options)
    assert_close(reference, run_file(target, out, x))


def test_a_sequence_is_never_permuted_and_convs_get_one_transpose(tmp_path, keras):
    """Keras -> torch: the ids go in as (N, T); one permute before the first Conv1d, none between the convs.
    torch -> Keras: the user's permute before the convs is the one Keras does not need: no Permute layer."""
    keras_text_cnn(keras).save(tmp_path / "a.keras")
    converter.convert(tmp_path / "a.keras", tmp_path / "b.pt")
    forward = (tmp_path / "b.py").read_text().split("def forward")[1]
    assert forward.count("permute") == 1 and forward.index("permute") < forward.index("self.conv(")
    import torch

    from sequence_models import TextCNN

    torch.save(seeded(TextCNN()).state_dict(), tmp_path / "c.pt")
    converter.convert(tmp_path / "c.pt", tmp_path / "d.keras", module=f"{SEQUENCE_MODELS}:TextCNN", input_shape=[STEPS])
    back = keras.saving.load_model(tmp_path / "d.keras")
    assert "Permute" not in [type(layer).__name__ for layer in back.layers]


def test_sequence_length_stays_free(tmp_path, keras):
    """Keras Input((None,)): the torch port and the ONNX file (a dynamic axis) take any T."""
    model = keras_text_cnn(keras, steps=None)
    model.save(tmp_path / "a.keras")
    converter.convert(tmp_path / "a.keras", tmp_path / "b.pt")
    converter.convert(tmp_path / "a.keras", tmp_path / "c.onnx")
    dims = onnx.load(tmp_path / "c.onnx").graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["N", "T"]
    for steps in (7, 13):
        x = tokens(steps=steps)
        assert_close(np.asarray(model(x)), run_file("torch", tmp_path / "b.pt", x))
        assert_close(np.asarray(model(x)), run_file("onnx", tmp_path / "c.onnx", x))


def test_token_inputs_are_int64_and_validate_draws_ids_below_the_vocabulary(tmp_path, keras):
    keras_text_cnn(keras).save(tmp_path / "a.keras")
    converter.convert(tmp_path / "a.keras", tmp_path / "b.onnx")
    assert onnx.load(tmp_path / "b.onnx").graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    report = converter.validate(tmp_path / "a.keras", tmp_path / "b.onnx")
    assert report.ok and report.layers and all(layer.ok for layer in report.layers)


def test_mask_zero_is_refused_naming_the_layer(tmp_path, keras):
    ids = keras.Input((STEPS,), dtype="int32")
    x = keras.layers.Embedding(VOCABULARY, 4, mask_zero=True, name="masked")(ids)
    keras.Model(ids, keras.layers.GlobalAveragePooling1D()(x)).save(tmp_path / "a.keras")
    with pytest.raises(converter.WconvError, match=r"'masked' \(Embedding: mask_zero=True") as error:
        converter.convert(tmp_path / "a.keras", tmp_path / "b.pt")
    assert error.value.exit_code == 3 and not (tmp_path / "b.pt").exists()


def test_padding_idx_is_kept_in_torch(tmp_path):
    import torch

    from sequence_models import TextCNN

    model = seeded(TextCNN(padding_idx=0))
    torch.save(model.state_dict(), tmp_path / "a.pt")
    options = {"module": f"{SEQUENCE_MODELS}:TextCNN", "module_args": json.dumps({"padding_idx": 0}),
               "input_shape": [STEPS]}
    converter.convert(tmp_path / "a.pt", tmp_path / "b.pt", **options)
    assert "padding_idx=0" in (tmp_path / "b.py").read_text()
    x = tokens()
    assert_close(run_torch_model(model, x), run_file("torch", tmp_path / "b.pt", x))


@pytest.mark.parametrize("saved_by", ["keras3-h5", "keras2-h5"])
@pytest.mark.parametrize("name", ["text_cnn", "layer_norms"])
def test_keras_sequence_models_from_legacy_h5(name, saved_by, tmp_path):
    """The same models saved as a legacy .h5 by Keras 3 and by Keras 2 (tf_keras)."""
    if saved_by == "keras2-h5":
        import tf_keras as framework
    else:
        import keras as framework
    model = {"text_cnn": keras_text_cnn, "layer_norms": keras_layer_norms}[name](framework)
    model.save(tmp_path / "source.h5")
    x = tokens() if name == "text_cnn" else sequence()
    converter.convert(tmp_path / "source.h5", tmp_path / "out.pt")
    assert_close(np.asarray(model(x, training=False)), run_file("torch", tmp_path / "out.pt", x))
