"""ONNX adapter: ``read(path) -> Graph`` and ``write(graph, path)`` (opset 20, checked)."""

from .reader import read
from .writer import build, write

__all__ = ["read", "write", "build"]
