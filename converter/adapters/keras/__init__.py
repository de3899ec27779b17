"""Keras adapter: ``read(path) -> Graph`` (no TensorFlow needed) and ``write(graph, path)``."""

from .reader import read
from .writer import write

__all__ = ["read", "write"]
