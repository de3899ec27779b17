"""A parsing child that crashes is run once more in a fresh interpreter: a fork of a process whose threads held
state (torch, TensorFlow) can crash on its own. A file that crashes the fresh one too is refused."""

from __future__ import annotations

import sys

import pytest

from converter import untrusted
from converter.errors import BadInput

HELPER = '''
import os
import signal

FORKED_FROM_THE_TEST = False  # set in the test's process; a fork inherits it, a fresh interpreter does not


def crash_when_forked(marker):
    if FORKED_FROM_THE_TEST:
        os.kill(os.getpid(), signal.SIGSEGV)
    with open(marker, "w") as handle:
        handle.write("read in a fresh interpreter")


def always_crash(marker):
    os.kill(os.getpid(), signal.SIGSEGV)
'''


@pytest.fixture
def helper(tmp_path, monkeypatch):
    (tmp_path / "crashing_parser.py").write_text(HELPER)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    import crashing_parser

    crashing_parser.FORKED_FROM_THE_TEST = True
    yield crashing_parser
    sys.modules.pop("crashing_parser", None)


def test_a_child_crashed_by_its_fork_is_run_again_fresh(helper, tmp_path):
    marker = tmp_path / "marker"
    untrusted.isolated(helper.crash_when_forked, str(marker), what="model.onnx")
    assert marker.read_text() == "read in a fresh interpreter"


def test_a_file_that_crashes_a_fresh_interpreter_too_is_refused(helper, tmp_path):
    with pytest.raises(BadInput, match=r"model.onnx: reading it failed \(signal SIGSEGV\)"):
        untrusted.isolated(helper.always_crash, str(tmp_path / "marker"), what="model.onnx")
    assert not (tmp_path / "marker").exists()


def test_a_crashed_child_prints_no_crash_dump(helper, tmp_path):
    """With faulthandler on (as pytest enables it), a crashing child is still one line: no dump."""
    import subprocess

    code = ("import faulthandler, os\n"
            "faulthandler.enable(os.fdopen(os.dup(2), 'w'))\n"  # as pytest does: a copy of stderr of its own
            "import crashing_parser\n"
            "crashing_parser.FORKED_FROM_THE_TEST = True\n"
            "from converter import untrusted\n"
            "from converter.errors import BadInput\n"
            "try:\n"
            f"    untrusted.isolated(crashing_parser.always_crash, {str(tmp_path / 'marker')!r}, what='model.onnx')\n"
            "except BadInput as error:\n"
            "    print(error)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "signal SIGSEGV" in done.stdout, done.stderr
    assert "Fatal Python error" not in done.stderr, done.stderr
