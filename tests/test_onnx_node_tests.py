"""ONNX's own backend node tests (shipped as generators in the onnx wheel): every valid model that uses an op
wconv claims is read, or refused as unsupported (exit 3), never called bad input (exit 2) or a crash (70)."""

from __future__ import annotations

import os

import pytest


def node_test_models():
    import onnx  # noqa: F401
    from onnx.backend.test.case.node import collect_testcases

    from converter.ops import ONNX_TYPES

    with open(os.devnull, "w"):
        cases = collect_testcases(None)
    return [case for case in cases if {n.op_type for n in case.model.graph.node} & set(ONNX_TYPES)]


@pytest.mark.slow  # about a minute on 2 cores
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_valid_node_test_models_are_never_bad_input(tmp_path):
    import onnx

    import converter
    from converter.errors import WconvError

    cases = node_test_models()
    assert len(cases) > 500
    wrong = []
    read = 0
    for case in cases:
        path = tmp_path / f"{case.name}.onnx"
        onnx.save(case.model, path)
        try:
            converter.read(path)
            read += 1
        except WconvError as error:
            if error.exit_code != 3:
                wrong.append(f"{case.name}: exit {error.exit_code}: {error}")
        path.unlink()
    assert not wrong, "\n".join(wrong[:20])
    assert read > 100
