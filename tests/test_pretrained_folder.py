"""A save_pretrained folder's files are data: what the folder says is checked before anything is built, and a bad
folder is one line naming the file, exit 2 (3 for a config naming code of its own), no output."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from converter.cli import app

CONFIG = {"architectures": ["BertModel"], "model_type": "bert", "hidden_size": 8}


def folder(tmp_path, config=CONFIG, shards=None):
    """A folder as save_pretrained writes it: config.json, then one safetensors file or shards and their index."""
    from safetensors.numpy import save_file

    path = tmp_path / "model"
    path.mkdir()
    (path / "config.json").write_text(json.dumps(config))
    rng = np.random.default_rng(0)
    tensors = {"a.weight": rng.standard_normal((3, 5)).astype(np.float32),
               "b.weight": rng.standard_normal((5,)).astype(np.float32)}
    if shards is None:
        save_file(tensors, str(path / "model.safetensors"))
        return path
    for index, key in enumerate(tensors):
        save_file({key: tensors[key]}, str(path / f"model-{index + 1:05d}-of-00002.safetensors"))
    (path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": shards}))
    return path


def convert(source, tmp_path):
    result = CliRunner().invoke(app, ["torch-to-onnx", str(source), str(tmp_path / "out.onnx"),
                                      "--input-shape", "7"])
    assert not (tmp_path / "out.onnx").exists()
    return result.exit_code, result.output.strip()


def test_a_folder_without_config_is_not_a_model(tmp_path):
    (tmp_path / "model").mkdir()
    code, message = convert(tmp_path / "model", tmp_path)
    assert code == 2 and "is a folder, not a model file" in message and "config.json" in message, message


@pytest.mark.parametrize("auto_map", [{"AutoModel": "modeling_evil.EvilModel"}, "modeling_evil.EvilModel\nsecond line"])
def test_a_config_naming_its_own_code_is_refused_before_anything_runs(auto_map, tmp_path):
    """auto_map points at Python in the folder (trust_remote_code): never imported, whatever its form."""
    path = folder(tmp_path, {**CONFIG, "auto_map": auto_map})
    (path / "modeling_evil.py").write_text("raise SystemExit('ran code from the folder')\n")
    code, message = convert(path, tmp_path)
    assert code == 3 and "names its own code (auto_map" in message and len(message.splitlines()) == 1, message


@pytest.mark.parametrize("name", ["../outside.safetensors", "/etc/passwd", "sub/model-00001-of-00002.safetensors"])
def test_an_index_naming_a_file_outside_the_folder_is_refused(name, tmp_path):
    (tmp_path / "outside.safetensors").write_bytes(b"")
    path = folder(tmp_path, shards={"a.weight": "model-00001-of-00002.safetensors", "b.weight": name})
    code, message = convert(path, tmp_path)
    assert code == 2 and f"names shard '{name}', which is not a file in" in message, message


def test_an_index_that_disagrees_with_its_shards_is_refused(tmp_path):
    path = folder(tmp_path, shards={"a.weight": "model-00002-of-00002.safetensors",
                                    "b.weight": "model-00001-of-00002.safetensors", "c.weight": "model-00001-of-00002.safetensors"})
    code, message = convert(path, tmp_path)
    assert code == 2 and "disagrees with its shards" in message and "'a.weight'" in message and \
        "'c.weight'" in message, message


@pytest.mark.parametrize("text", ["{not json", "[1, 2]"])
def test_a_config_that_is_not_a_json_object_is_refused(text, tmp_path):
    path = folder(tmp_path)
    (path / "config.json").write_text(text)
    code, message = convert(path, tmp_path)
    assert code == 2 and "config.json" in message, message


def test_a_folder_without_weights_is_refused(tmp_path):
    path = folder(tmp_path)
    (path / "model.safetensors").unlink()
    code, message = convert(path, tmp_path)
    assert code == 2 and "none is there" in message, message
