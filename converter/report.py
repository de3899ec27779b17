"""What the CLI prints: tables for people (rich), JSON for machines."""

from __future__ import annotations

import json

import typer

from .tables import print_table


def _json(data) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def print_notes(notes) -> None:
    """What wconv did beyond the obvious (a checkpoint unwrapped, prefixes stripped): one stderr line each."""
    for note in notes:
        typer.echo(f"wconv: note: {note}", err=True)


def print_conversion(summary: dict, report, as_json: bool) -> None:
    print_notes(summary.get("notes", []))
    if as_json:
        _json(summary)
        return
    typer.echo(f"read {summary['source']}: {summary['layers']} layers, {summary['parameters']:,} parameters")
    for output in summary["outputs"]:
        typer.echo(f"wrote {output}")
    if report is not None:
        print_validation(report, False)


def print_validation(report, as_json: bool) -> None:
    if as_json:
        _json(report.to_dict())
        return

    where = f"seed {report.seed}" if report.inputs == "seeded random" else report.inputs
    title = f"{report.source} vs {report.target}  (inputs {report.input_shapes} channels first, {where})"
    if report.layers:
        _diff_table("layer", report.layers, report.first_mismatch,
                    title=f"layer by layer (matched {report.matching}): {title}")
    _diff_table("output", report.outputs, None, title=title)
    for side, how in report.loading.items():
        typer.echo(f"{side} loaded with {how}")
    nonfinite = [diff.name for diff in report.outputs if diff.nonfinite]
    if nonfinite:
        typer.echo(f"note: the source's {', '.join(nonfinite)} hold NaN/Inf (its weights do); they are compared "
                   "as equal where both sides have the same NaN/Inf at the same place")
    typer.echo(report.verdict)


def _diff_table(kind: str, diffs, first_mismatch, title: str) -> None:
    rows, marked = [], []
    for index, diff in enumerate(diffs):
        if diff.name == first_mismatch:
            marked.append(index)
        result = "match" if diff.ok else ("FIRST MISMATCH" if diff.name == first_mismatch else "mismatch")
        rows.append([diff.name, str(diff.shape), f"{diff.max_abs:.3g}", f"{diff.max_rel:.3g}", f"{diff.cosine:.8f}",
                     result])
    print_table([kind, "shape", "max abs diff", "relative", "cosine", "result"], rows, title, marked)


def print_inspection(description: dict, as_json: bool) -> None:
    print_notes(description.get("notes", []))
    if as_json:
        _json(description)
        return
    if "unsupported" in description:
        _print_listing(description)
        return
    typer.echo(f"{description['file']} ({description['format']}), {description['parameters']:,} parameters")
    if "tensors" in description:
        print_table(["tensor", "shape", "dtype"], [[t["name"], str(tuple(t["shape"])), t["dtype"]]
                                                   for t in description["tensors"]])
        typer.echo(description["note"])
        return
    typer.echo(f"interface: {description['interface_layout'].replace('_', '-')}")
    typer.echo("inputs: " + ", ".join(_value(i) for i in description["inputs"]))
    rows = []
    for layer in description["layers"]:
        params = layer["params"] or [None]
        for index, param in enumerate(params):
            head = [layer["name"], layer["op"] + (" (fused)" if layer["fused"] else ""),
                    _shape(layer["output_shape"])] if index == 0 else ["", "", ""]
            cells = ["", "", ""] if param is None else [
                param["canonical"], f"{param['file_name']} {_shape(param['file_shape'])}",
                f"{_shape(param['canonical_shape'])} '{param['canonical_axes']}'"]
            rows.append(head + cells)
    print_table(["layer", "op", "output (canonical)", "param", "in file", "canonical"], rows)
    typer.echo("outputs: " + ", ".join(_value(o) for o in description["outputs"]))
    unknown = any(layer["output_shape"] is None or None in layer["output_shape"][1:]
                  for layer in description["layers"])
    typer.echo("N: the batch" + ("; ?: a size the file leaves free (give one with --input-shape)" if unknown else ""))


def _print_listing(description: dict) -> None:
    """A model wconv cannot convert: every layer by name and type, the unsupported ones marked."""
    rows = [[layer["name"], layer["type"], "yes" if layer["supported"] else
             "NO" + (f": {layer['problem']}" if layer["problem"] else "")] for layer in description["layers"]]
    count = sum(not layer["supported"] for layer in description["layers"])
    print_table(["layer", "type", "converts"], rows,
                f"{description['file']} ({description['format']}): {count} of {len(rows)} layers cannot be converted")


def _value(value: dict) -> str:
    text = f"{value['name']} {_shape(value['shape'])}"
    if value["canonical_shape"] != value["shape"]:
        text += f" (canonical {_shape(value['canonical_shape'])})"
    return text


def _shape(shape) -> str:
    if shape is None:
        return "?"
    return "(" + ", ".join("N" if d is None else str(d) for d in shape) + ")"


def print_port(rows: list, as_json: bool, summary: dict) -> None:
    """``wconv port``'s mapping: one row per pair (source layer, target module, shapes, layout change, reason)."""
    if as_json:
        from .porting import rows_as_dicts

        _json({**summary, "mapping": rows_as_dicts(rows)})
        return
    table = [[row.source, row.target, _shapes(row.source_shapes), _shapes(row.target_shapes), row.permutation,
              row.reason + (f"; {row.note}" if row.note else "")] for row in rows]
    print_table(["source layer", "target layer", "source shapes", "target shapes", "layout change", "reason"],
                table, title=f"{summary['source']} -> {summary['into']}")


def print_unaligned(alignment, as_json: bool) -> None:
    """What ``wconv port`` could not pair, with the candidates for each; nothing was written."""
    entries = [("source", name, "no target", found) for name, found in alignment.unmatched_source.items()]
    entries += [("target", name, "no source", found) for name, found in alignment.unmatched_target.items()]
    entries += [("target", name, "ambiguous", found) for name, found in alignment.ambiguous.items()]
    if as_json:
        _json({"paired": [[p.source, p.target, p.reason] for p in alignment.pairs],
               "unpaired": [{"side": side, "layer": name, "problem": problem, "candidates": found}
                            for side, name, problem, found in entries]})
        return
    print_table(["side", "layer", "problem", "candidates"],
                [[side, name, problem, ", ".join(found[:6]) + (" ..." if len(found) > 6 else "") or "-"]
                 for side, name, problem, found in entries],
                title=f"{len(alignment.pairs)} pairs found; not paired:")


def print_blocked(blocked: list, as_json: bool) -> None:
    """``wconv port``'s pairs whose target layer cannot compute the source's, each with what to change."""
    if as_json:
        _json({"blocked": [{"source": mine, "target": yours, "problems": found} for mine, yours, found in blocked]})
        return
    print_table(["source layer", "target layer", "cannot express"],
                [[mine, yours, "; ".join(found)] for mine, yours, found in blocked],
                title=f"{len(blocked)} pair(s) the target cannot express; nothing written:")


def _shapes(shapes: dict) -> str:
    return " ".join(f"{name}{tuple(shape)}" for name, shape in shapes.items())
