"""wconv reads torch modules through torch.export (adapters/torch/exported.py): Python written for eager mode,
which torch.fx cannot trace, converts; where export itself fails, the error names the user's line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import converter
from conftest import TARGET_SUFFIX, assert_close, run_inputs
from export_models import (STEPS, WIDTH, CountedPositions, DataDependent, EagerPython, FunctionalMaxPool, InPlace,
                           MaskedAttention,
                           PackedAttention, RMSNormed, RotaryGroupedAttention, SharedMultiheadAttention,
                           SpelledAttention, StackedMean, TanhGelu, TwoNames, WriteThroughView)
from sequence_models import seeded
from test_bad_input import wconv
from test_sequences import run_file

MODULES = Path(__file__).with_name("export_models.py")


def _save(model, path):
    torch.save(seeded(model).state_dict(), path)
    return model


@pytest.mark.parametrize("target", ["onnx", "keras"])
def test_python_torch_fx_cannot_trace_converts(target, tmp_path):
    model = _save(EagerPython(), tmp_path / "a.pt")
    with pytest.raises(Exception):  # the reason for the front end: fx stops at the slice by a traced length
        torch.fx.symbolic_trace(model)
    out = tmp_path / ("b.onnx" if target == "onnx" else "b.keras")
    converter.convert(tmp_path / "a.pt", out, module=f"{MODULES}:EagerPython")
    x = np.random.default_rng(3).standard_normal((4, STEPS, WIDTH)).astype("float32")
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    assert_close(expected, run_file(target, out, x))


def test_an_in_place_add_nothing_reads_before_is_a_plain_add(tmp_path):
    model = _save(InPlace(), tmp_path / "a.pt")
    converter.convert(tmp_path / "a.pt", tmp_path / "b.onnx", module=f"{MODULES}:InPlace")
    x = np.random.default_rng(4).standard_normal((3, WIDTH)).astype("float32")
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    assert_close(expected, run_file("onnx", tmp_path / "b.onnx", x))


def test_a_write_through_a_view_is_refused(tmp_path):
    _save(WriteThroughView(), tmp_path / "a.pt")
    result = wconv("torch-to-onnx", tmp_path / "a.pt", tmp_path / "b.onnx", "--module", f"{MODULES}:WriteThroughView")
    assert result.returncode == 3, result.stderr
    assert "add_" in result.stderr and not (tmp_path / "b.onnx").exists()


def test_where_export_fails_the_error_names_the_users_line(tmp_path):
    _save(DataDependent(), tmp_path / "a.pt")
    result = wconv("torch-to-onnx", tmp_path / "a.pt", tmp_path / "b.onnx", "--module", f"{MODULES}:DataDependent")
    assert result.returncode == 3, result.stderr
    line = next(n for n, text in enumerate(MODULES.read_text().splitlines(), 1) if "if x.sum() > 0:" in text)
    assert f"export_models.py:{line}" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("options", [{}, {"causal": True}, {"scale": 3 ** -0.5}], ids=["plain", "causal", "scale"])
def test_attention_around_scaled_dot_product_attention_is_one_layer(options, tmp_path):
    model = _save(SpelledAttention(**options), tmp_path / "a.pt")
    graph = converter.read(tmp_path / "a.pt", module=f"{MODULES}:SpelledAttention", module_args=options)
    assert [node.op for node in graph.nodes] == ["attention"] and graph.nodes[0].attrs.get("causal", False) == \
        options.get("causal", False)
    converter.convert(tmp_path / "a.pt", tmp_path / "b.onnx", module=f"{MODULES}:SpelledAttention", module_args=options)
    x = np.random.default_rng(5).standard_normal((3, STEPS, 5)).astype("float32")
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    assert_close(expected, run_file("onnx", tmp_path / "b.onnx", x))


@pytest.mark.parametrize("target", ["onnx", "keras", "torch"])
def test_attention_with_another_scale_keeps_it(target, tmp_path):
    """A scale other than 1/sqrt(d) (T5's is 1) is the op's scale: wconv's ExplicitAttention in torch and Keras, the
    Mul in ONNX; each port reads back with it."""
    model = _save(SpelledAttention(scale=0.5), tmp_path / "a.pt")
    options = {"module": f"{MODULES}:SpelledAttention", "module_args": {"scale": 0.5}}
    graph = converter.read(tmp_path / "a.pt", **options)
    assert [(node.op, node.attrs.get("scale")) for node in graph.nodes] == [("attention", 0.5)]
    out = tmp_path / f"b{TARGET_SUFFIX[target]}"
    converter.convert(tmp_path / "a.pt", out, **options)
    x = np.random.default_rng(5).standard_normal((3, STEPS, 5)).astype("float32")
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    assert_close(expected, run_inputs(target, out, [x])[0])
    module = {"module": f"{tmp_path / 'b.py'}:Model"} if target == "torch" else {}
    back = converter.read(out, **module)
    assert [(node.op, node.attrs.get("scale")) for node in back.nodes if node.op == "attention"] == [("attention", 0.5)]


def test_a_functional_max_pool_reads_as_the_values_aten_pairs_with_indices(tmp_path):
    model = _save(FunctionalMaxPool(), tmp_path / "a.pt")
    converter.convert(tmp_path / "a.pt", tmp_path / "b.onnx", module=f"{MODULES}:FunctionalMaxPool")
    x = np.random.default_rng(6).standard_normal((2, 3, 12, 8)).astype("float32")
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    assert_close(expected, run_file("onnx", tmp_path / "b.onnx", x))


def test_a_packed_projection_and_a_causal_mask_built_from_positions_are_one_causal_attention(tmp_path):
    """GPT-2's spelling: q, k, v as thirds of one projection; the mask compares positions (arange), so it is the same
    for every input of the shape: evaluated, it is exactly the causal mask."""
    model = _save(PackedAttention(), tmp_path / "a.pt")
    graph = converter.read(tmp_path / "a.pt", module=f"{MODULES}:PackedAttention")
    assert [(node.op, node.attrs.get("causal")) for node in graph.nodes] == [("attention", True)]
    x = np.random.default_rng(7).standard_normal((3, STEPS, 5)).astype("float32")
    _converts_and_predicts(model, {"module": f"{MODULES}:PackedAttention"}, x, tmp_path)


def _converts_and_predicts(model, options, x, tmp_path):
    """``tmp_path / a.pt`` converts to ONNX and Keras, each predicting as ``model`` on ``x``."""
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    for target in ("onnx", "keras"):
        converter.convert(tmp_path / "a.pt", tmp_path / f"b.{target}", **options)
        assert_close(expected, run_file(target, tmp_path / f"b.{target}", x))


def test_a_mask_built_from_positions_that_is_not_causal_is_refused_by_name(tmp_path):
    _save(PackedAttention(ahead=1), tmp_path / "a.pt")
    result = wconv("torch-to-onnx", tmp_path / "a.pt", tmp_path / "b.onnx", "--module", f"{MODULES}:PackedAttention",
                   "--module-args", '{"ahead": 1}')
    assert result.returncode == 3 and "scaled_dot_product_attention" in result.stderr, result.stderr
    assert not (tmp_path / "b.onnx").exists()


@pytest.mark.parametrize("spelling", ["llama", "gqa"])
def test_rotary_embeddings_and_grouped_key_value_heads_are_one_attention(spelling, tmp_path):
    """q and k rotated by tables forward() computes, k and v repeated from 2 heads to 4: one attention whose params
    hold the tables and whose kv_heads is 2, converting to ONNX and Keras (wconv's ExplicitAttention layer)."""
    options = {"module": f"{MODULES}:RotaryGroupedAttention", "module_args": {"spelling": spelling}}
    model = _save(RotaryGroupedAttention(spelling), tmp_path / "a.pt")
    graph = converter.read(tmp_path / "a.pt", **options)
    assert [node.op for node in graph.nodes] == ["attention"]
    attrs, params = graph.nodes[0].attrs, graph.nodes[0].params
    assert (attrs["heads"], attrs["kv_heads"], attrs["rotary"], attrs["causal"]) == (4, 2, "half", True)
    np.testing.assert_array_equal(params["cos"], model.cos.numpy())
    x = np.random.default_rng(8).standard_normal((3, STEPS, 5)).astype("float32")
    _converts_and_predicts(model, options, x, tmp_path)


def test_a_rotation_the_other_way_is_not_rotary_and_is_refused_by_name(tmp_path):
    _save(RotaryGroupedAttention("swapped"), tmp_path / "a.pt")
    result = wconv("torch-to-onnx", tmp_path / "a.pt", tmp_path / "b.onnx", "--module",
                   f"{MODULES}:RotaryGroupedAttention", "--module-args", '{"spelling": "swapped"}')
    assert result.returncode == 3 and "scaled_dot_product_attention" in result.stderr, result.stderr
    assert not (tmp_path / "b.onnx").exists()


def test_positions_counted_from_the_ids_whatever_the_spelling_are_one_op(tmp_path):
    """``where(ids != 2, cumsum + 2, 2)`` is RoBERTa's ``cumsum(ids != 2) * (ids != 2) + 2`` by value: probed on
    rows with padding anywhere, it reads as the token_positions op with padding 2, and converts."""
    options = {"module": f"{MODULES}:CountedPositions"}
    model = _save(CountedPositions(), tmp_path / "a.pt")
    graph = converter.read(tmp_path / "a.pt", **options)
    assert [(node.op, node.attrs.get("padding")) for node in graph.nodes][:1] == [("token_positions", 2)]
    ids = np.random.default_rng(9).integers(0, 4, (6, STEPS)).astype("int64")  # padding (2) often, left ones too
    _converts_and_predicts(model, options, ids, tmp_path)


def test_positions_that_count_padding_are_refused_by_name(tmp_path):
    _save(CountedPositions("padding_counted"), tmp_path / "a.pt")
    result = wconv("torch-to-onnx", tmp_path / "a.pt", tmp_path / "b.onnx", "--module", f"{MODULES}:CountedPositions",
                   "--module-args", '{"spelling": "padding_counted"}')
    assert result.returncode == 3 and "cumsum" in result.stderr, result.stderr
    assert not (tmp_path / "b.onnx").exists()


def test_a_stack_averaged_over_its_new_axis_is_one_average(tmp_path):
    model = _save(StackedMean(), tmp_path / "a.pt")
    graph = converter.read(tmp_path / "a.pt", module=f"{MODULES}:StackedMean")
    assert [node.op for node in graph.nodes] == ["dense", "dense", "average"]
    _converts_and_predicts(model, {"module": f"{MODULES}:StackedMean"},
                           np.random.default_rng(10).standard_normal((3, 5)).astype("float32"), tmp_path)


def test_a_stack_averaged_over_another_axis_is_refused_by_name(tmp_path):
    _save(StackedMean(axis=1), tmp_path / "a.pt")
    result = wconv("torch-to-onnx", tmp_path / "a.pt", tmp_path / "b.onnx", "--module", f"{MODULES}:StackedMean",
                   "--module-args", '{"axis": 1}')
    assert result.returncode == 3 and "stack" in result.stderr, result.stderr


def test_a_multihead_attention_called_twice_is_two_attentions_sharing_its_weights(tmp_path):
    """Each call, with the unpacking of its (output, weights), is one attention named after the module (the second
    ``attn#2``), the second tied to the first: a torch port calls one module twice, its state_dict holds it once."""
    options = {"module": f"{MODULES}:SharedMultiheadAttention"}
    model = _save(SharedMultiheadAttention(), tmp_path / "a.pt")
    graph = converter.read(tmp_path / "a.pt", **options)
    assert [(node.op, node.name, node.attrs.get("weights_of")) for node in graph.nodes] == \
        [("attention", "attn", None), ("attention", "attn#2", "attn")]
    x = np.random.default_rng(11).standard_normal((3, STEPS, 6)).astype("float32")
    _converts_and_predicts(model, options, x, tmp_path)
    converter.convert(tmp_path / "a.pt", tmp_path / "b.pt", **options)
    assert sum(key.endswith("in_proj_weight") for key in torch.load(tmp_path / "b.pt", weights_only=True)) == 1
    with torch.no_grad():
        assert_close(model(torch.from_numpy(x)).numpy(), run_file("torch", tmp_path / "b.pt", x))


@pytest.mark.parametrize("order", ["gpt2", "other"])
def test_gelu_tanh_written_out_is_one_gelu(order, tmp_path):
    model = _save(TanhGelu(order), tmp_path / "a.pt")
    options = {"module": f"{MODULES}:TanhGelu", "module_args": {"order": order}}
    graph = converter.read(tmp_path / "a.pt", **options)
    assert [(node.op, node.attrs.get("approximate")) for node in graph.nodes] == [("dense", None), ("gelu", "tanh")]
    x = (np.random.default_rng(8).standard_normal((4, 5)) * 3).astype("float32")
    _converts_and_predicts(model, options, x, tmp_path)  # Keras: ops.gelu(approximate=True)


def test_a_tanh_formula_with_other_constants_is_not_gelu(tmp_path):
    _save(TanhGelu(cubic=0.05), tmp_path / "a.pt")
    result = wconv("torch-to-onnx", tmp_path / "a.pt", tmp_path / "b.onnx", "--module", f"{MODULES}:TanhGelu",
                   "--module-args", '{"cubic": 0.05}')
    assert result.returncode == 3 and "pow" in result.stderr, result.stderr


@pytest.mark.parametrize("build", ["padding", "causal"])
def test_a_mask_built_from_an_inputs_zeros_is_a_padding_mask_input(build, tmp_path):
    """Whatever ops build it, a mask that is ``ids != 0`` for each key (and causal) for every 0/1 row of ids is the
    padding_mask op: the port takes the ids and predicts the same, padding included."""
    model = _save(MaskedAttention(build), tmp_path / "a.pt")
    options = {"module": f"{MODULES}:MaskedAttention", "module_args": {"build": build}}
    graph = converter.read(tmp_path / "a.pt", **options)
    assert [(node.op, node.attrs.get("causal", False)) for node in graph.nodes] == \
        [("padding_mask", False), ("attention", build == "causal")]
    x = np.random.default_rng(9).standard_normal((3, STEPS, 5)).astype("float32")
    ids = (np.arange(STEPS) < np.array([[STEPS], [2], [5]])) * np.random.default_rng(9).integers(1, 9, (3, STEPS))
    with torch.no_grad():
        expected = model(torch.from_numpy(x), torch.from_numpy(ids)).numpy()
    for target in ("onnx", "keras"):
        converter.convert(tmp_path / "a.pt", tmp_path / f"b.{target}", **options)
        assert_close(expected, run_inputs(target, tmp_path / f"b.{target}", [x, ids])[0])


def test_a_mask_that_reads_more_than_zeros_is_refused_by_name(tmp_path):
    """``ids > 0`` is a padding mask for 0/1 ids only: a port reading it as one would be wrong on other ids."""
    _save(MaskedAttention("positive"), tmp_path / "a.pt")
    result = wconv("torch-to-onnx", tmp_path / "a.pt", tmp_path / "b.onnx", "--module", f"{MODULES}:MaskedAttention",
                   "--module-args", '{"build": "positive"}')
    assert result.returncode == 3 and "scaled_dot_product_attention" in result.stderr, result.stderr


@pytest.mark.parametrize("spelling", ["written", "module", "unweighted"])
def test_rmsnorm_reads_as_one_layer_and_converts(spelling, tmp_path):
    """RMSNorm as transformers writes it (rms_norm_rule.py), torch's nn.RMSNorm, or without a weight: one rmsnorm,
    to ONNX (written out, read back), Keras (RMSNormalization) and torch (nn.RMSNorm)."""
    model = _save(RMSNormed(spelling), tmp_path / "a.pt")
    options = {"module": f"{MODULES}:RMSNormed", "module_args": {"spelling": spelling}}
    assert [node.op for node in converter.read(tmp_path / "a.pt", **options).nodes] == ["dense", "rmsnorm"]
    x = np.random.default_rng(10).standard_normal((3, STEPS, 5)).astype("float32")
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    for target in ("onnx", "keras", "torch"):
        out = tmp_path / f"b{TARGET_SUFFIX[target]}"
        converter.convert(tmp_path / "a.pt", out, **options)
        assert_close(expected, run_inputs(target, out, [x])[0])
        if target != "torch":
            assert [node.op for node in converter.read(out).nodes] == ["dense", "rmsnorm"]


def test_validate_names_an_rmsnorm_whose_epsilon_a_port_dropped(tmp_path):
    """0 wrong answers: the ONNX port's epsilon set to 0 is named at the norm."""
    import onnx
    from onnx import numpy_helper

    _save(RMSNormed(), tmp_path / "a.pt")
    converter.convert(tmp_path / "a.pt", tmp_path / "b.onnx", module=f"{MODULES}:RMSNormed")
    model = onnx.load(tmp_path / "b.onnx")
    epsilon = next(t for t in model.graph.initializer if t.name.endswith(".epsilon"))
    epsilon.CopyFrom(numpy_helper.from_array(np.array(0.0, np.float32), epsilon.name))
    onnx.save(model, tmp_path / "b.onnx")
    report = converter.validate(tmp_path / "a.pt", tmp_path / "b.onnx", source_module=f"{MODULES}:RMSNormed")
    graph = converter.read(tmp_path / "a.pt", module=f"{MODULES}:RMSNormed")
    norm = next(node.name for node in graph.nodes if node.op == "rmsnorm")  # named after its output (no module)
    assert not report.ok and report.first_mismatch == norm, report.first_mismatch


def test_one_tensor_under_two_names_is_used_once_and_must_agree(tmp_path):
    """A tensor the module holds under two names is in the state_dict twice: both entries are used where the module
    uses it, and they must hold the same values (else which one the module runs with is the file's accident)."""
    model = _save(TwoNames(), tmp_path / "a.pt")
    assert set(model.state_dict()) == {"shared.weight", "encoder.embed_tokens.weight", "encoder.fc.weight",
                                       "encoder.fc.bias"}
    converter.convert(tmp_path / "a.pt", tmp_path / "b.onnx", module=f"{MODULES}:TwoNames")
    ids = np.random.default_rng(3).integers(0, 10, (2, STEPS))
    with torch.no_grad():
        expected = model(torch.from_numpy(ids)).numpy()
    assert_close(expected, run_inputs("onnx", tmp_path / "b.onnx", [ids])[0])
    state = model.state_dict()
    state["shared.weight"] = state["shared.weight"] + 1  # a copy of its own now
    torch.save(state, tmp_path / "a.pt")
    with pytest.raises(converter.WconvError, match="'shared.weight' and 'encoder.embed_tokens.weight' name one tensor") as error:
        converter.convert(tmp_path / "a.pt", tmp_path / "c.onnx", module=f"{MODULES}:TwoNames")
    assert error.value.exit_code == 2 and not (tmp_path / "c.onnx").exists()
