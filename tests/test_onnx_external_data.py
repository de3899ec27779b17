"""ONNX output past what one file holds: a model is one protobuf message, which cannot be serialized at 2 GiB or
more, so past INLINE_LIMIT bytes of weights (or with --external-data) the weights go to ``<name>.onnx.data``
beside the model, as ONNX's external data. Tested on small models: with the flag, and with the limit lowered
(the 2.45 GB and larger models are run by benchmarks/, not here)."""

from __future__ import annotations

import numpy as np
import pytest

import converter
from conftest import RUNNERS, assert_close, run_keras_model
from converter.adapters.onnx import writer
from models import batch, keras_mlp
from test_bad_input import assert_clean_failure, wconv


@pytest.fixture
def source(tmp_path, keras):
    model = keras_mlp(keras, (7, 600, 3), seed=2)  # a (7, 600) kernel: 16.8 KB, past EXTERNAL_MIN
    model.save(tmp_path / "mlp.keras")
    return model, tmp_path / "mlp.keras"


def _check_port(model, port):
    import onnx

    stored = onnx.load(port, load_external_data=False)
    external = [t.name for t in stored.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert external and all(len(t.raw_data) < writer.EXTERNAL_MIN for t in stored.graph.initializer
                            if t.name not in external)
    assert all({e.key: e.value for e in t.external_data}["location"] == f"{port.name}.data"
               for t in stored.graph.initializer if t.name in external)
    x = batch(7)
    assert_close(run_keras_model(model, x), RUNNERS["onnx"](port, x))  # onnxruntime finds the data by its name
    assert converter.read(port).parameter_count() == sum(int(np.prod(w.shape)) for w in model.weights)


def test_external_data_on_request(source, tmp_path):
    model, path = source
    result = wconv("keras-to-onnx", path, tmp_path / "port.onnx", "--external-data")
    assert result.returncode == 0, result.stderr
    assert "port.onnx.data" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlp.keras", "port.onnx", "port.onnx.data"]
    _check_port(model, tmp_path / "port.onnx")
    report = converter.validate(path, tmp_path / "port.onnx")  # wconv reads it back under its rules
    assert report.ok


def test_external_data_past_the_limit_without_asking(source, tmp_path, monkeypatch):
    """Written and validated past the limit: validate runs such a model from its file (inlined, one past 2 GiB
    would not serialize), layer by layer through a probe saved beside it and removed."""
    model, path = source
    monkeypatch.setattr(writer, "INLINE_LIMIT", 10_000)  # what 2 GiB is to a real model
    outputs = converter.convert(path, tmp_path / "port.onnx").outputs
    assert [p.name for p in outputs] == ["port.onnx", "port.onnx.data"]
    _check_port(model, tmp_path / "port.onnx")
    report = converter.validate(path, tmp_path / "port.onnx")
    assert report.ok and len(report.layers) >= 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlp.keras", "port.onnx", "port.onnx.data"]


def test_an_existing_data_file_is_not_overwritten_without_force(source, tmp_path):
    _, path = source
    (tmp_path / "port.onnx.data").write_bytes(b"keep me")
    result = wconv("keras-to-onnx", path, tmp_path / "port.onnx", "--external-data")
    assert_clean_failure(result, 4, tmp_path / "port.onnx.data", "exists", "--force")
    assert (tmp_path / "port.onnx.data").read_bytes() == b"keep me" and not (tmp_path / "port.onnx").exists()
    assert wconv("keras-to-onnx", path, tmp_path / "port.onnx", "--external-data", "--force").returncode == 0
    assert (tmp_path / "port.onnx.data").stat().st_size > 16_000


def test_external_data_is_for_onnx_outputs(source, tmp_path):
    _, path = source
    result = wconv("keras-to-torch", path, tmp_path / "port.pt", "--external-data")
    assert_clean_failure(result, 2, tmp_path / "port.pt", "--external-data applies to ONNX outputs")
    assert not (tmp_path / "port.pt").exists()


def test_the_parsing_child_grows_by_the_datas_share_before_reading_it(source, tmp_path):
    """The limited child that parses a model gets memory for its external data (untrusted.grant) before any of it is
    read, not after (a 2.42 GB model's child was killed by its limit while reading): the reader tells the bytes the
    tensors declare, at most what the data file holds, while no tensor holds its bytes yet."""
    import onnx

    from converter.adapters.onnx import external_data

    converter.convert(source[1], tmp_path / "port.onnx", external_data=True)
    model = onnx.load(tmp_path / "port.onnx", load_external_data=False)
    told = []

    def before_reading(total):
        told.append((total, [len(t.raw_data) for t in model.graph.initializer if t.data_location == 1]))

    read = external_data.inline(model, tmp_path / "port.onnx", before_reading)
    data = (tmp_path / "port.onnx.data").stat().st_size
    assert len(told) == 1 and told[0][0] == read and 16_000 < read <= data and set(told[0][1]) == {0}
