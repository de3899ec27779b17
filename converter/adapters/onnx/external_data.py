"""ONNX external data, read under rules: torch.onnx's dynamo exporter writes its weights beside the model
(``model.onnx`` + ``model.onnx.data``); nothing else outside the model file is read.

The rules: only initializers may be external; a tensor's ``location`` is a bare file name in the model's own
folder (no folder part, no '..', not absolute), naming a regular file, not a link; ``offset`` and ``length`` are
whole numbers; ``length`` is exactly the bytes the tensor's dims declare; the span lies within the file, and all
the spans together within what that file can hold. Each tensor is read by its offset through a descriptor opened
without following links; onnx's own loader, which follows any path, is never used.
"""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path

from ...errors import BadInput, Unsupported
from ...limits import Budget
from .tensors import ITEMSIZE, every_tensor

KEYS = {"location", "offset", "length", "checksum"}  # the keys the ONNX spec defines


def inline(model, path, before_reading=None) -> int:
    """Each external initializer's bytes read into it under the rules; the bytes read from data files.
    ``before_reading(total)``: told the bytes the tensors declare (each checked against its dims, at most what the
    data files hold), before any is read: the parsing child's memory grows by their share first (untrusted.grant)."""
    from onnx import TensorProto

    external = [t for t in every_tensor(model.graph) if t.data_location == TensorProto.EXTERNAL]
    if not external:
        return 0
    initializers = {id(t) for t in model.graph.initializer}
    elsewhere = [t.name or "(unnamed)" for t in external if id(t) not in initializers]
    if elsewhere:
        raise Unsupported(f"tensors {elsewhere[:5]} (constants or attributes, not initializers) are stored as "
                          "external data, which wconv reads for initializers only")
    folder, budgets = Path(path).parent, {}
    spans = [(tensor, *_span(tensor)) for tensor in external]
    if before_reading is not None:
        on_disk = sum(_size(folder / name) for name in {location for _, location, _, _ in spans})
        before_reading(min(sum(length for _, _, _, length in spans), on_disk))
    for tensor, location, offset, length in spans:
        what = f"tensor '{tensor.name or '(unnamed)'}'"
        tensor.raw_data = _read_span(folder / location, what, offset, length, budgets, tensor.dims,
                                     ITEMSIZE[tensor.data_type])
        del tensor.external_data[:]
        tensor.data_location = 0  # DEFAULT: the bytes are in the tensor now
    return sum(length for _, _, _, length in spans)


def _span(tensor) -> tuple:
    """(location, offset, length) of an external tensor, checked against the rules (not yet against the file)."""
    what = f"tensor '{tensor.name or '(unnamed)'}'"
    info = {entry.key: entry.value for entry in tensor.external_data}
    unknown = sorted(set(info) - KEYS)
    if unknown:
        raise BadInput(f"{what}: unknown external data keys {unknown}")
    location = info.get("location", "")
    if not location or os.path.basename(location) != location or location in (".", "..") or "\0" in location \
            or "\\" in location:
        raise BadInput(f"{what}: external data at {location[:80]!r}; only a file beside the model, by its bare name, "
                       "is read")
    if tensor.data_type not in ITEMSIZE or tensor.data_type == 8:
        raise Unsupported(f"{what}: external data of type {tensor.data_type} is not read")
    expected = math.prod(tensor.dims) * ITEMSIZE[tensor.data_type]
    offset, length = _whole(what, info.get("offset", "0")), _whole(what, info.get("length", str(expected)))
    if length != expected:
        raise BadInput(f"{what}: external data of {length} bytes for dims {tuple(tensor.dims)} ({expected} bytes)")
    return location, offset, length


def _size(data_path: Path) -> int:
    """A data file's size, not following a link (the read refuses links and non-files by name); 0 if absent."""
    try:
        status = os.lstat(data_path)
    except OSError:
        return 0
    return status.st_size if stat.S_ISREG(status.st_mode) else 0


def _whole(what: str, text: str) -> int:
    if not text.isdigit():
        raise BadInput(f"{what}: external data offset or length {text[:40]!r} is not a whole number")
    return int(text)


def _read_span(data_path: Path, what: str, offset: int, length: int, budgets: dict, dims, itemsize: int) -> bytes:
    try:
        descriptor = os.open(data_path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as error:
        raise BadInput(f"{what}: external data file {data_path.name} cannot be opened ({error.strerror}; links are "
                       "not followed)") from None
    with os.fdopen(descriptor, "rb") as handle:
        status = os.fstat(handle.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise BadInput(f"{what}: external data {data_path.name} is not a regular file")
        if offset + length > status.st_size:
            raise BadInput(f"{what}: external data span {offset}..{offset + length} is beyond the "
                           f"{status.st_size} bytes of {data_path.name}")
        budget = budgets.setdefault(data_path.name, Budget(data_path, status.st_size))
        budget.declare(what, dims, itemsize)  # all spans together within what the file can hold
        handle.seek(offset)
        return handle.read(length)
