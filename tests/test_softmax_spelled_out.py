"""Softmax and LogSoftmax as ONNX's function bodies spell them (ReduceMax, Sub, Exp, ReduceSum, Div or Log, Sub),
read back as the one op (adapters/onnx/softmax_pass.py), judged by onnxruntime on the file itself; and a look-alike
over two different axes, which is not a softmax, refused by name (exit 3). Sequences: every framework holds them
alike, so each port runs on the same (N, T, F) array."""

from __future__ import annotations

import numpy as np
import pytest

import converter
from conftest import TARGET_SUFFIX, assert_close, run_onnx
from test_sequences import run_file


def _spelled_out(path, kind: str, max_axis: int = 2, sum_axis: int = 2, shifted: bool = True):
    """MatMul (so the value is a layer's output) then the spelled-out op, on a (batch, 5, 3) sequence."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def reduce(op, source, output, axis):
        return helper.make_node(op, [source, f"axes_{axis}"], [output], keepdims=1)

    weight = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"])]
    start = "h"
    if shifted:
        nodes += [reduce("ReduceMax", "h", "peak", max_axis), helper.make_node("Sub", ["h", "peak"], ["d"])]
        start = "d"
    nodes += [helper.make_node("Exp", [start], ["e"]), reduce("ReduceSum", "e", "total", sum_axis)]
    if kind == "softmax":
        nodes.append(helper.make_node("Div", ["e", "total"], ["y"]))
    else:
        nodes += [helper.make_node("Log", ["total"], ["log"]), helper.make_node("Sub", [start, "log"], ["y"])]
    axes = [numpy_helper.from_array(np.array([axis], np.int64), f"axes_{axis}") for axis in {max_axis, sum_axis}]
    graph = helper.make_graph(nodes, kind, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 5, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 5, 3])],
                              [numpy_helper.from_array(weight, "w"), *axes])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)


@pytest.mark.parametrize("target", ["torch", "keras"])
@pytest.mark.parametrize("kind, shifted", [("softmax", True), ("log_softmax", True), ("softmax", False)])
def test_a_spelled_out_softmax_reads_as_one(kind, shifted, target, tmp_path):
    _spelled_out(tmp_path / "m.onnx", kind, shifted=shifted)
    out = tmp_path / f"m{TARGET_SUFFIX[target]}"
    converter.convert(tmp_path / "m.onnx", out)
    x = np.random.default_rng(1).standard_normal((3, 5, 4)).astype(np.float32) * 4
    assert_close(run_onnx(tmp_path / "m.onnx", x), run_file(target, out, x))


def test_a_max_and_a_sum_over_different_axes_are_not_a_softmax(tmp_path):
    _spelled_out(tmp_path / "m.onnx", "softmax", max_axis=1, sum_axis=2)
    with pytest.raises(converter.WconvError, match="ReduceMax 'peak'") as error:
        converter.convert(tmp_path / "m.onnx", tmp_path / "m.pt")
    assert error.value.exit_code == 3 and not (tmp_path / "m.pt").exists()
