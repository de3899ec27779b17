"""Output files: refuse to clobber, refuse input == output, write atomically."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import OutputRefused


def check_outputs(sources, outputs, force: bool) -> None:
    """Raise before any work if an output is an input, or exists without ``force``."""
    resolved_sources = {Path(s).resolve() for s in sources if s}
    for output in outputs:
        target = Path(output)
        if target.resolve() in resolved_sources:
            raise OutputRefused(f"{output}: output is the input file; choose another path")
        if target.exists() and not force:
            raise OutputRefused(f"{output}: exists; pass --force to overwrite")
        if not target.parent.exists():
            raise OutputRefused(f"{output}: folder {target.parent} does not exist")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(output):
    """Yield a temp path beside ``output`` (same suffix); move it into place only on success."""
    target = Path(output)
    handle, temp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(handle)
    try:
        yield temp
        os.chmod(temp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
        os.replace(temp, target)
    finally:
        if os.path.exists(temp):
            os.remove(temp)
