"""The rewrite driver (converter/rewrite.py) and each of its rules, on small hand-built op-level graphs.

Each rule's test fails without the rule: the graph keeps its spelled-out nodes. The reader's end-to-end tests
(test_activations, test_groupnorm, test_softmax_spelled_out, ...) check the same rules against the frameworks.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from onnx import helper

from converter import rewrite
from converter.adapters.onnx import adaptive_pool_pass, gelu_pass, groupnorm_pass, layernorm_pass, softmax_pass
from converter.adapters.onnx import padding_mask_pass, recurrent_pass, strided_pass, tokens_pass, transpose_pass
from converter.adapters.onnx import flattened_dense_pass, padding_mask_probe, rmsnorm_pass, rotary_pass
from converter.adapters.onnx import constants as constants_pass, token_positions_probe, token_rows_pass
from converter.adapters.onnx.shape_pass import BATCH
from converter.adapters.onnx.wiring import Wiring


def node(op_type, inputs, outputs, **attrs):
    return helper.make_node(op_type, inputs, outputs, name=outputs[0], **attrs)


def scalar(value):
    return np.array(value, np.float32)


def run(rules, nodes, constants, outputs=("y",), inputs=("x",)):
    constants = dict(constants)
    done, consumed = rewrite.apply(rules, list(nodes), constants, set(outputs), set(inputs), Wiring)
    return [n.op_type for n in done], done, consumed, constants


# -- the rules -----------------------------------------------------------------------------------------------
SOFTMAX = [node("ReduceMax", ["x", "axes"], ["peak"], keepdims=1), node("Sub", ["x", "peak"], ["d"]),
           node("Exp", ["d"], ["e"]), node("ReduceSum", ["e", "axes"], ["total"], keepdims=1),
           node("Div", ["e", "total"], ["y"])]
AXES = {"axes": np.array([-1], np.int64)}


def test_softmax_spelled_out_is_one_softmax():
    types, done, consumed, _ = run([softmax_pass.RULE], SOFTMAX, AXES)
    assert types == ["Softmax"] and done[0].input == ["x"] and done[0].output == ["y"]
    assert consumed == {"axes"}


def test_log_softmax_spelled_out_is_one_log_softmax():
    nodes = [node("Exp", ["x"], ["e"]), node("ReduceSum", ["e", "axes"], ["total"], keepdims=1),
             node("Log", ["total"], ["log"]), node("Sub", ["x", "log"], ["y"])]
    assert run([softmax_pass.RULE], nodes, AXES)[0] == ["LogSoftmax"]


def test_gelu_spelled_out_is_one_gelu():
    nodes = [node("Div", ["x", "root2"], ["scaled"]), node("Erf", ["scaled"], ["erf"]),
             node("Add", ["erf", "one"], ["plus"]), node("Mul", ["x", "plus"], ["times"]),
             node("Mul", ["times", "half"], ["y"])]
    constants = {"root2": scalar(math.sqrt(2)), "one": scalar(1.0), "half": scalar(0.5)}
    types, done, consumed, _ = run([gelu_pass.RULE], nodes, constants)
    assert types == ["Gelu"] and consumed == set(constants)


def test_layernorm_spelled_out_is_one_layer_normalization():
    nodes = [node("ReduceMean", ["x"], ["mean"], axes=[-1]), node("Sub", ["x", "mean"], ["d"]),
             node("Pow", ["d", "two"], ["squared"]), node("ReduceMean", ["squared"], ["var"], axes=[-1]),
             node("Add", ["var", "eps"], ["shifted"]), node("Sqrt", ["shifted"], ["root"]),
             node("Div", ["d", "root"], ["normed"]), node("Add", ["normed", "beta"], ["y"])]
    constants = {"two": scalar(2.0), "eps": scalar(1e-3), "beta": np.arange(5, dtype=np.float32)}
    types, done, consumed, added = run([layernorm_pass.RULE], nodes, constants)
    assert types == ["LayerNormalization"] and done[0].input == ["x", "y/ones", "beta"]
    assert np.array_equal(added["y/ones"], np.ones(5, np.float32))  # a beta without gamma gets a gamma of ones
    assert consumed == {"two", "eps"}  # beta is the new node's: still read


@pytest.mark.parametrize("spelling", ["div", "reciprocal"])
def test_rmsnorm_spelled_out_is_one_rmsnorm(spelling):
    """x / Sqrt(ReduceMean(Pow(x, 2)) + eps) * scale (wconv's), or x * Reciprocal(Sqrt(...)) (torch.onnx's rsqrt)."""
    normalized = [node("Div", ["x", "root"], ["n"])] if spelling == "div" else \
        [node("Reciprocal", ["root"], ["inverse"]), node("Mul", ["inverse", "x"], ["n"])]
    nodes = [node("Pow", ["x", "two"], ["square"]), node("ReduceMean", ["square", "axes"], ["mean"], keepdims=1),
             node("Add", ["mean", "eps"], ["shifted"]), node("Sqrt", ["shifted"], ["root"]), *normalized,
             node("Mul", ["scale", "n"], ["y"])]
    constants = {"two": scalar(2.0), "axes": np.array([-1], np.int64), "eps": scalar(1e-5),
                 "scale": np.arange(4, dtype=np.float32)}
    types, done, consumed, _ = run([rmsnorm_pass.RULE], nodes, constants)
    assert types == ["(lifted)"] and [n.op for n in done[0].nodes] == ["rmsnorm"]
    assert done[0].nodes[0].attrs["epsilon"] == pytest.approx(1e-5)
    np.testing.assert_array_equal(done[0].nodes[0].params["scale"], constants["scale"])
    assert consumed == set(constants)


@pytest.mark.parametrize("residual", [False, True], ids=["cast_read_by_the_norm", "cast_read_by_the_residual_too"])
def test_torchscripts_rmsnorm_of_a_cast_is_one_rmsnorm(residual):
    """T5's norm as torch.onnx's TorchScript exporter writes it: x' = Cast(x, float), x' * Div(1, Sqrt(...)). Where
    x is a float already, x' is x (an Identity where the residual Add reads x' too); a cast from another type, or
    from a type unknown, changes values and stays."""
    nodes = [node("Cast", ["x"], ["cast"], to=1), node("Pow", ["cast", "two"], ["square"]),
             node("ReduceMean", ["square", "axes"], ["mean"], keepdims=1), node("Add", ["mean", "eps"], ["shifted"]),
             node("Sqrt", ["shifted"], ["root"]), node("Div", ["one", "root"], ["inverse"]),
             node("Mul", ["cast", "inverse"], ["n"]), node("Mul", ["scale", "n"], ["normed"]),
             node("Add", ["cast" if residual else "x", "normed"], ["y"])]
    constants = {"two": scalar(2.0), "axes": np.array([-1], np.int64), "eps": scalar(1e-6), "one": scalar(1.0),
                 "scale": np.arange(4, dtype=np.float32)}
    for unknown_or_not_float in ({}, {"x": 10}):  # x's type unknown, or float16: the cast stays, the norm reads it
        kept = run([rmsnorm_pass.rule(unknown_or_not_float)], nodes, constants)
        assert kept[0] == ["Cast", "(lifted)", "Add"] and kept[1][1].nodes[0].inputs == ["cast"]
    types, done, consumed, _ = run([rmsnorm_pass.rule({"x": rmsnorm_pass.FLOAT})], nodes, constants)
    assert types == (["Identity"] if residual else []) + ["(lifted)", "Add"]
    lifted = done[-2].nodes[0]
    assert lifted.op == "rmsnorm" and lifted.inputs == ["x"] and lifted.attrs["epsilon"] == pytest.approx(1e-6)
    assert done[-1].input == ["cast" if residual else "x", "normed"] and consumed == set(constants)
    if residual:
        assert list(done[0].input) == ["x"] and list(done[0].output) == ["cast"]


@pytest.mark.parametrize("turn", ["rotate_half", "other_way"])
def test_a_rotary_embedding_spelled_out_is_one_rotation(turn):
    """x * cos + Concat(-x2, x1) * sin (torch.onnx's Slice spelling) is one rotation holding the tables as the file
    broadcasts them; Concat(x2, -x1), the rotation the other way, is not rotate_half and stays as it is."""
    negated, halves = ("second", ["negated", "first"]) if turn == "rotate_half" else ("first", ["second", "negated"])
    nodes = [node("Mul", ["x", "cos"], ["by_cos"]),
             node("Slice", ["x", "zero", "half", "last", "one"], ["first"]),
             node("Slice", ["x", "half", "end", "last", "one"], ["second"]), node("Neg", [negated], ["negated"]),
             node("Concat", halves, ["turned"], axis=-1), node("Mul", ["turned", "sin"], ["by_sin"]),
             node("Add", ["by_sin", "by_cos"], ["y"])]
    angles = np.arange(12, dtype=np.float32).reshape(1, 1, 3, 4)
    constants = {"cos": np.cos(angles), "sin": np.sin(angles), "zero": np.array([0]), "half": np.array([2]),
                 "end": np.array([2 ** 63 - 1]), "last": np.array([3]), "one": np.array([1])}
    types, done, consumed, _ = run([rotary_pass.RULE], nodes, constants)
    if turn == "other_way":
        assert types == [n.op_type for n in nodes]
        return
    assert types == [rotary_pass.OP_TYPE] and done[0].input == ["x"] and done[0].axes == (3, -1)
    np.testing.assert_array_equal(done[0].sin, constants["sin"])
    assert consumed == set(constants)


def test_groupnorm_spelled_out_is_one_group_normalization():
    nodes = [node("Reshape", ["x", "grouped_shape"], ["g"]),
             node("InstanceNormalization", ["g", "ones", "zeros"], ["n"], epsilon=1e-5),
             node("Reshape", ["n", "back_shape"], ["restored"]), node("Mul", ["restored", "scale"], ["y"])]
    constants = {"grouped_shape": np.array([0, 2, -1], np.int64), "ones": np.ones(2, np.float32),
                 "zeros": np.zeros(2, np.float32), "back_shape": np.array([0, 6, 4, 5], np.int64),
                 "scale": np.arange(6, dtype=np.float32).reshape(6, 1, 1)}
    types, done, _, added = run([groupnorm_pass.RULE], nodes, constants)
    assert types == ["GroupNormalization"] and done[0].input == ["x", "y/scale", "y/bias"]
    assert np.array_equal(added["y/bias"], np.zeros(6, np.float32))


def adaptive_pool_nodes(indices):
    return [node("Transpose", ["x"], ["t"], perm=[2, 3, 0, 1]), node("GatherND", ["t", "indices"], ["g"]),
            node("Transpose", ["g"], ["back"], perm=[4, 5, 0, 1, 2, 3]),
            node("ReduceMean", ["back", "axes"], ["y"], keepdims=0)], \
        {"indices": indices, "axes": np.array([3, 5], np.int64)}


def bins(size, bins_, width):
    starts = [math.floor(i * size / bins_) for i in range(bins_)]
    return np.array([range(start, start + width) for start in starts], np.int64)


@pytest.mark.parametrize("zero,shape", [(0, [1, 3, 1]), (1, [1, 3, 1]), (0, [2, 3, 1])], ids=["mask", "other-value",
                                                                                         "other-shape"])
def test_a_padding_mask_is_one_padding_mask(zero, shape):
    """Expand(Unsqueeze(Not(Equal(mask, 0)), [1]), [1, T, 1]): (N, S) ids to (N, T, S); a comparison with another
    value, or another shape, stays as it is."""
    nodes = [node("Equal", ["x", "zero"], ["padding"]), node("Not", ["padding"], ["tokens"]),
             node("Unsqueeze", ["tokens", "axis"], ["row"]), node("Expand", ["row", "shape"], ["y"])]
    constants = {"zero": np.array(zero, np.int64), "axis": np.array([1], np.int64),
                 "shape": np.array(shape, np.int64)}
    types, done, consumed, _ = run([padding_mask_pass.RULE], nodes, constants)
    if zero == 0 and shape == [1, 3, 1]:
        assert types == ["(lifted)"] and [(n.op, n.attrs) for n in done[0].nodes] == [("padding_mask", {"steps": 3})]
        assert done[0].input == ["x"] and done[0].output == ["y"] and consumed == set(constants)
    else:
        assert types == ["Equal", "Not", "Unsqueeze", "Expand"]


@pytest.mark.parametrize("per_sample", [True, False])
def test_constant_rows_embedded_over_the_batch_are_one_constant_added(per_sample):
    """Add(x, Gather(table, Expand(ids (1, 3), [Shape(x)[0], 3]))): the (1, 3, 4) rows of the table, added; the
    shape arithmetic goes with them. Expanded to anything but one copy per sample, it stays."""
    nodes = [node("Shape", ["x"], ["shape"]), node("Gather", ["shape", "zero"], ["n"], axis=0),
             node("Unsqueeze", ["n", "axis"], ["n1"]), node("Concat", ["n1", "steps"], ["target"], axis=0),
             node("Expand", ["ids", "target" if per_sample else "fixed"], ["expanded"]),
             node("Gather", ["table", "expanded"], ["rows"], axis=0), node("Add", ["x", "rows"], ["y"])]
    table = np.arange(12, dtype=np.float32).reshape(3, 4)
    constants = {"zero": np.array(0, np.int64), "axis": np.array([0], np.int64), "steps": np.array([3], np.int64),
                 "ids": np.array([[0, 2, 1]], np.int64), "table": table, "fixed": np.array([5, 3], np.int64)}
    sizes = {"x": (BATCH, 3, 4), "expanded": (BATCH, 3) if per_sample else (5, 3)}
    types, done, consumed, made = run([token_rows_pass.rule(sizes)], nodes, constants)
    if not per_sample:
        assert "Expand" in types
        return
    assert types == ["Add"] and done[0].input == ["x", "rows/rows"]
    np.testing.assert_array_equal(made["rows/rows"], table[[[0, 2, 1]]])
    assert {"ids", "table"} <= consumed


@pytest.mark.parametrize("back", [[-1, 3, 5], [2, 3, 5], [-1, 5, 3]], ids=["free-batch", "fixed-batch", "other"])
def test_a_gemm_between_reshapes_of_a_sequence_is_one_dense(back):
    """Reshape(x (N, 3, 4), [-1, 4]), Gemm(B (4, 5), C), Reshape back to (N, 3, 5): MatMul(x, B) + C. Reshaped to
    anything else, it stays."""
    nodes = [node("Reshape", ["x", "merged"], ["flat"]), node("Gemm", ["flat", "B", "C"], ["mm"], beta=2.0),
             node("Reshape", ["mm", "back"], ["y"])]
    kernel = np.arange(20, dtype=np.float32).reshape(4, 5)
    constants = {"merged": np.array([-1, 4], np.int64), "back": np.array(back, np.int64), "B": kernel,
                 "C": np.ones(5, np.float32)}
    types, done, consumed, made = run([flattened_dense_pass.rule({"x": (BATCH, 3, 4)})], nodes, constants)
    if back == [-1, 5, 3]:
        assert types == ["Reshape", "Gemm", "Reshape"]
        return
    assert types == ["MatMul", "Add"] and done[0].input[0] == "x" and done[-1].output == ["y"]
    np.testing.assert_array_equal(made["mm/kernel"], kernel)
    np.testing.assert_array_equal(made["mm/bias"], 2 * np.ones(5, np.float32))
    assert consumed == set(constants)


@pytest.mark.parametrize("test", ["Cast", "Greater"])
def test_a_mask_built_from_an_input_and_added_to_scores_is_a_padding_mask(test):
    """Add(scores, Where(Unsqueeze(Cast(mask, bool)), 0, -inf)): evaluated for every 0/1 row (and others), it is
    ``mask != 0`` for each key, so wconv's spelling (read by the padding-mask and attention rules). ``mask > 0`` is
    the same on 0/1 rows, not on others: left as it is."""
    built = [node("Cast", ["m"], ["keep"], to=9)] if test == "Cast" else \
        [node("Greater", ["m", "zero_i"], ["keep"])]
    nodes = [*built, node("Unsqueeze", ["keep", "axes"], ["keep4"]), node("Expand", ["keep4", "shape"], ["mask"]),
             node("Where", ["mask", "zero", "hidden"], ["bias"]), node("Add", ["scores", "bias"], ["y"])]
    constants = {"axes": np.array([1, 2], np.int64), "shape": np.array([1, 1, 4, 1], np.int64),
                 "zero": scalar(0.0), "hidden": scalar(-np.inf), "zero_i": np.array(0, np.int64)}
    inputs = {"m": ((None, 5), np.dtype(np.int64)), "scores": ((None, 2, 4, 5), np.dtype(np.float32))}
    types, done, _, made = run([padding_mask_probe.rule(inputs)], nodes, constants, inputs=("m", "scores"))
    if test == "Greater":
        assert types == [*[n.op_type for n in built], "Unsqueeze", "Expand", "Where", "Add"]
        return
    assert types == ["Equal", "Not", "Unsqueeze", "Expand", "Unsqueeze", "Where"]
    assert done[0].input[0] == "m" and done[-1].input[1:] == ["scores", "hidden"] and done[-1].output == ["y"]
    assert list(made["y/padding.shape"]) == [1, 4, 1]


@pytest.mark.parametrize("mask", ["causal", "upper"])
def test_a_mask_built_from_an_inputs_size_alone_that_is_causal_is_wconvs_causal_mask(mask):
    """dynamo's export of GPT-2 at a free batch: the mask built from the ids' size alone (Range of the steps,
    LessOrEqual, expanded over the batch), added to the scores as Where(mask, 0, -inf). Evaluated on probe rows, it
    is the causal mask whatever the ids: wconv's causal spelling, which the attention rule reads. The mask above
    the diagonal instead is not causal: left as it is."""
    compare = ["columns", "rows"] if mask == "causal" else ["rows", "columns"]
    nodes = [node("Shape", ["ids"], ["size"]), node("Gather", ["size", "one_i"], ["steps"], axis=0),
             node("Range", ["zero_i", "steps", "one_i"], ["positions"]),
             node("Unsqueeze", ["positions", "axis0"], ["columns"]), node("Unsqueeze", ["positions", "axis1"], ["rows"]),
             node("LessOrEqual", compare, ["square"]), node("Gather", ["size", "zero_i"], ["batch"], axis=0),
             node("Unsqueeze", ["batch", "axis0"], ["batch1"]), node("Concat", ["batch1", "ones"], ["shape"], axis=0),
             node("Expand", ["square", "shape"], ["keep"]), node("Where", ["keep", "zero", "hidden"], ["bias"]),
             node("Add", ["scores", "bias"], ["y"])]
    constants = {"zero_i": np.array(0, np.int64), "one_i": np.array(1, np.int64), "axis0": np.array([0], np.int64),
                 "axis1": np.array([1], np.int64), "ones": np.array([1, 1, 1], np.int64), "zero": scalar(0.0),
                 "hidden": scalar(-np.inf)}
    inputs = {"ids": ((None, 5), np.dtype(np.int64)), "scores": ((None, 2, 5, 5), np.dtype(np.float32))}
    types, done, _, _ = run([padding_mask_probe.rule(inputs)], nodes, constants, inputs=("ids", "scores"))
    if mask == "upper":
        assert types == [n.op_type for n in nodes]
        return
    assert types == ["Shape", "Expand", "Trilu", "Cast", "Where"] and done[-1].input[1:] == ["scores", "hidden"]


@pytest.mark.parametrize("count", ["tokens", "everything"])
def test_positions_counted_from_an_input_are_one_op(count):
    """Gather(table, CumSum(Cast(Not(Equal(ids, 1)))) * that + 1), torch.onnx's RoBERTa positions: evaluated on the
    probe rows, it is the token_positions op, padding 1; counting every step (no Mul by the tokens) is not."""
    counted = ["counts", "tokens64"] if count == "tokens" else ["counts", "one_i"]
    nodes = [node("Equal", ["ids", "pad"], ["padding"]), node("Not", ["padding"], ["tokens"]),
             node("Cast", ["tokens"], ["tokens64"], to=7), node("CumSum", ["tokens64", "axis"], ["counts"]),
             node("Mul", counted, ["kept"]), node("Add", ["kept", "pad"], ["positions"]),
             node("Gather", ["table", "positions"], ["y"], axis=0)]
    constants = {"pad": np.array(1, np.int64), "axis": np.array(1, np.int64), "one_i": np.array(1, np.int64),
                 "table": np.arange(36, dtype=np.float32).reshape(12, 3)}
    inputs = {"ids": ((None, 5), np.dtype(np.int64))}
    types, done, _, _ = run([token_positions_probe.rule(inputs)], nodes, constants, inputs=("ids",))
    if count == "everything":
        assert types == [n.op_type for n in nodes]
        return
    assert types == ["(lifted)", "Gather"] and done[0].input == ["ids"] and done[0].output == ["positions"]
    assert [(n.op, n.attrs["padding"]) for n in done[0].nodes] == [("token_positions", 1)]


def test_a_gather_from_one_value_is_that_value_in_the_index_shape():
    """GatherElements from a buffer of zeros (RoBERTa's token types) by a computed index: Expand(0, Shape(index)),
    which shape folding makes a constant where the index's size is known."""
    nodes = [node("GatherElements", ["zeros", "index"], ["y"], axis=1)]
    remaining, constants, consumed = constants_pass.fold(nodes, {"zeros": np.zeros((1, 9), np.int64)})
    assert [n.op_type for n in remaining] == ["Shape", "Expand"] and remaining[1].output == ["y"]
    assert constants[remaining[1].input[0]] == 0 and consumed == {"zeros"}
    ones = constants_pass.fold(nodes, {"zeros": np.arange(9, dtype=np.int64).reshape(1, 9)})[0]
    assert [n.op_type for n in ones] == ["GatherElements"]  # other values: read by the index, left as it is


def test_a_decomposed_adaptive_pool_is_lifted_into_the_pool_it_is():
    """(N, 3, 4, 6) to (2, 3): torch's bins are windows of 2 x 2, a plain average pool."""
    rows, columns = bins(4, 2, 2), bins(6, 3, 2)
    indices = np.stack(np.broadcast_arrays(rows[:, :, None, None], columns[None, None, :, :]), axis=-1)
    nodes, constants = adaptive_pool_nodes(indices)
    rule = adaptive_pool_pass.rule({"x": ("batch", 3, 4, 6)})
    types, done, consumed, _ = run([rule], nodes, constants)
    assert types == ["(lifted)"] and [n.op for n in done[0].nodes] == ["avg_pool2d"]
    assert done[0].input == ["x"] and done[0].output == ["y"] and consumed == {"indices", "axes"}
    reversed_rows = np.stack(np.broadcast_arrays(rows[::-1, :, None, None], columns[None, None, :, :]), axis=-1)
    nodes, constants = adaptive_pool_nodes(reversed_rows)  # not torch's bins: left as it is, to be refused
    assert run([rule], nodes, constants)[0] == ["Transpose", "GatherND", "Transpose", "ReduceMean"]


@pytest.mark.parametrize("same_rows", [True, False])
def test_class_tokens_before_a_sequence_are_lifted_into_one_node(same_rows):
    """A fixed-batch export: Concat(axis=1) of a (2, 1, 4) constant, the same row for every sample, and x."""
    tokens = np.random.default_rng(0).standard_normal((1, 1, 4)).astype(np.float32).repeat(2, axis=0)
    if not same_rows:
        tokens[1] += 1.0  # another row per sample: not class tokens
    nodes = [node("Concat", ["tokens", "x"], ["y"], axis=1)]
    types, done, consumed, _ = run([tokens_pass.rule({"x": (2, 5, 4)})], nodes, {"tokens": tokens})
    if not same_rows:
        assert types == ["Concat"]
        return
    assert types == ["(lifted)"] and done[0].nodes[0].op == "class_tokens" and consumed == {"tokens"}
    assert np.array_equal(done[0].nodes[0].params["tokens"], tokens[0])


@pytest.mark.parametrize("identity", [True, False])
def test_a_flat_gather_that_puts_every_element_back_is_the_identity(identity):
    index = np.arange(24, dtype=np.int64).reshape(2, 3, 4)
    nodes = [node("Reshape", ["x", "flat_shape"], ["flat"]), node("Gather", ["flat", "index"], ["y"], axis=0)]
    constants = {"flat_shape": np.array([-1], np.int64), "index": index if identity else index[:, ::-1]}
    types, done, consumed, _ = run([strided_pass.rule({"x": (2, 3, 4)})], nodes, constants)
    assert types == (["Identity"] if identity else ["Reshape", "Gather"])
    if identity:
        assert done[0].input == ["x"] and consumed == {"flat_shape", "index"}


def test_a_transpose_moves_above_the_arithmetic_with_constants_before_it():
    """tf2onnx's NHWC preprocessing: (x * scale + shift) then Transpose to NCHW. The Transpose moves above both
    (the rule repeats), each constant transposed with it to (1, C, 1, 1)."""
    scale, shift = np.arange(1, 4, dtype=np.float32), np.arange(3, dtype=np.float32)
    nodes = [node("Mul", ["x", "scale"], ["scaled"]), node("Add", ["scaled", "shift"], ["shifted"]),
             node("Transpose", ["shifted"], ["y"], perm=[0, 3, 1, 2])]
    types, done, consumed, constants = run([transpose_pass.RULE], nodes, {"scale": scale, "shift": shift})
    assert types == ["Transpose", "Mul", "Add"] and done[0].input == ["x"] and done[-1].output == ["y"]
    assert consumed == {"scale", "shift"}
    assert constants[done[1].input[1]].shape == (1, 3, 1, 1)
    assert np.array_equal(constants[done[2].input[1]].ravel(), shift)


def lstm_graph(hidden=3, features=4, initial_h=None):
    """x (N, T, F) -> Transpose to time-major -> LSTM -> Squeeze the direction axis -> Transpose to batch-first."""
    rng = np.random.default_rng(0)
    constants = {"W": rng.standard_normal((1, 4 * hidden, features)).astype(np.float32),
                 "R": rng.standard_normal((1, 4 * hidden, hidden)).astype(np.float32),
                 "B": rng.standard_normal((1, 8 * hidden)).astype(np.float32), "axis1": np.array([1], np.int64)}
    inputs = ["xt", "W", "R", "B"]
    if initial_h is not None:
        constants["h0"] = initial_h
        inputs += ["", "h0"]
    nodes = [node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
             helper.make_node("LSTM", inputs, ["Y"], name="lstm", hidden_size=hidden),
             node("Squeeze", ["Y", "axis1"], ["seq"]), node("Transpose", ["seq"], ["y"], perm=[1, 0, 2])]
    return nodes, constants


def test_a_recurrent_op_in_batch_first_form_is_lifted_with_its_plumbing():
    nodes, constants = lstm_graph()
    types, done, consumed, _ = run([recurrent_pass.BATCH_FIRST], nodes, constants)
    assert types == ["(lifted)"] and [n.op for n in done[0].nodes] == ["lstm"]
    assert done[0].input == ["x"] and done[0].output == ["y"] and consumed == {"W", "R", "B", "axis1"}
    assert done[0].nodes[0].attrs["returns"] == "sequence"
    read_twice = run([recurrent_pass.BATCH_FIRST], nodes, constants, outputs=("y", "Y"))[0]
    assert read_twice == ["Transpose", "LSTM", "Squeeze", "Transpose"]  # Y read outside: left, to be refused


def test_zero_initial_states_are_no_initial_states():
    nodes, constants = lstm_graph(initial_h=np.zeros((1, 2, 3), np.float32))
    _, done, consumed, _ = run([recurrent_pass.ZERO_STATES], nodes, constants)
    assert list(done[1].input) == ["xt", "W", "R", "B", "", ""] and consumed == {"h0"}
    nodes, constants = lstm_graph(initial_h=np.ones((1, 2, 3), np.float32))
    assert list(run([recurrent_pass.ZERO_STATES], nodes, constants)[1][1].input)[-1] == "h0"


def test_plumbing_nothing_reads_goes_only_beside_recurrent_ops():
    nodes, constants = lstm_graph()
    dangling = [*nodes, node("Shape", ["x"], ["size"]), node("Gather", ["size", "axis1"], ["width"])]
    assert run([recurrent_pass.DEAD_PLUMBING], dangling, constants)[0] == ["Transpose", "LSTM", "Squeeze",
                                                                           "Transpose"]
    plain = [node("Relu", ["x"], ["y"]), node("Shape", ["x"], ["size"])]
    assert run([recurrent_pass.DEAD_PLUMBING], plain, {})[0] == ["Relu", "Shape"]


# -- the driver ----------------------------------------------------------------------------------------------
def test_a_match_whose_inner_value_is_read_outside_it_is_refused():
    """``e`` also feeds another node: replacing the chain would leave that node reading nothing."""
    nodes = [*SOFTMAX, node("Relu", ["e"], ["leak"])]
    types, *_ = run([softmax_pass.RULE], nodes, AXES, outputs=("y", "leak"))
    assert types == [n.op_type for n in nodes]


def test_an_inner_value_that_is_a_graph_output_is_refused():
    types, *_ = run([softmax_pass.RULE], SOFTMAX, AXES, outputs=("y", "e"))
    assert "Softmax" not in types


def test_overlapping_matches_of_one_rule_are_refused():
    """A rule claiming a node another match of it already holds: the first match stands, the second is dropped."""
    nodes = [node("Relu", ["x"], ["a"]), node("Neg", ["a"], ["b"]), node("Neg", ["b"], ["y"])]

    def pair(view, anchor):  # the anchor and the node before it
        before = view.producer.get(anchor.input[0])
        return None if before is None else rewrite.Match([before, anchor], [node("Abs", list(before.input),
                                                                                 list(anchor.output))])

    types, *_ = run([rewrite.Rule("pairs", ("Neg",), pair)], nodes, {})
    assert types == ["Abs", "Neg"]


def test_nodes_that_fed_a_match_alone_go_with_it():
    """Shape arithmetic sizing what a match replaces is dropped once nothing reads it, and only then."""
    feeder = node("Shape", ["x"], ["size"])
    nodes = [feeder, node("Add", ["x", "size"], ["a"]), node("Neg", ["a"], ["y"])]

    def pair(view, anchor):
        before = view.producer[anchor.input[0]]
        return rewrite.Match([before, anchor], [node("Identity", ["x"], ["y"])], feeding=[feeder])

    rule = rewrite.Rule("pairs", ("Neg",), pair)
    assert run([rule], nodes, {})[0] == ["Identity"]
    also_read = [*nodes, node("Identity", ["size"], ["kept"])]
    assert run([rule], also_read, {}, outputs=("y", "kept"))[0] == ["Shape", "Identity", "Identity"]


def test_a_replacement_goes_before_the_readers_of_what_it_gives():
    """A call unpacked twice, its first item read before the second is taken (a recurrent layer's sequence sliced
    before its final state is unpacked): the replacement goes where the call was, not after the match's last node,
    which would put it after a reader of its first value."""
    nodes = [node("Split", ["x"], ["parts"]), node("Gather", ["parts", "zero"], ["first"]),
             node("Neg", ["first"], ["y"]), node("Gather", ["parts", "one"], ["second"])]

    def call(view, anchor):
        unpacked = [user for user in view.consumers[anchor.output[0]]]
        return rewrite.Match([anchor, *unpacked], [node("Identity", ["x"], ["first"]), node("Abs", ["x"], ["second"])])

    types, done, _, _ = run([rewrite.Rule("call", ("Split",), call)], nodes, {"zero": np.array(0), "one": np.array(1)},
                            outputs=("y", "second"))
    assert types == ["Identity", "Abs", "Neg"]


def test_a_constant_other_nodes_still_read_is_not_consumed():
    nodes = [*SOFTMAX, node("ReduceMax", ["y", "axes"], ["z"], keepdims=1)]
    _, _, consumed, _ = run([softmax_pass.RULE], nodes, AXES, outputs=("z",))
    assert consumed == set()


def test_a_rule_that_breaks_the_graph_is_named():
    def dangling(view, anchor):
        return rewrite.Match([anchor], [node("Relu", ["nowhere"], list(anchor.output))])

    with pytest.raises(rewrite.RewriteBroken, match="rewrite rule 'dangling' broke the graph: .*'nowhere'") as error:
        run([rewrite.Rule("dangling", ("Neg",), dangling)], [node("Neg", ["x"], ["y"])], {})
    assert error.value.exit_code == 70


def test_what_was_wrong_before_any_rule_is_not_blamed_on_one():
    """A graph output made by no node (a front end refuses that by name): the rules run, and leave it."""
    types, *_ = run([softmax_pass.RULE], SOFTMAX, AXES, outputs=("y", "ghost"))
    assert types == ["Softmax"]
