"""Lazy, optional framework imports with a one-line hint naming the pip extra."""

from __future__ import annotations

import importlib
import logging
import os
import sys
import tempfile
import warnings
from contextlib import contextmanager

from .errors import MissingFramework

EXTRAS = {"torch": "torch", "keras": "tensorflow", "tensorflow": "tensorflow", "onnx": "onnx", "onnxruntime": "onnx"}
# TensorFlow's C++ runtime writes absl/oneDNN/CUDA lines straight to file descriptor 2 while it is
# imported, whatever TF_CPP_MIN_LOG_LEVEL says; wconv's stderr is one line per error, so the import
# runs with fd 2 pointed at a scratch file, which is quoted only if the import fails.
NOISY_AT_IMPORT = ("keras", "tensorflow", "tf_keras")


def require(module: str):
    """Import a framework, or raise MissingFramework naming the extra to install."""
    if module in sys.modules:
        return sys.modules[module]
    noisy = module in NOISY_AT_IMPORT
    if noisy:
        _quiet_tensorflow()
    from .progress import stage

    with stage(f"importing {module.split('.')[0]}"), _stderr_captured(noisy) as captured:
        try:
            return importlib.import_module(module)
        except ImportError as error:
            extra = EXTRAS.get(module, module)
            raise MissingFramework(
                f"{module} is needed for this and is not importable ({error}); install it with: "
                f"pip install 'wconv-weights[{extra}]'"
            ) from None
        except Exception as error:  # a broken installation: say what the import printed
            printed = captured()
            raise MissingFramework(f"importing {module} failed ({type(error).__name__}: {error}"
                                   f"{'; it printed: ' + printed if printed else ''})") from None


@contextmanager
def quiet():
    """Run code that may import TensorFlow (a user's model builder) with TensorFlow's import-time lines kept off
    stderr, as ``require`` does."""
    _quiet_tensorflow()
    with _stderr_captured(True):
        yield


@contextmanager
def _stderr_captured(enabled: bool):
    """Point file descriptor 2 at a scratch file for the duration; yields a reader of what was written."""
    if not enabled:
        yield lambda: ""
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as scratch:
        os.dup2(scratch.fileno(), 2)
        try:
            yield lambda: _last_line(scratch)
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _last_line(scratch) -> str:
    scratch.seek(0)
    lines = scratch.read().decode("utf-8", "replace").strip().splitlines()
    return lines[-1][:200] if lines else ""


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", module="keras")
    logging.getLogger("absl").setLevel(logging.ERROR)
