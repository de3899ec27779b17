"""ONNX files as torch.onnx writes them, read back into torch and Keras: the TorchScript exporter and the dynamo
exporter (which stores the weights beside the model, as external data), with a static and a dynamic batch."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest
import torch

import converter
import torch_convnets
import torch_idioms
from conftest import RUNNERS, TARGET_SUFFIX, assert_close, run_onnx, run_torch_model

EXPORTS = ["torchscript-static", "torchscript-dynamic", "dynamo-static", "dynamo-dynamic"]


def export(model, x, path, how):
    """torch.onnx.export, as a user calls it (the dynamo exporter's default: weights in ``<path>.data``)."""
    names = {"input_names": ["x"], "output_names": ["y"]}
    dynamic = how.endswith("dynamic")
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        if how.startswith("torchscript"):
            torch.onnx.export(model, (x,), path, dynamo=False, opset_version=17, **names,
                              **({"dynamic_axes": {"x": {0: "n"}, "y": {0: "n"}}} if dynamic else {}))
        else:
            pytest.importorskip("onnxscript")
            torch.onnx.export(model, (x,), path, dynamo=True, external_data=True, **names,
                              **({"dynamic_shapes": ({0: torch.export.Dim("n", min=2)},)} if dynamic else {}))


@pytest.mark.parametrize("target", ["torch", "keras"])
@pytest.mark.parametrize("how", EXPORTS)
@pytest.mark.parametrize("name", ["ConvBnPool", "DepthwiseGlobal", "ChannelShuffle", "ChannelsLastHead",
                                  "PatchTransformer"])
def test_torch_onnx_exports_read_back(name, how, target, tmp_path):
    """ChannelShuffle: its reshape targets are Shape arithmetic in the file (shape_pass.py), its chunk Slices.
    ChannelsLastHead: the dynamo exporter's as_strided, a flat Reshape and a Gather (strided_pass.py).
    PatchTransformer: class tokens as an Expand (its target computed with Where/Equal by TorchScript) into a Concat
    (tokens_pass.py), a position table added, attention, ``x[:, 0]`` as a Gather."""
    cls = getattr(torch_convnets, name, None) or getattr(torch_idioms, name)
    model = torch_convnets.seeded(cls(), seed=2)
    x = np.random.default_rng(5).standard_normal((3, *cls.input_shape)).astype(np.float32)
    export(model, torch.from_numpy(x), tmp_path / "model.onnx", how)
    out = tmp_path / f"port{TARGET_SUFFIX[target]}"
    converter.convert(tmp_path / "model.onnx", out)
    assert_close(run_torch_model(model, x), RUNNERS[target](out, x))


@pytest.mark.parametrize("target", ["torch", "keras"])
@pytest.mark.parametrize("how", ["dynamo-static", "dynamo-dynamic"])
def test_the_dynamo_exporters_adaptive_pool_reads_back(how, target, tmp_path):
    """AlexNet's AdaptiveAvgPool2d((6, 6)) on small maps, which the dynamo exporter writes as a GatherND of the bins
    and a ReduceMean (adaptive_pool_pass.py). The TorchScript exporter refuses these sizes itself."""
    model = torch_convnets.seeded(torch_idioms.AdaptivePools(), seed=2)
    x = np.random.default_rng(5).standard_normal((3, *torch_idioms.AdaptivePools.input_shape)).astype(np.float32)
    export(model, torch.from_numpy(x), tmp_path / "model.onnx", how)
    out = tmp_path / f"port{TARGET_SUFFIX[target]}"
    converter.convert(tmp_path / "model.onnx", out)
    assert_close(run_torch_model(model, x), RUNNERS[target](out, x))


def test_a_gather_that_is_not_the_bins_is_refused(tmp_path):
    """The same export with the bins' indices reversed: a GatherND that computes something else, refused by name
    (exit 3), never read as the pool."""
    import onnx
    from onnx import numpy_helper

    model = torch_convnets.seeded(torch_idioms.AdaptivePools(), seed=2)
    x = np.random.default_rng(5).standard_normal((3, *torch_idioms.AdaptivePools.input_shape)).astype(np.float32)
    export(model, torch.from_numpy(x), tmp_path / "model.onnx", "dynamo-static")
    edited = onnx.load(tmp_path / "model.onnx")  # its weights read back in from model.onnx.data
    gather = next(node for node in edited.graph.node if node.op_type == "GatherND")
    tensor = next(t for t in edited.graph.initializer if t.name == gather.input[1])
    tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor)[::-1].copy(), tensor.name))
    onnx.save(edited, tmp_path / "edited.onnx")
    with pytest.raises(converter.WconvError, match="GatherND") as error:
        converter.convert(tmp_path / "edited.onnx", tmp_path / "port.pt")
    assert error.value.exit_code == 3 and not (tmp_path / "port.pt").exists()


@pytest.mark.parametrize("indices", ["identity", "reversed"])
def test_a_flat_gather_is_the_identity_only_where_it_puts_every_element_back(indices, tmp_path):
    """Reshape [-1] then Gather: read as the identity for indices 0..n-1 in the input's shape; any other order
    (a file computing something else) is refused by name, never read as the identity."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    order = np.arange(2 * 5 * 3 * 4).reshape(2, 5, 3, 4)
    order = order if indices == "identity" else order[:, ::-1].copy()
    weight = np.random.default_rng(0).standard_normal((6, 5, 1, 1)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "flat"], ["f"]), helper.make_node("Gather", ["f", "order"], ["g"], axis=0),
         helper.make_node("Conv", ["g", "w"], ["y"])], "strided",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 5, 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 6, 3, 4])],
        [numpy_helper.from_array(np.array([-1], np.int64), "flat"), numpy_helper.from_array(order, "order"),
         numpy_helper.from_array(weight, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "m.onnx")
    if indices == "reversed":
        with pytest.raises(converter.WconvError, match="Reshape 'f'") as error:
            converter.convert(tmp_path / "m.onnx", tmp_path / "m.pt")
        assert error.value.exit_code == 3 and not (tmp_path / "m.pt").exists()
        return
    converter.convert(tmp_path / "m.onnx", tmp_path / "m.pt")
    x = np.random.default_rng(1).standard_normal((2, 5, 3, 4)).astype(np.float32)
    assert_close(run_onnx(tmp_path / "m.onnx", x), RUNNERS["torch"](tmp_path / "m.pt", x))
