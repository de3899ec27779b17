"""Progress of long work: bars on a terminal; in pipes and CI logs nothing, or one line per phase on request.

Library code reports what it does through ``steps`` (a loop over layers, nodes or tensors) and
``stage`` (one long call, such as running a model, importing a framework or the limited parse of a file); both
cost nothing unless a display is active. The CLI activates one with ``shown``; migration scripts never see it.
A pipe gets nothing by default, so that stderr holds only what went wrong; ``--progress lines`` (or
``WCONV_PROGRESS=lines``) writes one line per phase there as it starts.
"""

from __future__ import annotations

import contextvars
import os
import sys
import time
from contextlib import contextmanager

_ACTIVE = contextvars.ContextVar("wconv_progress", default=None)
_STARTED = time.monotonic()  # the command's start, near enough: the CLI imports this module first
MODES = ("auto", "bar", "lines", "none")


def chosen(mode: str | None = None) -> str:
    """The display for ``mode`` (auto: bars on a terminal, else WCONV_PROGRESS or none)."""
    mode = mode or "auto"
    if mode != "auto":
        return mode
    return "bar" if sys.stderr.isatty() else os.environ.get("WCONV_PROGRESS", "none")


@contextmanager
def shown(mode: str | bool | None = "auto"):
    """Display the progress reported inside, on stderr, as ``mode`` says (a bool: bars or nothing); bars vanish
    when done."""
    mode = ("bar" if mode else "none") if isinstance(mode, bool) else chosen(mode)
    if mode not in ("bar", "lines"):
        yield
        return
    display = _lines() if mode == "lines" else _bars()
    with display:
        token = _ACTIVE.set(display)
        try:
            yield
        finally:
            _ACTIVE.reset(token)


def _bars():
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(stderr=True), transient=True, refresh_per_second=8)


class _lines:
    """One stderr line per phase as it starts, with the time since the command started: for logs."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def add_task(self, description: str, total=None):
        count = f" ({total})" if total else ""
        sys.stderr.write(f"wconv: [{time.monotonic() - _STARTED:6.1f} s] {description}{count}\n")
        sys.stderr.flush()

    def advance(self, task) -> None:
        pass

    def update(self, task, **changes) -> None:
        pass


def steps(items, description: str):
    """Iterate over ``items``, advancing a bar named ``description`` when a display is active."""
    display = _ACTIVE.get()
    if display is None:
        yield from items
        return
    items = list(items)
    task = display.add_task(description, total=len(items))
    for item in items:
        yield item
        display.advance(task)
    display.update(task, visible=False)


@contextmanager
def stage(description: str):
    """One long step without a count (running a model): an indeterminate bar while it lasts."""
    display = _ACTIVE.get()
    if display is None:
        yield
        return
    task = display.add_task(description, total=None)
    try:
        yield
    finally:
        display.update(task, total=1, completed=1, visible=False)
