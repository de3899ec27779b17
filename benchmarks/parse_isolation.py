"""What parsing each input first in a limited child process costs on a real model.

Run:  .venv/bin/python benchmarks/parse_isolation.py
Reads a keras.applications ResNet50 (96x128 input, seeded weights) as .keras and as .onnx with
``converter.read``, best of 3, with the parsing child and without it (the read alone, as the child
itself does it).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def best_of(path, vetted: bool, repeat: int = 3) -> float:
    import converter
    from converter import untrusted

    times = []
    for _ in range(repeat):
        untrusted._vetted.clear()
        untrusted._STATE["in_child"] = not vetted  # inside the child no further child is made
        try:
            start = time.perf_counter()
            converter.read(path)
            times.append(time.perf_counter() - start)
        finally:
            untrusted._STATE["in_child"] = False
    return min(times)


def main() -> None:
    import keras

    import converter
    from test_architectures import seeded_keras

    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "resnet50.keras"
        model = keras.applications.ResNet50(weights=None, input_shape=(96, 128, 3), classifier_activation=None)
        seeded_keras(model).save(source)
        converter.convert(source, Path(folder) / "resnet50.onnx")
        print("| file | size | read alone | read with the parsing child | ratio |")
        print("|---|---|---|---|---|")
        for path in (source, Path(folder) / "resnet50.onnx"):
            alone, vetted = best_of(path, False), best_of(path, True)
            print(f"| {path.name} | {path.stat().st_size / 2**20:.0f} MB | {alone:.2f} s | {vetted:.2f} s | "
                  f"{vetted / alone:.1f}x |")


if __name__ == "__main__":
    main()
