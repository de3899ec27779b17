"""What the CLI prints: tables for people (rich), JSON for machines."""

from __future__ import annotations

import json

import typer


def _console():
    from rich.console import Console

    return Console()


def _json(data) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def print_conversion(summary: dict, report, as_json: bool) -> None:
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

    console = _console()
    title = f"{report.source} vs {report.target}  (inputs {report.input_shapes}, seed {report.seed})"
    if report.layers:
        console.print(_diff_table("layer", report.layers, report.first_mismatch,
                                  title=f"layer by layer (matched {report.matching}): {title}"))
    console.print(_diff_table("output", report.outputs, None, title=title))
    for side, how in report.loading.items():
        console.print(f"{side} loaded with {how}")
    verdict = "predictions match" if report.ok else "predictions DIFFER"
    where = f"; first layer beyond tolerance: {report.first_mismatch}" if report.first_mismatch else ""
    console.print(f"{verdict} (max abs diff <= {report.atol:g} + {report.rtol:g} x largest value){where}")


def _diff_table(kind: str, diffs, first_mismatch, title: str):
    from rich.table import Table

    table = Table(title=title)
    for column in (kind, "shape", "max abs diff", "relative", "cosine", "result"):
        table.add_column(column)
    for diff in diffs:
        style = "bold red" if diff.name == first_mismatch else None
        result = "match" if diff.ok else ("FIRST MISMATCH" if diff.name == first_mismatch else "mismatch")
        table.add_row(diff.name, str(diff.shape), f"{diff.max_abs:.3g}", f"{diff.max_rel:.3g}", f"{diff.cosine:.8f}",
                      result, style=style)
    return table


def print_inspection(description: dict, as_json: bool) -> None:
    if as_json:
        _json(description)
        return
    from rich.table import Table

    console = _console()
    console.print(f"{description['file']} ({description['format']}), {description['parameters']:,} parameters")
    if "tensors" in description:
        table = Table()
        for column in ("tensor", "shape", "dtype"):
            table.add_column(column)
        for tensor in description["tensors"]:
            table.add_row(tensor["name"], str(tuple(tensor["shape"])), tensor["dtype"])
        console.print(table)
        console.print(description["note"])
        return
    console.print(f"interface: {description['interface_layout'].replace('_', '-')}")
    console.print("inputs: " + ", ".join(_value(i) for i in description["inputs"]))
    table = Table()
    for column in ("layer", "op", "output (canonical)", "param", "in file", "canonical"):
        table.add_column(column)
    for layer in description["layers"]:
        params = layer["params"] or [None]
        for index, param in enumerate(params):
            head = [layer["name"], layer["op"] + (" (fused)" if layer["fused"] else ""),
                    _shape(layer["output_shape"])] if index == 0 else ["", "", ""]
            cells = ["", "", ""] if param is None else [
                param["canonical"], f"{param['file_name']} {_shape(param['file_shape'])}",
                f"{_shape(param['canonical_shape'])} '{param['canonical_axes']}'"]
            table.add_row(*head, *cells)
    console.print(table)
    console.print("outputs: " + ", ".join(_value(o) for o in description["outputs"]))


def _value(value: dict) -> str:
    text = f"{value['name']} {_shape(value['shape'])}"
    if value["canonical_shape"] != value["shape"]:
        text += f" (canonical {_shape(value['canonical_shape'])})"
    return text


def _shape(shape) -> str:
    if shape is None:
        return "?"
    return "(" + ", ".join("N" if d is None else str(d) for d in shape) + ")"
