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
from sequence_models import (EMBED, STEPS, VOCABULARY, keras_encoder_block, keras_layer_norms, keras_recurrent,
                             keras_text_cnn, keras_text_lstm, seeded, sequence, tokens)

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
        model = KERAS_MODELS[name](keras)
        path = tmp_path / "source.keras"
        model.save(path)
        return path, {}, np.asarray(model(x, training=False))
    cls = getattr(sequence_models, TORCH_MODELS[name])
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


INPUTS = {"text_cnn": tokens, "layer_norms": sequence, "recurrent": sequence, "text_lstm": tokens,
          "transformer": tokens}
KERAS_MODELS = {"text_cnn": keras_text_cnn, "layer_norms": keras_layer_norms, "recurrent": keras_recurrent,
                "text_lstm": keras_text_lstm, "transformer": keras_encoder_block}
TORCH_MODELS = {"text_cnn": "TextCNN", "layer_norms": "LayerNormVariants", "recurrent": "StackedRNN",
                "text_lstm": "LSTMTagger", "gru": "GRUClassifier", "transformer": "TransformerTagger",
                "attention": "AttentionBlock", "time_major": "TimeMajorTagger", "bi_final": "BiLSTMClassifier"}


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


@pytest.mark.slow  # 20 s and more on 2 cores
def test_input_dtype_on_the_command_line(tmp_path):
    """A torch source with token ids: --input-shape 11 --input-dtype int64 (int64 is also inferred from its
    nn.Embedding); a dtype its first layer cannot take is refused (exit 2) naming that layer, nothing written."""
    import torch

    import sequence_models
    from test_bad_input import wconv

    torch.save(seeded(sequence_models.TextCNN()).state_dict(), tmp_path / "a.pt")
    module = f"{SEQUENCE_MODELS}:TextCNN"
    for dtype in ("int64", None):
        out = tmp_path / f"b_{dtype}.onnx"
        given = ["--input-dtype", dtype] if dtype else []
        result = wconv("torch-to-onnx", tmp_path / "a.pt", out, "--module", module, "--input-shape", str(STEPS),
                       *given, "--check", "--json")
        assert result.returncode == 0, result.stderr
        assert onnx.load(out).graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    result = wconv("torch-to-onnx", tmp_path / "a.pt", tmp_path / "c.onnx", "--module", module, "--input-shape",
                   str(STEPS), "--input-dtype", "float32")
    assert result.returncode == 2 and "input 'ids' is read by 'emb' (embedding), which takes int64 token ids" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "c.onnx").exists()
    result = wconv("inspect", tmp_path / "a.pt", "--module", module, "--input-shape", str(STEPS), "--input-dtype",
                   "int8")
    assert result.returncode == 2 and "expected one of float32, int64" in result.stderr


def test_mask_zero_is_refused_naming_the_layer(tmp_path, keras):
    ids = keras.Input((STEPS,), dtype="int32")
    x = keras.layers.Embedding(VOCABULARY, 4, mask_zero=True, name="masked")(ids)
    keras.Model(ids, keras.layers.GlobalAveragePooling1D()(x)).save(tmp_path / "a.keras")
    with pytest.raises(converter.WconvError, match=r"'masked' \(Embedding: mask_zero=True") as error:
        converter.convert(tmp_path / "a.keras", tmp_path / "b.pt")
    assert error.value.exit_code == 3 and not (tmp_path / "b.pt").exists()


@pytest.mark.parametrize("target", ["keras", "onnx"])
def test_pre_norm_transformer_encoder(target, tmp_path):
    import torch

    from sequence_models import TransformerTagger

    model = seeded(TransformerTagger(norm_first=True))
    torch.save(model.state_dict(), tmp_path / "a.pt")
    out = tmp_path / f"b{SUFFIX[target]}"
    converter.convert(tmp_path / "a.pt", out, module=f"{SEQUENCE_MODELS}:TransformerTagger",
                      module_args=json.dumps({"norm_first": True}), input_shape=[STEPS])
    x = tokens()
    assert_close(run_torch_model(model, x), run_file(target, out, x))


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
@pytest.mark.parametrize("name", list(KERAS_MODELS))
def test_keras_sequence_models_from_legacy_h5(name, saved_by, tmp_path):
    """The same models saved as a legacy .h5 by Keras 3 and by Keras 2 (tf_keras)."""
    if saved_by == "keras2-h5":
        import tf_keras as framework
    else:
        import keras as framework
    model = KERAS_MODELS[name](framework)
    model.save(tmp_path / "source.h5")
    x = INPUTS[name]()
    converter.convert(tmp_path / "source.h5", tmp_path / "out.pt")
    assert_close(np.asarray(model(x, training=False)), run_file("torch", tmp_path / "out.pt", x))


