"""Progress of long work, shown as a bar on a terminal and not at all in pipes or CI logs.

Library code reports what it does through ``steps`` (a loop over layers, nodes or tensors) and
``stage`` (one long call, such as running a model); both cost nothing unless a display is active.
The CLI activates one with ``shown`` when stderr is a terminal; migration scripts never see it.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager

_ACTIVE = contextvars.ContextVar("wconv_progress", default=None)


@contextmanager
def shown(enabled: bool):
    """Display the progress reported inside, on stderr, if ``enabled``; the bars vanish when done."""
    if not enabled:
        yield
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    display = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       console=Console(stderr=True), transient=True)
    with display:
        token = _ACTIVE.set(display)
        try:
            yield
        finally:
            _ACTIVE.reset(token)


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
