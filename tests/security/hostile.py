"""Hostile strings and the small model files that carry them, made by the tests themselves."""

from __future__ import annotations

import json

import numpy as np

from models import onnx_model  # noqa: F401  (the corpus builds ONNX models with it)

MARKER = "pwned"
# Each tries to end a string, a docstring or a line and run code that leaves MARKER behind.
STRINGS = [
    f'x"""\n__import__("os").system("touch {MARKER}")\n"""',
    f"x'''\nimport os; os.system('touch {MARKER}')\n'''",
    f'x" + __import__("os").system("touch {MARKER}") + "',
    f"x\\\n__import__('os').system('touch {MARKER}')",
    f"x\r__import__('os').system('touch {MARKER}')\u2028#",
    f"{{0}} {{inputs}} \x00\x1b[2J é",
]


def onnx_dense(path, input_name="features", node_name="dense", graph_name="g"):
    """A 7 -> 5 Gemm whose names are given."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((5, 7)).astype(np.float32), "W")
    bias = numpy_helper.from_array(rng.standard_normal(5).astype(np.float32), "b")
    node = helper.make_node("Gemm", [input_name, "W", "b"], ["y"], name=node_name, transB=1)
    graph = helper.make_graph([node], graph_name, [helper.make_tensor_value_info(input_name, TensorProto.FLOAT,
                                                                                 [None, 7])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 5])], [weight, bias])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def rename_in_h5_config(path, old: str, new: str) -> None:
    """Rename a layer throughout a legacy .h5's model_config (the weights groups keep their names)."""
    import h5py

    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        f.attrs["model_config"] = json.dumps(_renamed(config, old, new))


def _renamed(value, old, new):
    if isinstance(value, dict):
        return {k: _renamed(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v, old, new) for v in value]
    return new if value == old else value


def rewrite_ir_metadata(path, change) -> None:
    """Apply ``change`` to a .wconv file's graph JSON."""
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(path))
    with safe_open(str(path), "np") as handle:
        metadata = handle.metadata()
    spec = json.loads(metadata["wconv_graph"])
    change(spec)
    save_file(tensors, str(path), metadata={"wconv_graph": json.dumps(spec)})


def keras_h5(keras, path):
    """A small legacy .h5 (7 -> 5 -> 3) to tamper with."""
    from models import keras_mlp

    keras_mlp(keras, (7, 5, 3)).save(path)
    return path


def kernel_path(f) -> str:
    """The HDF5 path of the first Dense kernel in a legacy .h5."""
    found = []
    f["model_weights"].visititems(lambda name, item: found.append(name) if name.endswith("kernel") else None)
    return "model_weights/" + sorted(found)[0]


def replace_dataset(path, make) -> None:
    """Swap the first kernel of a legacy .h5 for what ``make(group, name, old)`` creates."""
    import h5py

    with h5py.File(path, "r+") as f:
        where = kernel_path(f)
        group_path, name = where.rsplit("/", 1)
        group = f[group_path]
        old = group[name][()]
        del group[name]
        make(group, name, old)


def onnx_loop(path, trip_count: int = 2**62):
    """A Loop whose trip count is a constant ``trip_count``, feeding an Add: 331 bytes that never end if run."""
    from onnx import TensorProto, helper

    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Identity", ["v_in"], ["v_out"])],
        "body", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                 helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
                 helper.make_tensor_value_info("v_in", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [1])])
    nodes = [helper.make_node("Constant", [], ["n"], value=helper.make_tensor("n", TensorProto.INT64, [], [trip_count])),
             helper.make_node("Constant", [], ["c"], value=helper.make_tensor("c", TensorProto.BOOL, [], [True])),
             helper.make_node("Constant", [], ["v"], value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.0])),
             helper.make_node("Loop", ["n", "c", "v"], ["looped"], body=body),
             helper.make_node("Add", ["x", "looped"], ["y"])]
    model, onnx = onnx_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1])],
                             [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])])
    onnx.save(model, path)
    return path


def torch_storage_claim(path, torch):
    """A torch zip whose one storage claims 2**31 - 1 elements while holding 4."""
    import zipfile

    torch.save({"weight": torch.zeros(4)}, path)
    with zipfile.ZipFile(path) as archive:
        entries = {info.filename: archive.read(info.filename) for info in archive.infolist()}
    pickled = next(name for name in entries if name.endswith("data.pkl"))
    entries[pickled] = entries[pickled].replace(b"K\x04t", b"J\xff\xff\xff\x7ft", 1)  # the pickled element count
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path
