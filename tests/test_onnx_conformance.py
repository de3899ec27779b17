"""ONNX's backend node tests as conversions to torch (tests/onnx_conformance.py): every test model using an op
wconv reads converts to torch with the test's expected outputs, or is refused (exit 3). None converts to a wrong
answer, none is called bad input or crashes; the README states how many pass."""

from __future__ import annotations

import re
import warnings

import pytest
from conftest import ROOT
from onnx_conformance import run_all


@pytest.mark.slow  # 80 s on 2 cores
def test_onnx_node_tests_convert_or_are_refused(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outcomes = run_all(tmp_path)
    wrong = {name: detail for name, (kind, detail) in outcomes.items() if kind not in ("pass", "refused")}
    assert not wrong, "\n".join(f"{name}: {detail}" for name, detail in list(wrong.items())[:20])
    passed = sum(kind == "pass" for kind, _ in outcomes.values())
    stated = re.search(r"Of the (\d+) ONNX backend node tests that use an op\s+wconv reads, (\d+) convert",
                       (ROOT / "README.md").read_text())
    assert stated, "the README states the node-test figures"
    assert (int(stated[1]), int(stated[2])) == (len(outcomes), passed), "update the README's node-test figures"
