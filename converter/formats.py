"""Which framework a file belongs to: by content for inputs, by extension for outputs."""

from __future__ import annotations

import zipfile
from pathlib import Path

from .errors import BadInput

FORMATS = ("keras", "torch", "onnx", "ir")
OUTPUT_SUFFIXES = {".keras": "keras", ".h5": "keras", ".hdf5": "keras", ".pt": "torch", ".pth": "torch",
                   ".bin": "torch", ".safetensors": "torch", ".onnx": "onnx", ".wconv": "ir"}


def detect(path) -> str:
    """The format of an existing file, from its first bytes (extensions can lie)."""
    path = Path(path)
    if not path.exists():
        raise BadInput(f"{path}: no such file")
    if path.is_dir():
        from .adapters.torch import pretrained

        if pretrained.is_folder(path):
            return "torch"
        raise BadInput(f"{path}: is a folder, not a model file (a transformers save_pretrained folder holds "
                       f"{pretrained.CONFIG})")
    if not path.is_file():
        raise BadInput(f"{path}: not a regular file (a device, socket or pipe is never read)")
    with open(path, "rb") as handle:
        head = handle.read(16)
    if not head:
        raise BadInput(f"{path}: empty file")
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "keras"
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(path)
    if _safetensors_layout(head, path.stat().st_size):  # before ONNX: a header length may start with 0x08
        from . import ir_file

        return "ir" if ir_file.is_ir_file(path) else "torch"  # plain safetensors holds a state_dict
    if head[:1] == b"\x08":
        return "onnx"  # ModelProto starts with field 1 (ir_version) as a varint
    if head[:1] == b"\x80":
        return "torch"  # legacy (non-zip) torch.save pickle; still only read with weights_only=True
    if path.suffix == ".onnx":
        return "onnx"
    raise BadInput(f"{path}: not a Keras, torch, safetensors or ONNX file (unrecognized content)")


def _safetensors_layout(head: bytes, size: int) -> bool:
    """safetensors: an 8-byte little-endian header length that fits the file, then a JSON object."""
    length = int.from_bytes(head[:8], "little")
    return len(head) > 8 and head[8:9] == b"{" and 2 <= length <= size - 8


def _zip_kind(path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile:
        raise BadInput(f"{path}: corrupt zip archive") from None
    if "config.json" in names:
        return "keras"
    if any(name.endswith("data.pkl") for name in names):
        return "torch"
    raise BadInput(f"{path}: a zip that is neither a .keras model nor a torch file")


def for_output(path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise BadInput(f"{path}: unknown output extension '{suffix}' (use one of {', '.join(OUTPUT_SUFFIXES)})")
    return OUTPUT_SUFFIXES[suffix]
