"""``wconv validate --html FILE``: a self-contained page with the per-layer table and an SVG plot of error."""

from __future__ import annotations

import html
import math

from .outputs import atomic_path
from .validation import Report

WIDTH, HEIGHT, MARGIN, BOTTOM = 900, 360, 50, 110  # BOTTOM: room for the layer names


def write_html(report: Report, path) -> None:
    with atomic_path(path) as temp:
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(render(report))


def render(report: Report) -> str:
    rows = "\n".join(_row(diff, diff.name == report.first_mismatch) for diff in [*report.layers, *report.outputs])
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>wconv validate</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}} td:first-child{{text-align:left}}
tr.bad{{background:#fdd}} tr.first{{background:#f88;font-weight:bold}}</style></head><body>
<h1>{html.escape(report.source)} vs {html.escape(report.target)}</h1>
<p><b>{html.escape(report.verdict)}</b>.
Inputs {html.escape(str(report.input_shapes))}, seed {report.seed}.</p>
<p>Source: {html.escape(report.loading.get("source", ""))}<br>Target: {html.escape(report.loading.get("target", ""))}</p>
<h2>Relative error per layer (log scale)</h2>
{plot(report)}
<h2>Layers and outputs</h2>
<table><tr><th>tensor</th><th>shape</th><th>max abs diff</th><th>relative</th><th>cosine</th><th>result</th></tr>
{rows}
</table></body></html>
"""


def _row(diff, first: bool) -> str:
    css = "first" if first else ("bad" if not diff.ok else "")
    result = "FIRST MISMATCH" if first else ("match" if diff.ok else "mismatch")
    return (f'<tr class="{css}"><td>{html.escape(diff.name)}</td><td>{html.escape(str(diff.shape))}</td>'
            f"<td>{diff.max_abs:.3g}</td><td>{diff.max_rel:.3g}</td><td>{diff.cosine:.6f}</td><td>{result}</td></tr>")


def plot(report: Report) -> str:
    """An inline SVG: one point per layer, the tolerance as a line."""
    diffs = report.layers or report.outputs
    if not diffs:
        return "<p>(no layers matched)</p>"
    values = [max(d.max_rel, 1e-12) for d in diffs]
    low, high = math.log10(min(values + [report.rtol]) / 10), math.log10(max(values + [report.rtol]) * 10)

    def y(value):
        return HEIGHT - BOTTOM - (math.log10(value) - low) / (high - low) * (HEIGHT - MARGIN - BOTTOM)

    step = (WIDTH - 2 * MARGIN) / max(len(values) - 1, 1)
    points = " ".join(f"{MARGIN + i * step:.1f},{y(v):.1f}" for i, v in enumerate(values))
    dots = "".join(f'<circle cx="{MARGIN + i * step:.1f}" cy="{y(v):.1f}" r="3" fill="{"#c00" if not d.ok else "#36c"}">'
                   f"<title>{html.escape(d.name)}: {d.max_rel:.3g}</title></circle>"
                   for i, (v, d) in enumerate(zip(values, diffs)))
    tolerance = y(report.rtol)
    ticks = "".join(f'<text x="{MARGIN - 4}" y="{y(10.0 ** e) + 4:.1f}" text-anchor="end" font-size="10">1e{e}</text>'
                    f'<line x1="{MARGIN}" x2="{WIDTH - MARGIN}" y1="{y(10.0 ** e):.1f}" y2="{y(10.0 ** e):.1f}" '
                    'stroke="#eee"/>' for e in range(math.ceil(low), math.floor(high) + 1))
    names = "".join(f'<text transform="translate({MARGIN + i * step:.1f},{HEIGHT - BOTTOM + 12}) rotate(30)" '
                    f'font-size="9">{html.escape(d.name[:24])}</text>' for i, d in enumerate(diffs)) \
        if len(diffs) <= 40 else ""
    return (f'<svg width="{WIDTH}" height="{HEIGHT}" xmlns="http://www.w3.org/2000/svg">{ticks}{names}'
            f'<polyline points="{points}" fill="none" stroke="#36c"/>{dots}'
            f'<line x1="{MARGIN}" x2="{WIDTH - MARGIN}" y1="{tolerance:.1f}" y2="{tolerance:.1f}" stroke="#c00" '
            f'stroke-dasharray="4"/><text x="{WIDTH - MARGIN}" y="{tolerance - 4:.1f}" text-anchor="end" '
            f'font-size="11">rtol {report.rtol:g}</text>'
            f'<text x="{MARGIN}" y="{HEIGHT - 10}" font-size="11">layers, in source order</text>'
            f'<text x="5" y="{MARGIN - 10}" font-size="11">relative error (max abs diff / largest value)</text></svg>')
