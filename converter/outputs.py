"""Output files: refuse to clobber, refuse input == output, write atomically, all files or none.

Writers ask ``atomic_path(output)`` for a temp file beside each output. Inside ``transaction``
(what ``converter.write`` opens) the temps are kept until the writer has finished every file, then
moved into place together: without ``force`` through an exclusive create, so that of two processes
writing the same new output one gets "exists". Temps carry the writer's pid in their name, and a
later run removes those of processes that no longer exist (a run killed mid-write).
"""

from __future__ import annotations

import contextvars
import errno
import os
import re
import secrets
from contextlib import contextmanager
from pathlib import Path

from .errors import OutputRefused

TEMP_MARK = ".wconv-tmp-"
_CURRENT = contextvars.ContextVar("wconv_output_transaction", default=None)


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


def temp_name(target: Path) -> Path:
    return target.parent / f".{target.name}{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}{target.suffix}"


def sweep_stale_temps(target: Path) -> None:
    """Remove temps of ``target`` left by wconv processes that are gone (killed while writing)."""
    pattern = re.compile(re.escape(f".{target.name}{TEMP_MARK}") + r"(\d+)-[0-9a-f]{8}")
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return
    for entry in entries:
        match = pattern.match(entry.name)
        if match and not _alive(int(match.group(1))):
            try:
                entry.unlink()
            except OSError:
                pass


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Transaction:
    """Temps written so far and where each goes; moved into place together by ``commit``."""

    def __init__(self, force: bool):
        self.force = force
        self.pending: list[tuple[Path, Path]] = []

    def temp_for(self, output) -> Path:
        target = Path(output)
        sweep_stale_temps(target)
        temp = temp_name(target)
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 & ~_umask())
        except OSError as error:
            raise OutputRefused(f"{output}: cannot write in {target.parent} ({error.strerror})") from None
        os.close(fd)
        self.pending.append((temp, target))
        return temp

    def commit(self) -> None:
        placed = []
        try:
            for temp, target in self.pending:
                _place(temp, target, self.force)
                placed.append(target)
        except BaseException:
            for target in placed:  # all files of an output or none
                _remove(target)
            raise
        finally:
            self.abort()

    def abort(self) -> None:
        for temp, _ in self.pending:
            _remove(temp)
        self.pending.clear()


def _place(temp: Path, target: Path, force: bool) -> None:
    os.chmod(temp, 0o666 & ~_umask())
    if force:
        os.replace(temp, target)
        return
    try:
        os.link(temp, target)  # fails if target exists: the exclusive create of a whole file
    except FileExistsError:
        raise OutputRefused(f"{target}: exists (another process created it meanwhile); pass --force to "
                            "overwrite") from None
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
            raise
        _claim(target)  # a file system without hard links: claim the name, then move over the claim
        os.replace(temp, target)


def _claim(target: Path) -> None:
    try:
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except FileExistsError:
        raise OutputRefused(f"{target}: exists (another process created it meanwhile)") from None


def _remove(path: Path) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


@contextmanager
def transaction(force: bool):
    """Every ``atomic_path`` inside is committed at the end, together; nothing is left on failure."""
    current = Transaction(force)
    token = _CURRENT.set(current)
    try:
        yield current
        current.commit()
    except OSError as error:
        current.abort()
        name = error.filename or (current.pending[0][1] if current.pending else "output")
        raise OutputRefused(f"{name}: cannot write ({error.strerror or error})") from None
    finally:
        current.abort()
        _CURRENT.reset(token)


def refuse_existing(output) -> None:
    """An output a writer decides to add as it writes (ONNX external data past 2 GiB): refused where it exists,
    unless the current write was forced."""
    current = _CURRENT.get()
    if Path(output).exists() and not (current is not None and current.force):
        raise OutputRefused(f"{output}: exists; pass --force to overwrite")


@contextmanager
def atomic_path(output):
    """Yield a temp path beside ``output`` (same suffix); it becomes ``output`` only on success.

    Within ``transaction`` the move waits for the transaction's end; alone, it happens on exit.
    """
    current = _CURRENT.get()
    if current is not None:
        yield str(current.temp_for(output))
        return
    with transaction(force=True) as alone:
        yield str(alone.temp_for(output))
