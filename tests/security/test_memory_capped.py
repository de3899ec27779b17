"""On a machine with a memory limit (``ulimit -v``, a batch scheduler's cap) wconv works within it: the parsing
child lowers its own soft limits only, a bomb is still refused, and a child that cannot be set up is never
blamed on the file."""

from __future__ import annotations

import json
import resource
import subprocess
import sys

import pytest

from conftest import ROOT
from test_bad_input import SEED_MLP, assert_clean_failure

CAP = 6_000_000 * 1024  # `ulimit -v 6000000`: soft and hard, as the shell sets them


def capped(*args, cwd=None):
    """A command in a fresh process whose address space is capped, soft and hard."""
    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP))

    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=cwd or ROOT,
                          timeout=600, preexec_fn=cap)


def test_convert_inspect_and_validate_work_under_a_cap(tmp_path):
    port = tmp_path / "seed_mlp.pt"
    converted = capped("-m", "converter", "keras-to-torch", SEED_MLP, port, "--check")
    assert converted.returncode == 0, converted.stderr
    assert "predictions match" in converted.stdout
    inspected = capped("-m", "converter", "inspect", SEED_MLP, "--json")
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["parameters"] == 64_065
    onnx_port = tmp_path / "seed_mlp.onnx"
    assert capped("-m", "converter", "keras-to-onnx", SEED_MLP, onnx_port).returncode == 0
    validated = capped("-m", "converter", "validate", SEED_MLP, onnx_port, "--json")
    assert validated.returncode == 0, validated.stderr
    assert json.loads(validated.stdout)["ok"] is True


def test_a_memory_bomb_is_still_refused_under_a_cap():
    code = ("import numpy as np\n"
            "from converter.untrusted import isolated\n"
            "from converter.errors import BadInput\n"
            "def bomb():\n"
            "    blocks = []\n"
            "    while True:\n"
            "        blocks.append(np.ones(1 << 27, np.uint8))\n"
            "try:\n"
            "    isolated(bomb, what='bomb.h5')\n"
            "except BadInput as error:\n"
            "    print(error)\n")
    done = capped("-c", code)
    assert done.returncode == 0, done.stderr
    assert "bomb.h5" in done.stdout and "refused as corrupt or hostile" in done.stdout


def test_the_childs_limits_stay_within_the_cap():
    """The child lowers its soft limits and leaves the hard ones as given."""
    code = ("import json, os, resource\n"
            "from converter import untrusted\n"
            "read, write = os.pipe()\n"
            "def report():\n"
            "    os.write(write, json.dumps([resource.getrlimit(resource.RLIMIT_AS),\n"
            "                                resource.getrlimit(resource.RLIMIT_CPU)]).encode())\n"
            "untrusted.isolated(report, what='m.h5')\n"
            "print(os.read(read, 4096).decode())\n")
    done = capped("-c", code)
    assert done.returncode == 0, done.stderr
    (soft, hard), (_, cpu_hard) = json.loads(done.stdout)
    assert hard == CAP and soft <= CAP and cpu_hard == resource.RLIM_INFINITY


def test_a_child_that_cannot_be_set_up_is_not_blamed_on_the_file(monkeypatch, tmp_path):
    from converter import untrusted
    from converter.errors import ParseSetupFailed

    def refuse(file_size):
        raise ValueError("not allowed to raise maximum limit")

    monkeypatch.setattr(untrusted, "_limit", refuse)
    with pytest.raises(ParseSetupFailed, match="could not set up .* the file was not read") as raised:
        untrusted.isolated(print, what=str(SEED_MLP))
    assert raised.value.exit_code == 70 and "malformed" not in str(raised.value)
