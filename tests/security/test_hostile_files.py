"""Crafted files: nothing outside them is read, nothing unbounded runs, every one is refused cleanly.

Each case asserts the documented exit code, one clean stderr line naming the file, no output
written and the input unchanged. Time and memory are measured by benchmarks/hostile_files.py,
not asserted here; a hang would end in the subprocess timeout of ``wconv()``.
"""

from __future__ import annotations

import os
import zipfile

import numpy as np
import pytest

from hostile import keras_h5, onnx_loop, onnx_model, replace_dataset, torch_storage_claim
from test_bad_input import assert_clean_failure, digest, wconv

SECRET = b"root:x:0:0:secret-line-that-must-not-leak\n" * 8


def secret_file(folder):
    path = folder / "secret.bin"
    path.write_bytes(SECRET)
    return path


def refuse(source, folder, code, *words, command="keras-to-torch"):
    """Convert ``source``; assert the clean refusal and that nothing was written or leaked."""
    before = digest(source)
    result = wconv(command, source, folder / "out.pt", cwd=folder)
    assert_clean_failure(result, code, source, *words)
    assert not (folder / "out.pt").exists() and not (folder / "out.py").exists()
    assert digest(source) == before
    return result


# -- HDF5: nothing outside the file ----------------------------------------------------------
def test_hdf5_external_storage_is_refused(tmp_path, keras):
    secret = secret_file(tmp_path)
    source = keras_h5(keras, tmp_path / "model.h5")
    replace_dataset(source, lambda group, name, old: group.create_dataset(
        name, shape=old.shape, dtype=old.dtype, external=[(str(secret), 0, old.nbytes)]))
    refuse(source, tmp_path, 2, "external file")


def test_hdf5_external_link_is_refused(tmp_path, keras):
    import h5py

    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["kernel"] = np.frombuffer(SECRET[:140], dtype=np.float32).reshape(7, 5)
    source = keras_h5(keras, tmp_path / "model.h5")
    replace_dataset(source, lambda group, name, old: group.__setitem__(name, h5py.ExternalLink(str(other), "kernel")))
    refuse(source, tmp_path, 2, "external link")


def test_hdf5_virtual_dataset_is_refused(tmp_path, keras):
    import h5py

    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["kernel"] = np.frombuffer(SECRET[:140], dtype=np.float32).reshape(7, 5)

    def virtual(group, name, old):
        layout = h5py.VirtualLayout(shape=old.shape, dtype=old.dtype)
        layout[:] = h5py.VirtualSource(str(other), "kernel", shape=old.shape)
        group.create_virtual_dataset(name, layout)

    source = keras_h5(keras, tmp_path / "model.h5")
    replace_dataset(source, virtual)
    refuse(source, tmp_path, 2, "virtual")


def test_hdf5_soft_link_is_refused(tmp_path, keras):
    import h5py

    source = keras_h5(keras, tmp_path / "model.h5")
    with h5py.File(source, "r+") as f:
        f["model_weights/loop"] = h5py.SoftLink("/model_weights")
    refuse(source, tmp_path, 2, "SoftLink")


# -- declared sizes ----------------------------------------------------------------------------
def test_hdf5_dataset_without_its_data_is_refused(tmp_path, keras):
    source = keras_h5(keras, tmp_path / "model.h5")
    replace_dataset(source, lambda group, name, old: group.create_dataset(
        name, shape=(30000, 30000), dtype="float32", chunks=(100, 100)))
    refuse(source, tmp_path, 2, "refused before allocating")


def test_hdf5_gzip_bomb_is_refused(tmp_path, keras):
    source = keras_h5(keras, tmp_path / "model.h5")
    replace_dataset(source, lambda group, name, old: group.create_dataset(
        name, data=np.zeros((6000, 6000), np.float32), compression="gzip", compression_opts=9, chunks=(1000, 1000)))
    assert source.stat().st_size < 2 << 20
    refuse(source, tmp_path, 2, "more than a")


def test_keras_zip_bomb_is_refused(tmp_path):
    source = tmp_path / "model.keras"
    with zipfile.ZipFile(source, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", '{"class_name": "Sequential", "config": {"layers": []}}')
        archive.writestr("model.weights.h5", b"\0" * (300 << 20))
    assert source.stat().st_size < 1 << 20
    refuse(source, tmp_path, 2, "model.weights.h5")


def test_torch_storage_claiming_more_than_it_stores_is_refused(tmp_path, torch):
    source = torch_storage_claim(tmp_path / "model.pt", torch)
    result = wconv("inspect", source)
    assert_clean_failure(result, 2, source, "declares")
    refuse(source, tmp_path, 2, "declares", command="convert")


# -- ONNX: external data, unbounded constructs ---------------------------------------------------
def test_onnx_constant_with_external_data_is_refused(tmp_path):
    from onnx import TensorProto, helper

    secret_file(tmp_path)
    tensor = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[7, 5])
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value="secret.bin")
    constant = helper.make_node("Constant", [], ["w"], value=tensor)
    matmul = helper.make_node("MatMul", ["x", "w"], ["y"])
    model, onnx = onnx_model([constant, matmul], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 7])],
                             [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 5])])
    onnx.save(model, tmp_path / "model.onnx")
    refuse(tmp_path / "model.onnx", tmp_path, 3, "external data", command="onnx-to-torch")


