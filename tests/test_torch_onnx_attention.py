"""Attention as torch.onnx writes it, read back into torch and Keras.

nn.TransformerEncoder and two chained nn.MultiheadAttention (self, then cross with kdim/vdim) are exported by
both exporters (TorchScript and dynamo), with a fixed and a free batch, and each file is converted and run against
the torch model. The exporters' spelling (q, k and v packed in one projection and unpacked with
Unsqueeze/Transpose/Squeeze/Gather, time-major (T, N*heads, d) reshapes computed from Shape, the scale split over
q and k, the transposes between two attentions dropped) is read by running its moves on element indices
(adapters/onnx/layout_trace.py). A file edited to compute something else is read as what it computes, or refused.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import converter
from conftest import assert_close, run_onnx, run_torch_model
from sequence_models import AttentionBlock, TransformerTagger, seeded, sequence, tokens
from test_sequences import SUFFIX, run_file

torch = pytest.importorskip("torch")

MODELS = {"encoder": (TransformerTagger, tokens), "chained": (AttentionBlock, sequence)}
EXPORTS = {"torchscript-fixed": (False, False), "torchscript-free": (False, True), "dynamo-fixed": (True, False),
           "dynamo-free": (True, True)}


def export(model, x, path, dynamo, free_batch):
    options = {}
    if free_batch:
        options = {"dynamic_shapes": ({0: torch.export.Dim("batch")},)} if dynamo else \
            {"dynamic_axes": {"x": {0: "batch"}}}
    torch.onnx.export(model, (torch.from_numpy(x),), path, dynamo=dynamo, opset_version=18 if dynamo else 17,
                      input_names=["x"], **options)


@pytest.mark.parametrize("exporter", list(EXPORTS))
@pytest.mark.parametrize("name", list(MODELS))
def test_torch_onnx_attention_reads_back(name, exporter, tmp_path, keras):
    cls, inputs = MODELS[name]
    dynamo, free_batch = EXPORTS[exporter]
    model = seeded(cls()).eval()
    export(model, inputs(), tmp_path / "a.onnx", dynamo, free_batch)
    assert [node.op for node in converter.read(tmp_path / "a.onnx").nodes].count("attention") == 2
    x = inputs(batch=5) if free_batch else inputs()  # a free batch stays free
    reference = run_torch_model(model, x)
    for target in ("torch", "keras"):
        out = tmp_path / f"port{SUFFIX[target]}"
        converter.convert(tmp_path / "a.onnx", out)
        assert_close(reference, run_file(target, out, x))


@pytest.fixture
def encoder_file(tmp_path):
    """The TorchScript export of the encoder classifier (fixed batch), and the first attention's nodes."""
    model = seeded(TransformerTagger()).eval()
    export(model, tokens(), tmp_path / "a.onnx", dynamo=False, free_batch=False)
    file = onnx.load(tmp_path / "a.onnx")
    scope = [node for node in file.graph.node if node.name.startswith("/encoder/layers.0/self_attn/")]
    return model, file, {op: [n for n in scope if n.op_type == op] for op in ("Gather", "Transpose", "Mul")}


def _save(file, tmp_path):
    onnx.checker.check_model(file)
    onnx.save(file, tmp_path / "edited.onnx")
    return tmp_path / "edited.onnx"


def test_keys_and_values_swapped_in_the_file_are_read_as_it_computes(encoder_file, tmp_path):
    """The Gathers that unpack k and v swapped: the file attends with the values' columns as keys. The port
    computes what the file computes (onnxruntime), which is not what the torch model computes."""
    model, file, nodes = encoder_file
    _, keys, values = nodes["Gather"][-3:]  # q, k, v from the packed projection
    keys.input[1], values.input[1] = values.input[1], keys.input[1]
    edited = _save(file, tmp_path)
    x = tokens()
    expected = run_onnx(edited, x)
    assert not np.allclose(expected, run_torch_model(model, x), atol=1e-3)
    converter.convert(edited, tmp_path / "port.pt")
    assert_close(expected, run_file("torch", tmp_path / "port.pt", x))


def test_a_scale_edited_in_the_file_is_read_as_it_computes(encoder_file, tmp_path):
    """The scores' factor edited (0.9 in place of one of the two factors torch.onnx splits 1/sqrt(d) into): the
    attention op keeps the scale the file computes with, and the port predicts as the file does."""
    _, file, nodes = encoder_file
    scale = nodes["Mul"][0]
    file.graph.initializer.append(onnx.numpy_helper.from_array(np.array([0.9], np.float32), "edited_scale"))
    scale.input[1] = "edited_scale"
    edited = _save(file, tmp_path)
    x = tokens()
    converter.convert(edited, tmp_path / "port.pt")
    assert_close(run_onnx(edited, x), run_file("torch", tmp_path / "port.pt", x))


def test_attention_that_is_not_the_ir_op_is_refused(encoder_file, tmp_path):
    """A valid file whose attention computes something the IR op does not (its heads joined in another order):
    refused (exit 3), nothing written."""
    model, file, nodes = encoder_file
    join = nodes["Transpose"][-2]  # (N, h, T, v) -> (T, N, h, v) before the output projection
    assert list(join.attribute[0].ints) == [2, 0, 1, 3]
    join.attribute[0].ints[:] = [2, 0, 3, 1]  # (T, N, v, h): the same size, the heads interleaved
    edited = _save(file, tmp_path)
    assert np.isfinite(run_onnx(edited, tokens())).all()  # the edited file runs
    with pytest.raises(converter.WconvError) as error:
        converter.convert(edited, tmp_path / "port.pt")
    assert error.value.exit_code == 3 and not (tmp_path / "port.pt").exists()