TORCH_ONLY = [("gru", "torch", "keras"), ("gru", "torch", "onnx"), ("gru", "onnx", "keras"), ("gru", "onnx", "torch"),
              ("attention", "torch", "keras"), ("attention", "torch", "onnx"),
              ("time_major", "torch", "keras"), ("time_major", "torch", "onnx"), ("time_major", "onnx", "keras"),
              ("time_major", "onnx", "torch"), ("bi_final", "torch", "keras"), ("bi_final", "torch", "onnx")]


@pytest.mark.parametrize("name, source, target", TORCH_ONLY, ids=[f"{n}-{s}->{t}" for n, s, t in TORCH_ONLY])
def test_torch_models(name, source, target, tmp_path, keras):
    """torch idioms: ``head(out[:, -1])`` of a one-direction GRU (its final state); nn.MultiheadAttention packed
    (in_proj_weight) and with kdim/vdim (q/k/v_proj_weight), as cross-attention; time-major layers between
    transposes; a bidirectional LSTM's ``torch.cat([h_n[-2], h_n[-1]], dim=1)``."""
    x = tokens() if name == "bi_final" else sequence()
    path, options, reference = make_source(source, name, tmp_path, keras, x)
    out = tmp_path / f"out{SUFFIX[target]}"
    converter.convert(path, out, **options)
    assert_close(reference, run_file(target, out, x))


def assert_keras_port_matches(model, target, tmp_path, seed) -> None:
    """Seed the Keras model's weights, convert it to ``target``, compare both on a seeded sequence."""
    from sequence_models import seeded_keras

    model = seeded_keras(model, seed)
    model.save(tmp_path / "a.keras")
    out = tmp_path / f"b{SUFFIX[target]}"
    converter.convert(tmp_path / "a.keras", out)
    x = sequence()
    assert_close(np.asarray(model(x)), run_file(target, out, x))


def refusal(tmp_path, path, **options) -> str:
    out = tmp_path / "refused.pt"
    with pytest.raises(converter.WconvError) as error:
        converter.convert(path, out, **options)
    assert error.value.exit_code == 3 and not out.exists()
    return str(error.value)


@pytest.mark.parametrize("target", ["torch", "onnx", "keras"])
def test_keras_gru_reset_after_false(target, tmp_path, keras):
    """Keras 2 / TF1 GRUs apply the reset gate before the recurrent matmul: ONNX linear_before_reset=0, and in
    torch (whose GRU cannot) the generated module's explicit cell."""
    x_in = keras.Input((STEPS, 6))
    y = keras.layers.GRU(5, reset_after=False, return_sequences=True, name="gru")(x_in)
    y = keras.layers.Bidirectional(keras.layers.GRU(4, reset_after=False), name="bi")(y)
    assert_keras_port_matches(keras.Model(x_in, y), target, tmp_path, seed=3)
    if target == "torch":
        assert "ExplicitRecurrent('gru', 6, 5, reset_after=False)" in (tmp_path / "b.py").read_text()


@pytest.mark.slow  # 20 s and more on 2 cores
def test_explicit_cells_read_back_and_validate(tmp_path):
    """A Keras 2 model with torch-less recurrences (hard-sigmoid gates, reset_after=False) -> torch's explicit
    cells -> ONNX and Keras 3 (whose hard_sigmoid has another slope: refused); validate runs the torch port layer
    by layer."""
    import tf_keras

    from sequence_models import seeded_keras
    from test_bad_input import wconv

    x_in = tf_keras.Input((STEPS, 6))
    y = tf_keras.layers.GRU(5, reset_after=False, recurrent_activation="hard_sigmoid", return_sequences=True,
                            name="gru")(x_in)
    y = tf_keras.layers.Bidirectional(tf_keras.layers.LSTM(4, recurrent_activation="hard_sigmoid"), name="bi")(y)
    model = seeded_keras(tf_keras.Model(x_in, y), 5)
    model.save(tmp_path / "a.h5")
    x = sequence()
    converter.convert(tmp_path / "a.h5", tmp_path / "b.pt")
    assert_close(np.asarray(model(x)), run_file("torch", tmp_path / "b.pt", x))
    converter.convert(tmp_path / "b.pt", tmp_path / "c.onnx", module=f"{tmp_path / 'b.py'}:Model")
    assert_close(np.asarray(model(x)), run_file("onnx", tmp_path / "c.onnx", x))
    with pytest.raises(converter.WconvError, match="slope 0.2;") as error:
        converter.convert(tmp_path / "b.pt", tmp_path / "d.keras", module=f"{tmp_path / 'b.py'}:Model")
    assert error.value.exit_code == 3 and not (tmp_path / "d.keras").exists()
    result = wconv("validate", tmp_path / "b.pt", tmp_path / "c.onnx", "--json",  # the torch port, layer by layer
                   "--source-module", f"{tmp_path / 'b.py'}:Model")
    assert result.returncode == 0, result.stdout + result.stderr
    layers = json.loads(result.stdout)["layers"]  # the explicit GRU's sequence, recorded as one layer
    assert layers[0]["name"].split(" ~ ")[0] == "gru" and all(layer["ok"] for layer in layers), layers