def external_initializer_model(folder, **entries):
    """model.onnx whose MatMul weight (7 x 5 floats) is an initializer stored as external data ``entries``."""
    from onnx import TensorProto, helper

    tensor = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[7, 5])
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in entries.items():
        tensor.external_data.add(key=key, value=str(value))
    model, onnx = onnx_model([helper.make_node("MatMul", ["x", "w"], ["y"])],
                             [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 7])],
                             [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 5])], [tensor])
    onnx.save(model, folder / "model" / "model.onnx")
    return folder / "model" / "model.onnx"


@pytest.mark.parametrize("entries, code, words", [
    ({"location": "../secret.bin"}, 2, "only a file beside the model"),
    ({"location": "/etc/passwd"}, 2, "only a file beside the model"),
    ({"location": "link.bin"}, 2, "links are not followed"),
    ({"location": "data.bin", "offset": 200}, 2, "beyond the"),
    ({"location": "data.bin", "length": 20}, 2, "external data of 20 bytes"),
    ({"location": "data.bin", "offset": "-4"}, 2, "not a whole number"),
    ({"location": "data.bin", "basepath": "/"}, 2, "unknown external data keys"),
], ids=["parent", "absolute", "symlink", "span-beyond-file", "length-not-dims", "negative-offset", "unknown-key"])
def test_onnx_external_data_outside_the_rules_is_refused(entries, code, words, tmp_path):
    """Weights beside the model are read (torch.onnx's dynamo exporter writes them so) only by a bare file name, from
    a regular file in the model's folder, within its span and size: never another file's bytes."""
    secret = secret_file(tmp_path)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "data.bin").write_bytes(np.ones(35, np.float32).tobytes())
    (tmp_path / "model" / "link.bin").symlink_to(secret)
    source = external_initializer_model(tmp_path, **entries)
    result = refuse(source, tmp_path / "model", code, *words.split(" * "), command="onnx-to-torch")
    assert b"secret-line" not in (result.stdout + result.stderr).encode()


def test_onnx_external_data_by_the_rules_is_read(tmp_path):
    import converter

    (tmp_path / "model").mkdir()
    weight = np.random.default_rng(0).standard_normal((7, 5)).astype(np.float32)
    (tmp_path / "model" / "model.onnx.data").write_bytes(b"\0" * 12 + weight.tobytes())
    source = external_initializer_model(tmp_path, location="model.onnx.data", offset=12, length=140)
    graph = converter.read(source)
    assert np.array_equal(graph.nodes[0].params["kernel"], weight.T)


def test_onnx_loop_with_huge_trip_count_is_refused_fast(tmp_path):
    source = onnx_loop(tmp_path / "model.onnx")
    result = wconv("inspect", source)  # the Loop is never run: refused as unsupported
    assert_clean_failure(result, 3, source, "Loop")


def test_onnx_constant_of_shape_bomb_is_refused(tmp_path):
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Constant", [], ["shape"],
                              value=helper.make_tensor("s", TensorProto.INT64, [2], [30000, 30000])),
             helper.make_node("ConstantOfShape", ["shape"], ["big"]),
             helper.make_node("Add", ["x", "big"], ["y"])]
    model, onnx = onnx_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 30000])],
                             [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 30000])])
    onnx.save(model, tmp_path / "model.onnx")
    refuse(tmp_path / "model.onnx", tmp_path, 2, "refused before computing it", command="onnx-to-torch")


def test_onnx_initializer_whose_dims_exceed_its_data_is_bad_input(tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((7, 5), np.float32), "w")
    weight.dims[:] = [7, 6]
    model, onnx = onnx_model([helper.make_node("MatMul", ["x", "w"], ["y"])],
                             [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 7])],
                             [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 5])], [weight])
    onnx.save(model, tmp_path / "model.onnx")
    refuse(tmp_path / "model.onnx", tmp_path, 2, "do not match", command="onnx-to-torch")


def test_onnx_opset_newer_than_onnx_knows_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    model, _ = onnx_model([helper.make_node("Relu", ["x"], ["y"])],
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 7])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 7])],
                          opset=onnx.defs.onnx_opset_version() + 5)
    onnx.save(model, tmp_path / "model.onnx")
    refuse(tmp_path / "model.onnx", tmp_path, 3, "newer than the installed onnx", command="onnx-to-torch")


