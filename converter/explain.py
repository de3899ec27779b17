"""``wconv explain OP`` and the README's table of ops, both derived from the op table."""

from __future__ import annotations

import numpy as np

from .errors import BadInput, ShapeMismatch
from .layouts import permute
from .ops import FRAMEWORKS, OPS

EXAMPLE_SIZES = {"o": 32, "i": 2000, "h": 3, "w": 5, "m": 2, "f": 6, "k": 9, "G": 36, "D": 2, "v": 1000}


def explain(op_name: str) -> str:
    op = _op(op_name)
    lines = [f"{op.name}: {op.summary}", ""]
    header = ["", *FRAMEWORKS]
    rows = [["names", *(", ".join(op.conventions[f].names) for f in FRAMEWORKS)]]
    for param, axes in op.params.items():
        rows.append([f"{param} ({axes})", *(_param_text(op, f, param) for f in FRAMEWORKS)])
    for attr in sorted({a for f in FRAMEWORKS for a in op.conventions[f].attrs}):
        rows.append([attr, *(op.conventions[f].attrs.get(attr, "-") for f in FRAMEWORKS)])
    lines += _table(header, rows)
    lines += _example(op)
    lines += [f"note: {note}" for note in op.notes]
    return "\n".join(lines).rstrip() + "\n"


def markdown_table() -> str:
    """Every op: canonical params and each framework's names and layouts (for the README)."""
    lines = ["| op | canonical | Keras | PyTorch | ONNX |", "|---|---|---|---|---|"]
    for op in OPS.values():
        canonical = ", ".join(f"{p} `{a}`" for p, a in op.params.items()) or "-"
        cells = [_markdown_cell(op, f) for f in FRAMEWORKS]
        lines.append(f"| {op.name} | {canonical} | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


def _markdown_cell(op, framework: str) -> str:
    convention = op.conventions[framework]
    parts = [", ".join(f"`{n}`" for n in convention.names)]
    parts += [f"{name} `{axes}`" for name, axes in convention.params.values()]
    parts += [f"{key}: {value}" for key, value in convention.attrs.items()]
    return "<br>".join(parts)


ALIASES = {"linear": "dense", "gemm": "dense", "leakyrelu": "leaky_relu", "linear_activation": "identity",
           "mha": "attention"}


def _op(op_name: str):
    """The op named ``op_name``: wconv's name, an alias, or a framework's class name (``MultiHeadAttention``,
    ``nn.Conv2d``), in any case."""
    key = _normalized(op_name)
    key = ALIASES.get(key, key)
    if key in OPS:
        return OPS[key]
    claimed = {op.name for op in OPS.values() for f in FRAMEWORKS
               if key in {_normalized(name) for name in op.conventions[f].names}}
    if len(claimed) == 1:
        return OPS[claimed.pop()]
    if claimed:
        raise BadInput(f"'{op_name}' is the name of several ops: {', '.join(sorted(claimed))}; name one")
    raise BadInput(f"unknown op '{op_name}'; known: {', '.join(sorted(OPS))}")


def _normalized(name: str) -> str:
    name = name.lower().replace("-", "_")
    for prefix in ("torch.nn.functional.", "torch.nn.", "nn.", "torch.", "f."):
        name = name.removeprefix(prefix)
    return name


def _param_text(op, framework: str, param: str) -> str:
    entry = op.conventions[framework].params.get(param)
    return f"{entry[0]} ({entry[1]})" if entry else "-"


def _example(op) -> list[str]:
    """Concrete shapes for the first param, computed through the real permutation."""
    if not op.params:
        return []
    param, axes = next(iter(op.params.items()))
    canonical = np.zeros([EXAMPLE_SIZES.get(a, 4) for a in axes.split()], dtype=np.float32)
    lines = ["", "example:"]
    for framework in FRAMEWORKS:
        name, framework_axes = op.conventions[framework].params[param]
        try:
            shape = tuple(permute(canonical, axes, framework_axes).shape)
        except ShapeMismatch:  # a layout that is not a permutation (PReLU's torch weight keeps channels only)
            shape = "(see notes)"
        lines.append(f"  {framework:6} {name} {shape}  '{framework_axes}'")
    return lines


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows]]
