"""Wall time and peak memory of the everyday commands on the shipped fixture.

Run:  .venv/bin/python benchmarks/cli_wall_time.py [--repeat 5]
Each command runs in a fresh process, as a user would run it (imports included).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "fixtures" / "seed_mlp.h5"


def commands(folder: Path) -> dict[str, list[str]]:
    return {
        "wconv keras-to-torch seed_mlp.h5 out.pt": ["keras-to-torch", str(FIXTURE), str(folder / "out.pt"),
                                                    "--force"],
        "wconv keras-to-onnx seed_mlp.h5 out.onnx": ["keras-to-onnx", str(FIXTURE), str(folder / "out.onnx"),
                                                     "--force"],
        "wconv inspect seed_mlp.h5": ["inspect", str(FIXTURE)],
        "wconv explain dense": ["explain", "dense"],
    }


# A fresh wrapper per run, so that the peak RSS is this command's alone.
WRAPPER = """
import resource, subprocess, sys, time
start = time.perf_counter()
subprocess.run([sys.executable, "-m", "converter", *sys.argv[1:]], check=True, capture_output=True)
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def measure(arguments: list[str]) -> tuple[float, int]:
    """(seconds, peak RSS in MiB) of one run of the command."""
    result = subprocess.run([sys.executable, "-c", WRAPPER, *arguments], check=True, capture_output=True, text=True)
    seconds, peak_kib = result.stdout.split()
    return float(seconds), int(peak_kib) // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        print(f"| command | median wall time (s), {options.repeat} runs | peak RSS (MiB) |")
        print("|---|---|---|")
        for label, arguments in commands(Path(folder)).items():
            runs = [measure(arguments) for _ in range(options.repeat)]
            print(f"| `{label}` | {statistics.median(t for t, _ in runs):.2f} | {max(m for _, m in runs)} |")


if __name__ == "__main__":
    main()
