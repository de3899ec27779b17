"""ONNX's backend node tests (generators shipped in the onnx wheel) as conversions: each test model with its
weights frozen, converted to torch, run on the test's own inputs, compared with the test's expected outputs.

The tests feed every tensor as a graph input (a Conv's W included); a converter takes weights as initializers,
so every input but the data (the first, and float inputs shaped like it) becomes an initializer holding the
test's array. Outcomes: ``pass`` (converted and
equal within the test's tolerance), ``refused`` (exit 3: wconv says it cannot), ``mismatch`` (a wrong answer),
``error`` (anything else)."""

from __future__ import annotations

import io
import os
import contextlib
from pathlib import Path

import numpy as np


def claimed_cases():
    """The node tests whose models use an op type wconv reads."""
    from onnx.backend.test.case.node import collect_testcases

    from converter.ops import ONNX_TYPES

    with contextlib.redirect_stdout(io.StringIO()), np.errstate(all="ignore"):
        cases = collect_testcases(None)
    return [case for case in cases if case.data_sets and {n.op_type for n in case.model.graph.node} & set(ONNX_TYPES)]


def frozen(case):
    """(the model with its weights as initializers, the data inputs' arrays, the expected outputs).

    The first input is data; so is any other float input shaped exactly like it (the second operand of Add, Max,
    Concat, ...). Every other input is a weight or a parameter (Conv's W, Reshape's shape) and becomes an
    initializer holding the test's array."""
    from onnx import numpy_helper

    model = case.model.__class__()
    model.CopyFrom(case.model)
    inputs, outputs = case.data_sets[0]
    graph = model.graph
    first = np.asarray(inputs[0])
    data = [index for index, array in enumerate(inputs) if index == 0 or (
        np.asarray(array).shape == first.shape and np.asarray(array).dtype.kind == "f" == first.dtype.kind)]
    kept = [graph.input[index] for index in data]
    for index, (value, array) in enumerate(zip(list(graph.input), inputs)):
        if index not in data:
            graph.initializer.append(numpy_helper.from_array(np.asarray(array), value.name))
    del graph.input[:]
    graph.input.extend(kept)
    return model, [np.asarray(inputs[index]) for index in data], [np.asarray(o) for o in outputs]


def outcome(case, folder: Path) -> tuple[str, str]:
    """(pass | refused | mismatch | error, detail) for converting ``case`` to torch."""
    import onnx

    import converter
    from conftest import torch_generated
    from converter.errors import WconvError
    from converter.validation import compare

    model, feeds, expected = frozen(case)
    source, target = folder / f"{case.name}.onnx", folder / f"{case.name}.pt"
    onnx.save(model, source)
    try:
        converter.convert(source, target, force=True)
    except WconvError as error:
        return ("refused" if error.exit_code == 3 else "error"), f"exit {error.exit_code}: {error}"
    import torch

    try:
        with torch.no_grad():
            found = torch_generated(target)(*[torch.from_numpy(x) for x in feeds])
    except Exception as error:  # the generated module failed to run: a wconv bug
        return "error", f"{type(error).__name__}: {error}"
    found = [found] if isinstance(found, torch.Tensor) else list(found)
    if len(found) != len(expected):
        return "mismatch", f"{len(found)} outputs, expected {len(expected)}"
    for index, (want, got) in enumerate(zip(expected, found)):
        got = got.numpy()
        if want.shape != got.shape:
            return "mismatch", f"output {index}: shape {got.shape}, expected {want.shape}"
        diff = compare(f"output {index}", want.astype(np.float64), got.astype(np.float64), case.atol or 1e-7,
                       max(case.rtol or 1e-3, 1e-4))
        if not diff.ok:
            return "mismatch", f"output {index}: max abs diff {diff.max_abs:.3g}"
    return "pass", ""


def run_all(folder: Path) -> dict:
    """name -> (outcome, detail) for every claimed case."""
    os.environ.setdefault("WCONV_NO_PROGRESS", "1")
    return {case.name: outcome(case, folder) for case in claimed_cases()}