def test_a_lookalike_explicit_cell_is_not_read_as_wconvs(tmp_path):
    """A user's class that is named like wconv's helper but written otherwise is traced as any module (here: its
    ``F.linear`` on its own parameter reads as a Linear), never read as the helper."""
    import torch

    import sequence_models

    model = seeded(sequence_models.LookalikeCell())
    torch.save(model.state_dict(), tmp_path / "a.pt")
    options = {"module": f"{SEQUENCE_MODELS}:LookalikeCell", "input_shape": [STEPS, 6]}
    graph = converter.read(tmp_path / "a.pt", **options)
    ops = [node.op for node in graph.nodes]
    assert ops[0] == "dense" and not {"lstm", "gru", "rnn"} & set(ops)  # its insides, traced: not one layer
    x = np.random.default_rng(2).standard_normal((3, STEPS, 6)).astype(np.float32)
    with torch.no_grad():
        reference = model(torch.from_numpy(x)).numpy()
    converter.convert(tmp_path / "a.pt", tmp_path / "b.onnx", **options)
    assert_close(reference, run_all("onnx", tmp_path / "b.onnx", [x])[0])


def test_unconvertible_recurrent_uses_are_refused(tmp_path, keras):
    x_in = keras.Input((STEPS, 6))
    y = keras.layers.LSTM(5, activation="relu", name="relu_lstm")(x_in)
    keras.Model(x_in, keras.layers.LSTM(3, name="lstm2")(keras.layers.RepeatVector(4)(y))).save(tmp_path / "a.keras")
    message = refusal(tmp_path, tmp_path / "a.keras")
    assert "'relu_lstm' (LSTM: activation='relu'" in message and "RepeatVector" in message


@pytest.mark.parametrize("target", ["torch", "onnx", "keras"])
def test_go_backwards(target, tmp_path, keras):
    """Keras go_backwards=True runs over the steps last to first and returns the outputs in that order."""
    x_in = keras.Input((STEPS, 6))
    y = keras.layers.GRU(5, go_backwards=True, return_sequences=True, name="back_sequence")(x_in)
    y = keras.layers.LSTM(4, go_backwards=True, name="back_final")(y)
    assert_keras_port_matches(keras.Model(x_in, y), target, tmp_path, seed=12)


@pytest.mark.parametrize("cls, message", [("TimeMajor", "batch_first=False")])
def test_torch_recurrent_forms_that_do_not_convert_are_refused(cls, message, tmp_path):
    import torch

    import sequence_models

    torch.save(seeded(getattr(sequence_models, cls)()).state_dict(), tmp_path / "a.pt")
    assert message in refusal(tmp_path, tmp_path / "a.pt", module=f"{SEQUENCE_MODELS}:{cls}", input_shape=[STEPS, 6])


ONE_STEP = [("LSTM", 2, True, "[:, -1]"), ("LSTM", 1, True, "[:, -1, :]"), ("GRU", 2, True, "[:, -1, :]"),
            ("GRU", 1, True, "[:, -1]"), ("LSTM", 2, False, "[:, -1, :]"), ("GRU", 1, True, "[:, 0]"),
            ("LSTM", 1, False, "[:, 2, :]")]


@pytest.mark.parametrize("cell, layers, bidirectional, step", ONE_STEP,
                         ids=[f"{c}-{n}-{'bi' if b else 'uni'}-{s}" for c, n, b, s in ONE_STEP])
