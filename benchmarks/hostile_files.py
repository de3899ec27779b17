"""Time and peak memory to reject crafted files, against the interpreter's floor in the same run.

Run:  .venv/bin/python benchmarks/hostile_files.py
Each file goes through ``wconv inspect`` (and the ONNX ones through ``onnx-to-torch`` too) in a fresh
process. The floor is ``wconv --version`` (interpreter, typer, numpy). The goal from issue 7:
every hostile file rejected in under 5 s, with peak RSS under the floor plus 256 MB. Peak RSS is
the largest of wconv and its parsing child.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "security"), str(ROOT / "tests")]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

WRAPPER = """
import resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.run([sys.executable, "-m", "converter", *sys.argv[1:]], capture_output=True).returncode
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)
"""


def measure(arguments) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB, exit code) of one fresh wconv process."""
    output = subprocess.run([sys.executable, "-c", WRAPPER, *map(str, arguments)], capture_output=True, text=True,
                            cwd=ROOT, check=True).stdout.split()
    return float(output[0]), int(output[1]) / 1024, int(output[2])


def corpus(folder: Path) -> dict[str, Path]:
    import keras
    import torch
    from onnx import TensorProto, helper

    from hostile import keras_h5, onnx_loop, onnx_model, replace_dataset, torch_storage_claim

    files = {}
    files["valid .h5 (contrast)"] = keras_h5(keras, folder / "valid.h5")
    files[".h5 dataset (30000, 30000), no data"] = keras_h5(keras, folder / "nodata.h5")
    replace_dataset(files[".h5 dataset (30000, 30000), no data"], lambda g, n, o: g.create_dataset(
        n, shape=(30000, 30000), dtype="float32", chunks=(100, 100)))
    files[".h5 gzip bomb (6000, 6000) zeros"] = keras_h5(keras, folder / "gzip.h5")
    replace_dataset(files[".h5 gzip bomb (6000, 6000) zeros"], lambda g, n, o: g.create_dataset(
        n, data=np.zeros((6000, 6000), np.float32), compression="gzip", compression_opts=9, chunks=(1000, 1000)))
    files[".keras deflate bomb (2 GB weights)"] = folder / "bomb.keras"
    with zipfile.ZipFile(files[".keras deflate bomb (2 GB weights)"], "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", '{"class_name": "Sequential", "config": {"layers": []}}')
        with archive.open("model.weights.h5", "w", force_zip64=True) as member:
            block = bytes(64 << 20)
            for _ in range(32):
                member.write(block)
    files[".pt storage claiming 2**31 elements"] = torch_storage_claim(folder / "claim.pt", torch)
    big = helper.make_tensor("s", TensorProto.INT64, [2], [30000, 30000])
    model, onnx = onnx_model([helper.make_node("Constant", [], ["shape"], value=big),
                              helper.make_node("ConstantOfShape", ["shape"], ["big"]),
                              helper.make_node("Add", ["x", "big"], ["y"])],
                             [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 30000])],
                             [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 30000])])
    onnx.save(model, folder / "cos.onnx")
    files[".onnx ConstantOfShape (30000, 30000)"] = folder / "cos.onnx"
    files[".onnx Loop, trip count 2**62"] = onnx_loop(folder / "loop.onnx")
    files[".h5 model_config nested 100k deep"] = keras_h5(keras, folder / "deep.h5")
    import h5py

    with h5py.File(files[".h5 model_config nested 100k deep"], "r+") as f:
        f.attrs["model_config"] = "[" * 100_000 + "]" * 100_000
    return files


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        files = corpus(Path(folder))
        floor_seconds, floor_rss, _ = measure(["--version"])
        print(f"floor (wconv --version): {floor_seconds:.2f} s, {floor_rss:.0f} MB peak RSS\n")
        print("| file | size | command | exit | seconds | peak RSS - floor |")
        print("|---|---|---|---|---|---|")
        for name, path in files.items():
            commands = [["inspect", path]] + ([["onnx-to-torch", path, Path(folder) / "out.pt"]]
                                              if path.suffix == ".onnx" else [])
            for command in commands:
                seconds, rss, code = measure(command)
                size = path.stat().st_size
                print(f"| {name} | {size / 1024:.0f} KB | {command[0]} | {code} | {seconds:.2f} | "
                      f"{rss - floor_rss:+.0f} MB |")


if __name__ == "__main__":
    main()
