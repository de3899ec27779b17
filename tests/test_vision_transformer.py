"""A vision transformer's class tokens, position table and token read-out, in every framework: a DeiT-style model
(two tokens) from torch into Keras and ONNX and back, judged by torch's own predictions; and the look-alikes that
are something else, refused by name (exit 3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import converter
import torch_convnets
from conftest import RUNNERS, TARGET_SUFFIX, assert_close, run_onnx, run_torch_model
from torch_idioms import PatchTransformer


def _model_and_input():
    model = torch_convnets.seeded(PatchTransformer(), seed=4).eval()
    x = np.random.default_rng(6).standard_normal((3, *PatchTransformer.input_shape)).astype(np.float32)
    return model, x


@pytest.mark.parametrize("first, second", [("keras", "torch"), ("keras", "onnx"), ("onnx", "keras"),
                                           ("onnx", "torch")])
def test_class_tokens_and_position_table_convert_both_ways(first, second, tmp_path):
    """torch -> first -> second: wconv's Keras layers (ClassTokens, PositionEmbedding, ops.Take) and the ONNX
    spelling (Expand + Concat, Add, Gather) are read back as what they compute."""
    model, x = _model_and_input()
    torch.save(model.state_dict(), tmp_path / "a.pt")
    middle, last = tmp_path / f"b{TARGET_SUFFIX[first]}", tmp_path / f"c{TARGET_SUFFIX[second]}"
    converter.convert(tmp_path / "a.pt", middle, module="torch_idioms:PatchTransformer",
                      input_shape=PatchTransformer.input_shape)
    converter.convert(middle, last)
    expected = run_torch_model(model, x)
    assert_close(expected, RUNNERS[first](middle, x), what=first)
    assert_close(expected, RUNNERS[second](last, x), what=f"{first} -> {second}")


def test_a_legacy_h5_cannot_hold_the_tokens(tmp_path):
    model, _ = _model_and_input()
    torch.save(model.state_dict(), tmp_path / "a.pt")
    with pytest.raises(converter.WconvError, match="'cls_token'.*need Keras 3") as error:
        converter.convert(tmp_path / "a.pt", tmp_path / "b.h5", module="torch_idioms:PatchTransformer",
                          input_shape=PatchTransformer.input_shape)
    assert error.value.exit_code == 3 and not (tmp_path / "b.h5").exists()


class BiasPerFeature(nn.Module):
    """A (1, 1, f) parameter added to a sequence: the same row for every step, not a position table."""

    input_shape = (5, 6)

    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.randn(1, 1, 6))
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        return self.head(x + self.bias)


def test_a_parameter_added_that_is_not_one_row_per_step_is_refused(tmp_path):
    with pytest.raises(converter.WconvError, match="only a \\(1, steps, features\\) table") as error:
        torch.save(BiasPerFeature().state_dict(), tmp_path / "a.pt")
        converter.convert(tmp_path / "a.pt", tmp_path / "b.onnx", module="test_vision_transformer:BiasPerFeature",
                          input_shape=BiasPerFeature.input_shape)
    assert error.value.exit_code == 3 and not (tmp_path / "b.onnx").exists()


def _onnx_concat(path, tokens, target=None):
    """Concat(tokens, x) on axis 1, x of shape (2, 3, 4); with ``target``, Concat(Expand(tokens, target), x)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    steps = 3 + int(np.broadcast_shapes(tokens.shape, tuple(target or tokens.shape))[1])
    expand = [helper.make_node("Expand", ["token", "target"], ["tokens"])] if target else []
    constants = [numpy_helper.from_array(tokens, "token" if target else "tokens")]
    constants += [numpy_helper.from_array(np.array(target, np.int64), "target")] if target else []
    graph = helper.make_graph(
        [*expand, helper.make_node("Concat", ["tokens", "x"], ["y"], axis=1)], "tokens",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, steps, 4])], constants)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


@pytest.mark.parametrize("target", [[2, 1, 1], [2, 2, 1], [2, 1, 4]])
def test_an_expanded_constant_before_a_sequence_is_class_tokens(target, tmp_path):
    """The rows each sample gets, as the file computes them: [2, 2, 1] repeats the token along the steps too."""
    tokens = np.random.default_rng(0).standard_normal((1, 1, 4)).astype(np.float32)
    _onnx_concat(tmp_path / "m.onnx", tokens, target)
    x = np.random.default_rng(1).standard_normal((2, 3, 4)).astype(np.float32)
    converter.convert(tmp_path / "m.onnx", tmp_path / "m.pt")
    assert_close(run_onnx(tmp_path / "m.onnx", x), RUNNERS["torch"](tmp_path / "m.pt", x))


def test_a_constant_that_differs_per_sample_is_not_class_tokens(tmp_path):
    """A (2, 1, 4) constant with different rows for the two samples of the file's batch: tokens per sample are
    not what it computes, so it is refused (exit 3), never read as the first sample's row for all."""
    tokens = np.random.default_rng(0).standard_normal((2, 1, 4)).astype(np.float32)
    _onnx_concat(tmp_path / "m.onnx", tokens)
    with pytest.raises(converter.WconvError, match="Concat 'y' with the constant \\['tokens'\\]") as error:
        converter.convert(tmp_path / "m.onnx", tmp_path / "m.pt")
    assert error.value.exit_code == 3 and not (tmp_path / "m.pt").exists()