def test_one_step_of_a_recurrent_sequence(cell, layers, bidirectional, step, tmp_path):
    """``head(out[:, -1])``: of one direction, the final state; of two, one step of the sequence (Keras Take, ONNX
    Gather), as any other step. The Keras and ONNX ports, and each read back to torch, predict as the module."""
    import torch

    import sequence_models

    args = {"cell": cell, "layers": layers, "bidirectional": bidirectional, "step": step}
    model = seeded(sequence_models.OneStepClassifier(**args))
    torch.save(model.state_dict(), tmp_path / "a.pt")
    x = sequence()
    reference = run_torch_model(model, x)
    for target in ("keras", "onnx"):
        out, back = tmp_path / f"b{SUFFIX[target]}", tmp_path / f"c_{target}.pt"
        converter.convert(tmp_path / "a.pt", out, module=f"{SEQUENCE_MODELS}:OneStepClassifier", module_args=args,
                          input_shape=[STEPS, EMBED])
        assert_close(reference, run_file(target, out, x), what=f"{target} port")
        converter.convert(out, back)
        assert_close(reference, run_file("torch", back, x), what=f"{target} port read back to torch")


def test_a_step_counted_from_the_end_of_a_free_length_is_refused(tmp_path):
    import torch

    import sequence_models

    torch.save(seeded(sequence_models.OneStepClassifier()).state_dict(), tmp_path / "a.pt")
    message = refusal(tmp_path, tmp_path / "a.pt", module=f"{SEQUENCE_MODELS}:OneStepClassifier",
                      input_shape=[None, EMBED])
    assert "step -1 counted from the end of a sequence of free length" in message


@pytest.mark.parametrize("name", ["recurrent", "text_lstm", "text_cnn", "transformer"])
def test_wconv_onnx_reads_back(name, tmp_path, keras):
    """Keras -> ONNX (wconv's own time-major plumbing) -> torch and Keras."""
    model = KERAS_MODELS[name](keras)
    model.save(tmp_path / "a.keras")
    converter.convert(tmp_path / "a.keras", tmp_path / "b.onnx")
    x = INPUTS[name]()
    for target in ("torch", "keras"):
        out = tmp_path / f"c{SUFFIX[target]}"
        converter.convert(tmp_path / "b.onnx", out)
        assert_close(np.asarray(model(x, training=False)), run_file(target, out, x))


def test_keeping_keras_layout_changes_nothing_for_sequences(tmp_path, keras):
    """--keep-input-layout: a sequence is held alike in Keras and torch, so no permute at entry or exit."""
    model = keras_recurrent(keras)
    model.save(tmp_path / "a.keras")
    converter.convert(tmp_path / "a.keras", tmp_path / "b.pt", keep_input_layout=True)
    assert "permute" not in (tmp_path / "b.py").read_text()
    x = sequence()
    assert_close(np.asarray(model(x)), run_file("torch", tmp_path / "b.pt", x))


def test_inspect_names_each_inputs_axes(tmp_path, keras):
    from test_bad_input import wconv

    keras_text_cnn(keras).save(tmp_path / "a.keras")
    result = wconv("inspect", tmp_path / "a.keras", "--json")
    assert result.returncode == 0, result.stderr
    described = json.loads(result.stdout)
    assert described["inputs"][0]["layout"] == "n t" and described["outputs"][0]["layout"] == "n f"


@pytest.mark.parametrize("name", ["recurrent", "text_lstm", "transformer"])
def test_inspect_shows_recurrent_and_attention_layers(name, tmp_path, keras):
    """Their gates and projections sit inside other tensors in Keras and ONNX: the canonical params are listed,
    and the file's shape is left unknown rather than guessed."""
    from test_bad_input import wconv

    KERAS_MODELS[name](keras).save(tmp_path / "a.keras")
    converter.convert(tmp_path / "a.keras", tmp_path / "b.onnx")
    for path in (tmp_path / "a.keras", tmp_path / "b.onnx"):
        result = wconv("inspect", path, "--json")
        assert result.returncode == 0, result.stderr
        layers = {layer["name"]: layer for layer in json.loads(result.stdout)["layers"]}
        recurrent = [layer for layer in layers.values() if layer["op"] in ("lstm", "gru", "rnn", "attention")]
        assert recurrent and all(param["canonical_shape"] for layer in recurrent for param in layer["params"])


@pytest.mark.parametrize("target", ["torch", "onnx", "keras"])
@pytest.mark.parametrize("merge", ["sum", "mul", "ave"])
def test_bidirectional_merge_modes(merge, target, tmp_path, keras):
    """Keras Bidirectional's sum/mul/ave combine the two directions, for the sequence and the final state."""
    x_in = keras.Input((STEPS, 6))
    y = keras.layers.Bidirectional(keras.layers.GRU(5, return_sequences=True), merge_mode=merge, name="seq")(x_in)
    y = keras.layers.Bidirectional(keras.layers.LSTM(4), merge_mode=merge, name="final")(y)
    assert_keras_port_matches(keras.Model(x_in, y), target, tmp_path, seed=9)


