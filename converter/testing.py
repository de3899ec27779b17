"""For test suites: ``assert_equivalent(source, target)`` fails with the per-layer table.

    from converter.testing import assert_equivalent

    def test_port():
        assert_equivalent("model.h5", "model.pt")
"""

from __future__ import annotations

from os import PathLike
from typing import Sequence

from .validation import Report, validate


def assert_equivalent(source: str | PathLike, target: str | PathLike, *, source_module: str | None = None,
                      target_module: str | None = None, source_module_args: str | dict | None = None,
                      input_shape: Sequence[int] | None = None, atol: float | None = None,
                      rtol: float | None = None, seed: int = 0) -> Report:
    """Run both models on the same seeded inputs; raise AssertionError naming the first layer that differs.

    The options are ``converter.validate``'s; the report is returned when the models match.
    """
    report = validate(source, target, source_module=source_module, target_module=target_module,
                      source_module_args=source_module_args, input_shape=input_shape, atol=atol, rtol=rtol,
                      seed=seed)
    if not report.ok:
        raise AssertionError(text_report(report))
    return report


def text_report(report: Report) -> str:
    """The per-layer and per-output comparison as plain text, first mismatch marked."""
    lines = [f"{report.source} vs {report.target}: {report.verdict}"]
    rows = [("", "tensor", "shape", "max abs diff", "relative", "cosine")]
    for diff in [*report.layers, *report.outputs]:
        mark = ">>" if diff.name == report.first_mismatch else ("!" if not diff.ok else "")
        rows.append((mark, diff.name, str(diff.shape), f"{diff.max_abs:.3g}", f"{diff.max_rel:.3g}",
                     f"{diff.cosine:.6f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)
