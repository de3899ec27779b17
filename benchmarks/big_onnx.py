"""A Keras MLP of a few GB to ONNX: does it convert, how long, how much memory, against a floor measured in the same run.

Issue 21's field report: a 2.45 GB MLP ended in exit 70 (one ONNX file cannot hold 2 GiB). The floor is what any
converter must do: read each weight from the ``.h5`` and write its bytes to a file (h5py and numpy, in a fresh
process). wconv runs ``keras-to-onnx`` in a fresh process; its output is then loaded by onnxruntime and compared
with Keras on one seeded batch. Peak RSS is each process's own (interpreter and imports included).

    .venv/bin/python benchmarks/big_onnx.py --gigabytes 2.45
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from compare_tools import measure  # noqa: E402

FLOOR = """
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f, open(sys.argv[2], "wb") as out:
    def copy(name, item):
        if isinstance(item, h5py.Dataset):
            out.write(np.ascontiguousarray(item[()]).tobytes())
    f.visititems(copy)
"""

WIDTH, FEATURES = 8192, 32  # square hidden layers of WIDTH; the model's input and output are small


def build(path: Path, gigabytes: float):
    """An MLP whose weights take ``gigabytes``: FEATURES -> WIDTH x k -> FEATURES, seeded, saved as .h5."""
    import keras

    layers = max(1, round((gigabytes * 1e9 / 4 - 2 * FEATURES * WIDTH) / (WIDTH * WIDTH)))
    model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(WIDTH, activation="relu"),
                              *[keras.layers.Dense(WIDTH, activation="relu") for _ in range(layers)],
                              keras.layers.Dense(FEATURES)])
    rng = np.random.default_rng(0)
    for variable in model.weights:  # scaled so that activations stay finite through the layers
        variable.assign((rng.standard_normal(variable.shape, dtype=np.float32) / np.sqrt(variable.shape[0]))
                        .astype(np.float32))
    model.save(path)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gigabytes", type=float, default=2.45)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("WCONV_BENCH_DIR")) as folder:
        folder = Path(folder)
        source = folder / "mlp.h5"
        model = build(source, options.gigabytes)
        x = np.random.default_rng(1).standard_normal((4, FEATURES)).astype(np.float32)
        expected = np.asarray(model(x))
        del model
        size = source.stat().st_size / 1e9
        floor = measure([sys.executable, "-c", FLOOR, str(source), str(folder / "floor.bin")])
        (folder / "floor.bin").unlink()
        wconv = measure([sys.executable, "-m", "converter", "keras-to-onnx", str(source), str(folder / "mlp.onnx")])
        print("| model | command | seconds | peak RSS (MiB) | ratio to the floor (time, memory) | max abs diff |")
        print("|---|---|---|---|---|---|")
        print(f"| MLP {size:.2f} GB (.h5) | floor: read each weight, write its bytes | {floor[0]:.1f} | {floor[1]} | "
              "1 | |")
        if isinstance(wconv, str):
            print(f"| MLP {size:.2f} GB (.h5) | wconv keras-to-onnx | {wconv} | | | |")
            return
        import onnxruntime

        files = sorted(p.name for p in folder.iterdir() if p.name.startswith("mlp.onnx"))
        session = onnxruntime.InferenceSession(str(folder / "mlp.onnx"), providers=["CPUExecutionProvider"])
        found = session.run(None, {session.get_inputs()[0].name: x})[0]
        diff = float(np.abs(expected - found).max())
        print(f"| MLP {size:.2f} GB (.h5) | wconv keras-to-onnx ({' + '.join(files)}) | {wconv[0]:.1f} | {wconv[1]} | "
              f"{wconv[0] / floor[0]:.2f}, {wconv[1] / floor[1]:.2f} | {diff:.2e} "
              f"({diff / float(np.abs(expected).max()):.1e}) |")


if __name__ == "__main__":
    main()