@pytest.mark.parametrize("saved_by", ["keras2-h5", "keras3-h5"])
def test_hard_sigmoid_gates_follow_the_files_keras_version(saved_by, tmp_path):
    """recurrent_activation='hard_sigmoid' (Keras 2's default in older models) is 0.2x + 0.5 in Keras 2 and
    x/6 + 0.5 in Keras 3: ONNX takes either (HardSigmoid alpha), torch either (an explicit cell), Keras 3 only its
    own."""
    from sequence_models import seeded_keras

    framework = __import__("tf_keras" if saved_by == "keras2-h5" else "keras")
    x_in = framework.Input((STEPS, 6))
    y = framework.layers.LSTM(5, recurrent_activation="hard_sigmoid", return_sequences=True, name="lstm")(x_in)
    y = framework.layers.Bidirectional(framework.layers.GRU(4, recurrent_activation="hard_sigmoid"), name="bi")(y)
    model = seeded_keras(framework.Model(x_in, y), 1)
    model.save(tmp_path / "a.h5")
    x = sequence()
    converter.convert(tmp_path / "a.h5", tmp_path / "b.onnx")
    assert_close(np.asarray(model(x)), run_file("onnx", tmp_path / "b.onnx", x))
    converter.convert(tmp_path / "b.onnx", tmp_path / "c.onnx")  # HardSigmoid read back from ONNX
    assert_close(np.asarray(model(x)), run_file("onnx", tmp_path / "c.onnx", x))
    converter.convert(tmp_path / "a.h5", tmp_path / "e.pt")  # torch: the generated module's explicit cells
    assert_close(np.asarray(model(x)), run_file("torch", tmp_path / "e.pt", x))
    if saved_by == "keras3-h5":
        converter.convert(tmp_path / "b.onnx", tmp_path / "d.keras")
        assert_close(np.asarray(model(x)), run_file("keras", tmp_path / "d.keras", x))
    else:
        with pytest.raises(converter.WconvError, match="slope 0.2;") as error:
            converter.convert(tmp_path / "a.h5", tmp_path / "d.keras")
        assert error.value.exit_code == 3


@pytest.mark.parametrize("cell", ["LSTM", "GRU"])
def test_keras2_cudnn_layers_with_their_doubled_bias(cell, tmp_path):
    """A TF 1-era CuDNNLSTM/CuDNNGRU .h5 (no TensorFlow here builds one: made from a Keras 2 file, its class
    renamed and its bias split in two random halves, the cuDNN layout): the same function as the plain layer
    whose bias is their sum (a GRU with reset_after=True)."""
    import h5py
    import tf_keras

    from sequence_models import seeded_keras

    x_in = tf_keras.Input((STEPS, 6))
    layer = getattr(tf_keras.layers, cell)(5, return_sequences=True, name="rnn")
    y = tf_keras.layers.Bidirectional(getattr(tf_keras.layers, cell)(4), name="bi")(layer(x_in))
    model = seeded_keras(tf_keras.Model(x_in, y), 4)
    model.save(tmp_path / "plain.h5")
    rng = np.random.default_rng(8)
    with h5py.File(tmp_path / "plain.h5", "r+") as f:
        config = json.loads(f.attrs["model_config"])
        for entry in config["config"]["layers"]:
            if entry["class_name"] == cell:
                entry["class_name"] = f"CuDNN{cell}"
            if entry["class_name"] == "Bidirectional":
                entry["config"]["layer"]["class_name"] = f"CuDNN{cell}"
        f.attrs["model_config"] = json.dumps(config).encode()
        for group in ("rnn", "bi"):
            for name in f[f"model_weights/{group}"].attrs["weight_names"]:
                name = name.decode() if isinstance(name, bytes) else name
                if name.endswith("bias:0"):
                    dataset = f"model_weights/{group}/{name}"
                    bias = np.asarray(f[dataset])  # LSTM: (4H,), one bias; GRU with reset_after: (2, 3H)
                    half = rng.normal(0, 0.5, bias.shape).astype(np.float32)
                    stacked = np.concatenate([half, bias - half]) if cell == "LSTM" else bias.reshape(-1)
                    del f[dataset]
                    f[dataset] = stacked
    x = sequence()
    converter.convert(tmp_path / "plain.h5", tmp_path / "out.pt")
    assert_close(np.asarray(model(x)), run_file("torch", tmp_path / "out.pt", x))