# -- anything else ------------------------------------------------------------------------------
def test_a_pipe_is_never_opened(tmp_path):
    fifo = tmp_path / "model.h5"
    os.mkfifo(fifo)
    result = wconv("inspect", fifo)
    assert_clean_failure(result, 2, fifo, "not a regular file")


def test_deeply_nested_config_is_bad_input(tmp_path, keras):
    import h5py

    source = keras_h5(keras, tmp_path / "model.h5")
    with h5py.File(source, "r+") as f:
        f.attrs["model_config"] = "[" * 100_000 + "]" * 100_000
    refuse(source, tmp_path, 2, "malformed")


def test_huge_names_are_cut_in_the_error_line(tmp_path):
    from onnx import TensorProto, helper

    name = "n" * 5_000_000
    model, onnx = onnx_model([helper.make_node("NoSuchOp", ["x"], ["y"], name=name)],
                             [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 7])],
                             [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 7])])
    onnx.save(model, tmp_path / "model.onnx")
    result = refuse(tmp_path / "model.onnx", tmp_path, 3, "NoSuchOp", command="onnx-to-torch")
    assert len(result.stderr) < 5000


def test_safetensors_whose_header_length_starts_with_0x08_is_safetensors(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "weights.safetensors"
    for padding in range(600):  # find a header length (a multiple of 8) whose low byte is 0x08
        save_file({"w" * (padding + 1): np.ones((2, 3), np.float32)}, str(path))
        if path.read_bytes()[0] == 0x08:
            break
    assert path.read_bytes()[0] == 0x08
    result = wconv("inspect", path, "--json")
    assert result.returncode == 0, result.stderr


def test_isolated_parse_stops_a_spinning_parser():
    from converter.errors import BadInput
    from converter.untrusted import isolated

    with pytest.raises(BadInput, match="over its CPU time limit"):  # the CPU limit, not the wall-clock timeout
        isolated(_spin, what="spin.h5")


def test_isolated_parse_stops_a_memory_bomb():
    from converter.errors import BadInput
    from converter.untrusted import isolated

    with pytest.raises(BadInput, match="memory|refused"):
        isolated(_allocate, what="bomb.h5")


def _spin():
    while True:
        pass


def _allocate():
    blocks = []
    while True:
        blocks.append(np.ones(1 << 27, np.uint8))


def test_declared_input_dims_of_2_to_the_40_are_refused_before_allocating(tmp_path):
    from onnx import TensorProto, helper

    model, onnx = onnx_model([helper.make_node("Relu", ["x"], ["y"])],
                             [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2**40])],
                             [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2**40])])
    onnx.save(model, tmp_path / "model.onnx")
    result = wconv("validate", tmp_path / "model.onnx", tmp_path / "model.onnx")
    assert_clean_failure(result, 2, tmp_path / "model.onnx", "smaller --input-shape")


def test_broken_safetensors_in_inspect_is_bad_input(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "weights.safetensors"
    save_file({"w": np.ones((20, 30), np.float32)}, str(path))
    path.write_bytes(path.read_bytes()[:-100])
    assert_clean_failure(wconv("inspect", path), 2, path)


@pytest.mark.parametrize("damage", ["missing tensor", "bad json", "node without op"])
def test_damaged_ir_files_are_bad_input(damage, tmp_path):
    import json

    import converter
    from hostile import onnx_dense, rewrite_ir_metadata
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    converter.convert(onnx_dense(tmp_path / "m.onnx"), tmp_path / "g.wconv")
    path = tmp_path / "g.wconv"
    if damage == "missing tensor":
        with safe_open(str(path), "np") as handle:
            metadata = handle.metadata()
        tensors = load_file(str(path))
        tensors.pop(sorted(tensors)[0])
        save_file(tensors, str(path), metadata=metadata)
    elif damage == "bad json":
        tensors = load_file(str(path))
        save_file(tensors, str(path), metadata={"wconv_graph": "{" + json.dumps({"schema": 1})})
    else:
        rewrite_ir_metadata(path, lambda spec: spec["nodes"][0].pop("op"))
    refuse(path, tmp_path, 2, command="convert")


@pytest.mark.parametrize("damage, words", [
    (lambda layers: layers[1].pop("config"), "without a config object"),
    (lambda layers: layers[1]["config"].update(name=7) or layers[1].pop("name", None), "without a name"),
    (lambda layers: layers[0]["config"].update(batch_shape=[None, "7"]), "not a list of sizes"),
    (lambda layers: layers.__setitem__(1, "dense"), "not an object"),
])
def test_keras_configs_are_checked_where_they_are_read(damage, words, tmp_path, keras):
    import h5py
    import json

    source = keras_h5(keras, tmp_path / "model.h5")
    with h5py.File(source, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        damage(config["config"]["layers"])
        f.attrs["model_config"] = json.dumps(config)
    refuse(source, tmp_path, 2, "layer #", words)
