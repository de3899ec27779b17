"""validate on sequence models: the classic recurrent and normalization mistakes are named at their layer.

A correct wconv port of a Keras text model gets one mistake injected, the way people make it by hand.
"""

from __future__ import annotations

import json
import re

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import converter
from conftest import TESTS
from sequence_models import CLASSES, EMBED, HIDDEN, STEPS, VOCABULARY, seeded_keras
from test_bad_input import wconv


def keras_text_model(keras):
    """ids -> Embedding -> LSTM (sequence) -> LayerNorm (epsilon large enough to show) -> self-attention ->
    Bidirectional GRU -> Dense."""
    ids = keras.Input((STEPS,), dtype="int32", name="ids")
    x = keras.layers.Embedding(VOCABULARY, EMBED, name="emb")(ids)
    x = keras.layers.LSTM(HIDDEN, return_sequences=True, name="lstm")(x)
    x = keras.layers.LayerNormalization(epsilon=0.5, name="ln")(x)
    x = keras.layers.MultiHeadAttention(num_heads=3, key_dim=HIDDEN // 3, name="mha")(x, x)  # packs in torch
    x = keras.layers.Bidirectional(keras.layers.GRU(5), name="bi")(x)
    return seeded_keras(keras.Model(ids, keras.layers.Dense(CLASSES, name="head")(x)), 7)


@pytest.fixture
def source(tmp_path, keras):
    keras_text_model(keras).save(tmp_path / "source.keras")
    return tmp_path / "source.keras"


def test_a_correct_port_passes_layer_by_layer(source, tmp_path):
    for suffix in (".pt", ".onnx"):
        converter.convert(source, tmp_path / f"port{suffix}")
        report = converter.validate(source, tmp_path / f"port{suffix}")
        assert report.ok and report.first_mismatch is None
        assert [layer.name for layer in report.layers] == ["emb", "lstm", "ln", "mha", "bi", "head"]


def _blocks(array, order: str, wanted: str, axis=0):
    parts = dict(zip(order, np.split(array, len(order), axis=axis)))
    return np.concatenate([parts[g] for g in wanted], axis=axis)


def inject_torch(port, torch, mistake: str) -> list[str]:
    state = torch.load(port, weights_only=True)
    if mistake == "gru_z_and_r_swapped":  # torch stacks r z n; pasted in Keras' z r h order
        for key in [k for k in state if k.startswith("bi.weight") or k.startswith("bi.bias")]:
            state[key] = torch.from_numpy(_blocks(state[key].numpy(), "rzn", "zrn"))
    elif mistake == "in_proj_packed_k_q_v":  # q and k blocks of in_proj_weight (and its bias) swapped
        for key in ("mha.in_proj_weight", "mha.in_proj_bias"):
            q, k, v = state[key].chunk(3)
            state[key] = torch.cat([k, q, v]).contiguous()
    elif mistake == "layernorm_epsilon_lost":  # torch's default 1e-5 instead of the model's 0.5
        module = port.with_suffix(".py")
        module.write_text(re.sub(r"nn\.LayerNorm\((\d+), eps=0\.5\)", r"nn.LayerNorm(\1)", module.read_text()))
        return ["--target-module", f"{module}:Model"]
    torch.save(state, port)
    return []


def inject_onnx(port, mistake: str) -> None:
    model = onnx.load(port)
    for tensor in model.graph.initializer:
        if mistake == "lstm_gates_left_in_keras_order" and tensor.name in ("lstm.W", "lstm.R", "lstm.B"):
            array = numpy_helper.to_array(tensor)
            axis = 1
            if tensor.name == "lstm.B":  # [Wb, Rb], each i o f c
                halves = np.split(array, 2, axis=1)
                array = np.concatenate([_blocks(h, "iofc", "ifco", axis) for h in halves], axis=1)
            else:
                array = _blocks(array, "iofc", "ifco", axis)
            tensor.CopyFrom(numpy_helper.from_array(array, tensor.name))
    onnx.save(model, port)


CULPRITS = {"gru_z_and_r_swapped": "bi", "in_proj_packed_k_q_v": "mha", "layernorm_epsilon_lost": "ln",
            "lstm_gates_left_in_keras_order": "lstm"}


@pytest.mark.parametrize("mistake", CULPRITS)
def test_mistake_is_caught_at_its_layer(mistake, source, tmp_path, torch):
    if mistake.startswith("lstm_gates"):
        port = tmp_path / "port.onnx"
        converter.convert(source, port)
        inject_onnx(port, mistake)
        options = []
    else:
        port = tmp_path / "port.pt"
        converter.convert(source, port)
        options = inject_torch(port, torch, mistake)
    report = converter.validate(source, port, **({"target_module": options[1]} if options else {}))
    assert not report.ok and report.first_mismatch == CULPRITS[mistake]


def test_second_torch_bias_dropped_is_caught(tmp_path, keras, torch):
    """torch -> Keras by hand: Keras' one bias must be bias_ih + bias_hh; taking bias_ih alone is the classic slip."""
    import sequence_models

    model = sequence_models.seeded(sequence_models.LSTMTagger(layers=1))
    torch.save(model.state_dict(), tmp_path / "a.pt")
    module, arguments = f"{TESTS / 'sequence_models.py'}:LSTMTagger", json.dumps({"layers": 1})
    converter.convert(tmp_path / "a.pt", tmp_path / "b.keras", module=module, module_args=arguments,
                      input_shape=[STEPS])
    port = keras.saving.load_model(tmp_path / "b.keras")
    layer = port.get_layer("lstm")
    state = model.state_dict()
    weights = layer.get_weights()  # forward kernel, recurrent kernel, bias, then the backward three
    weights[2] = state["lstm.bias_ih_l0"].numpy()  # the Keras gate order i f c o is torch's i f g o
    layer.set_weights(weights)
    port.save(tmp_path / "c.keras")
    result = wconv("validate", tmp_path / "a.pt", tmp_path / "c.keras", "--json", "--source-module", module,
                   "--module-args", arguments, "--input-shape", str(STEPS))
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["first_mismatch"] == "lstm"