@pytest.mark.parametrize("name", ["text_cnn", "recurrent", "text_lstm", "layer_norms"])
def test_keras_to_torch_and_back(name, tmp_path, keras):
    """Keras -> torch port (its generated module) -> Keras again: the same predictions as the original."""
    model = KERAS_MODELS[name](keras)
    model.save(tmp_path / "a.keras")
    converter.convert(tmp_path / "a.keras", tmp_path / "b.pt")
    converter.convert(tmp_path / "b.pt", tmp_path / "c.keras", module=f"{tmp_path / 'b.py'}:Model")
    x = INPUTS[name]()
    assert_close(np.asarray(model(x, training=False)), run_file("keras", tmp_path / "c.keras", x))


@pytest.mark.parametrize("target", ["torch", "keras"])
@pytest.mark.parametrize("opset", [13, 16])
def test_layer_norm_spelled_out_by_older_exporters(opset, target, tmp_path):
    """torch.onnx before opset 17 writes LayerNorm as ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div(/Mul/Add):
    read back as one LayerNorm, with or without gamma and beta."""
    import torch

    import sequence_models

    model = seeded(sequence_models.LayerNormVariants())
    x = sequence()
    torch.onnx.export(model, torch.from_numpy(x), tmp_path / "a.onnx", dynamo=False, opset_version=opset,
                      input_names=["x"])
    out = tmp_path / f"b{SUFFIX[target]}"
    converter.convert(tmp_path / "a.onnx", out)
    assert_close(run_torch_model(model, x), run_file(target, out, x))
    assert converter.read(tmp_path / "a.onnx").nodes[0].op == "layernorm"


def run_all(framework, path, inputs) -> list:
    """Every output of a model file with several inputs and outputs, run by its own framework."""
    if framework == "keras":
        import keras

        outputs = keras.saving.load_model(path, compile=False)(inputs, training=False)
        return [np.asarray(o) for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]
    if framework == "torch":
        import torch

        with torch.no_grad():
            outputs = torch_generated(path)(*[torch.from_numpy(x) for x in inputs])
        return [o.numpy() for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {i.name: x for i, x in zip(session.get_inputs(), inputs)})


def assert_every_port_matches(source, reference: list, inputs: list, tmp_path) -> None:
    """``source`` (a Keras file) to torch, ONNX and Keras, and the torch and ONNX ports read back into the other
    two: every output of every file matches ``reference``."""
    for target in ("torch", "onnx", "keras"):
        port = tmp_path / f"port{SUFFIX[target]}"
        converter.convert(source, port)
        for expected, found in zip(reference, run_all(target, port, inputs), strict=True):
            assert_close(expected, found)
        if target == "keras":
            continue
        options = {"module": f"{tmp_path / 'port.py'}:Model"} if target == "torch" else {}
        for back in {"torch", "onnx", "keras"} - {target}:
            again = tmp_path / f"from_{target}{SUFFIX[back]}"
            converter.convert(port, again, **options)
            for expected, found in zip(reference, run_all(back, again, inputs), strict=True):
                assert_close(expected, found)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["forward", "bidirectional"])
@pytest.mark.parametrize("cell", ["LSTM", "GRU"])
def test_encoder_decoder_states(cell, bidirectional, tmp_path, keras):
    """return_state=True and initial_state=[...] (Keras' seq2seq): the encoder's final states start the decoder,
    whose tags and final state are the outputs. Keras -> torch, ONNX and Keras, and each port read back."""
    from sequence_models import keras_seq2seq, seq2seq_inputs

    model = keras_seq2seq(keras, cell, bidirectional)
    model.save(tmp_path / "a.keras")
    x = seq2seq_inputs()
    reference = [np.asarray(o) for o in model(x)]
    assert_every_port_matches(tmp_path / "a.keras", reference, x, tmp_path)


def test_keras2_encoder_decoder_from_h5(tmp_path):
    """tf_keras records initial states as more inbound tensors of the decoder's call."""
    import tf_keras

    from sequence_models import keras_seq2seq, seq2seq_inputs

    model = keras_seq2seq(tf_keras, "LSTM")
    model.save(tmp_path / "a.h5")
    x = seq2seq_inputs()
    converter.convert(tmp_path / "a.h5", tmp_path / "b.pt")
    for expected, found in zip([np.asarray(o) for o in model(x)], run_all("torch", tmp_path / "b.pt", x), strict=True):
        assert_close(expected, found)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["forward", "bidirectional"])
