"""Seeded mutants of small model files, and the check that every one gets a clean answer.

``python tests/security/fuzz.py --count 5000 --seed 1`` (what ``make fuzz`` runs) goes further than
the CI test: it reads every mutant with ``converter.read`` and stops at the first one that escapes
as anything but a WconvError with a documented exit code other than 70, keeping it in build/fuzz/.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
sys.path[:0] = [str(HERE), str(HERE.parent)]


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to four random edits: flipped bytes, a cut, a zeroed or repeated run, a boundary value."""
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(6)
        at = rng.randrange(len(data)) if data else 0
        if kind == 0:
            data[at] ^= 1 << rng.randrange(8)
        elif kind == 1:
            data = data[: rng.randrange(len(data) + 1)]
        elif kind == 2:
            span = rng.randint(1, 64)
            data[at:at + span] = bytes(len(data[at:at + span]))
        elif kind == 3:
            span = rng.randint(1, 64)
            data[at:at] = data[at:at + span] * rng.randint(1, 8)
        elif kind == 4 and len(data) >= at + 4:
            data[at:at + 4] = rng.choice([b"\xff\xff\xff\x7f", b"\x00\x00\x00\x80", b"\xff\xff\xff\xff"])
        elif data:
            data[at] = rng.randrange(256)
    return bytes(data)


def seed_files(folder: Path) -> list[Path]:
    """A legacy .h5, a .keras, an .onnx and a torch .pt, each a small dense model."""
    import keras
    import torch

    from hostile import onnx_dense
    from models import keras_mlp

    model = keras_mlp(keras, (7, 5, 3))
    model.save(folder / "seed.h5")
    model.save(folder / "seed.keras")
    onnx_dense(folder / "seed.onnx")
    rng = np.random.default_rng(0)
    torch.save({"0.weight": torch.from_numpy(rng.standard_normal((5, 7)).astype(np.float32)),
                "0.bias": torch.zeros(5)}, folder / "seed.pt")
    return [folder / name for name in ("seed.h5", "seed.keras", "seed.onnx", "seed.pt")]


def outcome(path: Path) -> str:
    """'ok', or the exit code of the WconvError; anything else escapes (a bug)."""
    import converter
    from converter.errors import WconvError

    try:
        if path.suffix == ".pt":
            from converter.inspect import inspect_file

            inspect_file(path)
        else:
            converter.read(path)
    except WconvError as error:
        assert error.exit_code in (2, 3, 5), f"{path.name}: exit {error.exit_code} for {error}"
        return str(error.exit_code)
    return "ok"


def run(count: int, seed: int, folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    tally: dict[str, int] = {}
    for source in seed_files(folder):
        original = source.read_bytes()
        for index in range(count):
            mutant = folder / f"mutant-{index}{source.suffix}"
            mutant.write_bytes(mutate(original, rng))
            try:
                result = outcome(mutant)
            except BaseException:
                print(f"escaped: {mutant} (seed {seed}, {source.name} #{index})", file=sys.stderr)
                raise
            tally[result] = tally.get(result, 0) + 1
            mutant.unlink()
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000, help="mutants per seed file")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--folder", type=Path, default=Path("build/fuzz"))
    options = parser.parse_args()
    started = time.monotonic()
    tally = run(options.count, options.seed, options.folder)
    print(f"seed {options.seed}: {sum(tally.values())} mutants in {time.monotonic() - started:.0f} s, "
          f"outcomes {dict(sorted(tally.items()))}")


if __name__ == "__main__":
    main()
