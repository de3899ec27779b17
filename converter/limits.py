"""What an untrusted file may make wconv allocate or compute, checked before it happens.

A model file's tensors are its bulk: together they cannot honestly need much more memory than
the file holds, except where a container compresses them. So the sum of the sizes a file declares
is held to ``EXPANSION`` times the file's size (with a ``FLOOR`` for tiny files), and every other
thing read from it (a config, a header, a folded constant) has a fixed ceiling.
"""

from __future__ import annotations

import math
import os

from .errors import BadInput

MIB = 1 << 20
FLOOR = 64 * MIB  # what any file may declare, however small
EXPANSION = 32  # declared bytes per stored byte: deflate reaches ~1.1 on float weights, ~1000 on zeros
CONFIG_BYTES = 64 * MIB  # a model config (JSON) or a header
FOLD_ELEMENTS = 1 << 24  # one constant computed while folding an ONNX graph (64 MiB of float32)


def allowance(file_size: int) -> int:
    """Bytes of tensors a file of ``file_size`` bytes may declare in all."""
    return max(FLOOR, EXPANSION * int(file_size))


class Budget:
    """Declared tensor bytes of one file, checked as they are declared (before anything is allocated)."""

    def __init__(self, path, file_size: int | None = None):
        self.path = path
        self.file_size = os.path.getsize(path) if file_size is None else file_size
        self.limit = allowance(self.file_size)
        self.declared = 0

    def declare(self, what: str, shape, itemsize: int) -> None:
        dims = [int(d) for d in shape]
        if any(d < 0 for d in dims):
            raise BadInput(f"{what}: negative dimension in {tuple(dims)}")
        nbytes = math.prod(dims) * int(itemsize)
        self.declared += nbytes
        if self.declared > self.limit:
            raise BadInput(f"{what}: declares {_size(nbytes)} ({tuple(dims)}), more than a "
                           f"{_size(self.file_size)} file can hold; refused before allocating it")


def check_config_size(what: str, nbytes: int) -> None:
    if nbytes > CONFIG_BYTES:
        raise BadInput(f"{what} is {_size(nbytes)}, over the {_size(CONFIG_BYTES)} a model config may take")


def _size(nbytes: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", MIB), ("KB", 1 << 10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} bytes"