@pytest.mark.parametrize("cell", ["LSTM", "GRU"])
def test_torch_encoder_decoder_handing_its_state_on_whole(cell, bidirectional, tmp_path):
    """torch's seq2seq idiom, ``_, state = self.encoder(x); out, _ = self.decoder(y, state)``: to ONNX, Keras and
    torch, the same predictions."""
    import torch

    import sequence_models

    model = seeded(sequence_models.RawStateSeq2Seq(cell, bidirectional))
    torch.save(model.state_dict(), tmp_path / "a.pt")
    x = sequence_models.seq2seq_inputs()
    with torch.no_grad():
        reference = model(*[torch.from_numpy(a) for a in x]).numpy()
    for target in ("onnx", "keras", "torch"):
        out = tmp_path / f"b{SUFFIX[target]}"
        converter.convert(tmp_path / "a.pt", out, module=f"{SEQUENCE_MODELS}:RawStateSeq2Seq",
                          module_args={"cell": cell, "bidirectional": bidirectional})
        assert_close(reference, run_all(target, out, x)[0])


@pytest.mark.parametrize("causal", [False, True], ids=["unmasked", "causal"])
@pytest.mark.parametrize("bias", [True, False], ids=["biased", "unbiased"])
def test_attention_nn_multiheadattention_cannot_take(bias, causal, tmp_path, keras):
    """Keras MultiHeadAttention over another sequence (T 11 vs 7, F 6 vs 4), key_dim != value_dim, output_shape
    != query features, with and without biases, with and without use_causal_mask (query step i sees key steps
    0..i): to torch (ExplicitAttention), ONNX (spelled out) and Keras, and each port read back into the others."""
    from sequence_models import DECODER_FEATURES, DECODER_STEPS, seeded_keras, seq2seq_inputs

    query = keras.Input((STEPS, 6), name="query")
    context = keras.Input((DECODER_STEPS, DECODER_FEATURES), name="context")
    y = keras.layers.MultiHeadAttention(num_heads=3, key_dim=5, value_dim=2, output_shape=8, use_bias=bias,
                                        name="cross")(query, context, use_causal_mask=causal)
    model = seeded_keras(keras.Model([query, context], y), 6)
    model.save(tmp_path / "a.keras")
    x = seq2seq_inputs()
    reference = np.asarray(model(x))
    for target in ("torch", "onnx", "keras"):
        port = tmp_path / f"port{SUFFIX[target]}"
        converter.convert(tmp_path / "a.keras", port)
        assert_close(reference, run_all(target, port, x)[0])
        options = {"module": f"{tmp_path / 'port.py'}:Model"} if target == "torch" else {}
        read = converter.read(port, **options)
        assert [(n.op, n.attrs.get("causal", False)) for n in read.nodes] == [("attention", causal)]
        for back in {"torch", "onnx", "keras"} - {target, "keras" if target == "keras" else None}:
            again = tmp_path / f"from_{target}{SUFFIX[back]}"
            converter.convert(port, again, **options)
            assert_close(reference, run_all(back, again, x)[0])


def test_causal_self_attention_block(tmp_path, keras):
    """A decoder block: causal self-attention whose sizes nn.MultiheadAttention could take (the mask alone makes
    it explicit), residual, LayerNorm; a later step never changes an earlier one's output."""
    from sequence_models import seeded_keras

    x_in = keras.Input((STEPS, 6), name="x")
    a = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3, name="self")(x_in, x_in, use_causal_mask=True)
    model = seeded_keras(keras.Model(x_in, keras.layers.LayerNormalization(name="ln")(x_in + a)), 8)
    model.save(tmp_path / "a.keras")
    x = sequence()
    changed = x.copy()
    changed[:, 6:] += 1.0  # steps 6.. differ: outputs at steps 0..5 must not
    for target in ("torch", "onnx"):
        port = tmp_path / f"b{SUFFIX[target]}"
        converter.convert(tmp_path / "a.keras", port)
        assert_close(np.asarray(model(x)), run_file(target, port, x))
        assert_close(run_file(target, port, x)[:, :6], run_file(target, port, changed)[:, :6])
    assert "ExplicitAttention(6, 6, 6, 2, 3, 3, 6, causal=True)" in (tmp_path / "b.py").read_text()


@pytest.mark.slow  # 7 to 25 s on 2 cores: the default suite stays under 10 minutes
@pytest.mark.parametrize("causal,dropout", [(False, 0.0), (True, 0.0), (False, 0.1)],
                         ids=["mask", "mask_and_causal", "mask_and_dropout"])
