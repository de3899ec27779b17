"""Tables for people: rich on a terminal, plain aligned text in logs and pipes; a cell is never cut.

CI logs are read at 80 columns without a terminal, and rich would cut layer names there
("batch_norma…"), the one thing a reader needs. Plain text is also linear in the number of rows,
which matters for a model of 100,000 nodes; rich measures every cell and is used only for short
tables on a terminal, with cells folded rather than cut.
"""

from __future__ import annotations

import sys

RICH_ROWS = 500  # beyond this, even a terminal gets plain text


def print_table(columns: list[str], rows: list[list[str]], title: str | None = None, marked=()) -> None:
    """Print a table; rows whose index is in ``marked`` are emphasized."""
    if sys.stdout.isatty() and len(rows) <= RICH_ROWS:
        _rich(columns, rows, title, set(marked))
        return
    out = sys.stdout
    if title:
        out.write(title + "\n")
    widths = [len(c) for c in columns]
    for row in rows:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    out.write(_line(columns, widths) + "\n" + _line(["-" * w for w in widths], widths) + "\n")
    out.writelines(_line(row, widths) + "\n" for row in rows)
    out.flush()


def _line(cells, widths) -> str:
    return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()


def _rich(columns, rows, title, marked) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for index, row in enumerate(rows):
        table.add_row(*row, style="bold red" if index in marked else None)
    Console().print(table)
