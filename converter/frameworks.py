"""Lazy, optional framework imports with a one-line hint naming the pip extra."""

from __future__ import annotations

import importlib
import logging
import os
import warnings

from .errors import MissingFramework

EXTRAS = {"torch": "torch", "keras": "tensorflow", "tensorflow": "tensorflow", "onnx": "onnx", "onnxruntime": "onnx"}


def require(module: str):
    """Import a framework, or raise MissingFramework naming the extra to install."""
    if module in ("keras", "tensorflow"):
        _quiet_tensorflow()
    try:
        return importlib.import_module(module)
    except ImportError as error:
        extra = EXTRAS.get(module, module)
        raise MissingFramework(
            f"{module} is needed for this and is not importable ({error}); install it with: pip install 'wconv[{extra}]'"
        ) from None


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", module="keras")
    logging.getLogger("absl").setLevel(logging.ERROR)