def test_attention_mask_input(causal, dropout, tmp_path, keras):
    """Keras' attention_mask (N, T, S), with and without use_causal_mask, one query step masked whole (Keras then
    averages every value; with dropout, Keras 3 gives it none: zeros, as torch's SDPA does): to torch, ONNX and
    Keras and back; validate draws boolean masks."""
    from sequence_models import DECODER_FEATURES, DECODER_STEPS, seeded_keras, seq2seq_inputs
    from test_bad_input import wconv

    query = keras.Input((STEPS, 6), name="query")
    context = keras.Input((DECODER_STEPS, DECODER_FEATURES), name="context")
    mask = keras.Input((STEPS, DECODER_STEPS), dtype="bool", name="mask")
    y = keras.layers.MultiHeadAttention(num_heads=3, key_dim=5, value_dim=2, dropout=dropout, name="cross")(
        query, context, attention_mask=mask, use_causal_mask=causal)
    model = seeded_keras(keras.Model([query, context, mask], y), 6)
    model.save(tmp_path / "a.keras")
    x = seq2seq_inputs() + [np.random.default_rng(1).random((4, STEPS, DECODER_STEPS)) < 0.6]
    x[2][0, 3] = False
    assert_every_port_matches(tmp_path / "a.keras", [np.asarray(model(x))], x, tmp_path)
    assert "mask (N, 11, 7) bool mask" in (tmp_path / "port.py").read_text()
    if dropout:  # Keras 2 averages there whatever the dropout: a legacy .h5, which Keras 2 loads too, is refused
        with pytest.raises(converter.WconvError, match="'cross'.*legacy .h5"):
            converter.convert(tmp_path / "a.keras", tmp_path / "d.h5")
    result = wconv("validate", tmp_path / "a.keras", tmp_path / "port.onnx", "--json")
    assert result.returncode == 0, result.stdout + result.stderr


def test_attention_masks_wconv_does_not_convert_are_refused(tmp_path):
    """torch's nn.MultiheadAttention masks mean the opposite of Keras' (True: do not attend)."""
    import torch

    import sequence_models

    torch.save(seeded(sequence_models.MaskedAttention()).state_dict(), tmp_path / "b.pt")
    message = refusal(tmp_path, tmp_path / "b.pt", module=f"{SEQUENCE_MODELS}:MaskedAttention")
    assert "called with attn_mask" in message


@pytest.mark.parametrize("op_type", ["WconvAttention", "WconvClassTokens", "WconvAdaptiveAvgPool"])
def test_a_file_cannot_claim_the_nodes_the_readers_passes_make(op_type, tmp_path):
    """The ONNX reader's passes make nodes that stand for what they proved (attention, class tokens); the same op
    types in a file are refused by name, never read. A rule on the rewrite driver gives IR nodes (rewrite.Lifted),
    which no file can hold: its old op type (an adaptive pool's) is just an op wconv does not know."""
    from onnx import TensorProto, helper

    node = helper.make_node(op_type, ["x", "x", "x"], ["y"], name="claimed")
    value = helper.make_tensor_value_info
    graph = helper.make_graph([node], "g", [value("x", TensorProto.FLOAT, [None, 5, 4])],
                              [value("y", TensorProto.FLOAT, [None, 5, 4])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "a.onnx")
    message = refusal(tmp_path, tmp_path / "a.onnx")
    assert f"reserves for its own reading: 'claimed' ({op_type})" in message if op_type != "WconvAdaptiveAvgPool" \
        else f"'claimed' ({op_type})" in message and "1 unsupported layer(s)" in message


@pytest.mark.parametrize("states", [False, True], ids=["outputs", "with_states"])
def test_bidirectional_merge_mode_none(states, tmp_path, keras):
    """merge_mode=None: each direction's sequence (or final state) is an output of its own, before any states:
    Keras -> torch, ONNX and Keras, and each port read back into the others."""
    from sequence_models import seeded_keras

    x_in = keras.Input((STEPS, 6), name="x")
    out = keras.layers.Bidirectional(keras.layers.GRU(5, return_sequences=True, return_state=states),
                                     merge_mode=None, name="seq")(x_in)
    final = keras.layers.Bidirectional(keras.layers.LSTM(4), merge_mode=None, name="final")(out[1])
    outputs = [keras.layers.Dense(3, name="head")(out[0]), *final, *(out[2:] if states else [])]
    model = seeded_keras(keras.Model(x_in, outputs), 2)
    model.save(tmp_path / "a.keras")
    x = [sequence()]
    reference = [np.asarray(o) for o in model(x[0])]
    assert_every_port_matches(tmp_path / "a.keras", reference, x, tmp_path)
