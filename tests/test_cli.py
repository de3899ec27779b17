"""The CLI as people and CI use it: exact command forms, inspect, explain, validate's exit codes."""

from __future__ import annotations

import json

import pytest

from conftest import ROOT
from test_bad_input import wconv

SEED_MLP = ROOT / "fixtures" / "seed_mlp.h5"


def test_keras_to_torch_exact_form_then_validate(tmp_path, torch):
    out = tmp_path / "out.pt"
    result = wconv("keras-to-torch", SEED_MLP, out)
    assert result.returncode == 0, result.stderr
    assert out.exists() and out.with_suffix(".py").exists()
    check = wconv("validate", SEED_MLP, out, "--json")
    assert check.returncode == 0, check.stderr
    report = json.loads(check.stdout)
    assert report["ok"], report  # within atol + rtol x max|source|
    assert "safe_mode=True" in report["loading"]["source"]
    assert "weights_only=True" in report["loading"]["target"]

    state = torch.load(out, weights_only=True)
    state["dense_1.bias"] = state["dense_1.bias"] + 0.5  # a wrong bias must be caught
    torch.save(state, out)
    broken = wconv("validate", SEED_MLP, out, "--json")
    assert broken.returncode == 1
    assert json.loads(broken.stdout)["ok"] is False


@pytest.mark.slow  # 7 to 25 s on 2 cores: the default suite stays under 10 minutes
def test_check_flag_reports_the_comparison(tmp_path):
    result = wconv("keras-to-onnx", SEED_MLP, tmp_path / "out.onnx", "--check", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["check"]["ok"] is True


def test_inspect_json_shows_both_conventions():
    result = wconv("inspect", SEED_MLP, "--json")
    assert result.returncode == 0, result.stderr
    first = json.loads(result.stdout)["layers"][0]["params"][0]
    assert (first["file_name"], first["file_shape"]) == ("kernel", [2000, 32])
    assert (first["canonical_shape"], first["canonical_axes"]) == ([32, 2000], "o i")


def test_explain_dense_answers_the_classic_question():
    result = wconv("explain", "dense")
    assert result.returncode == 0
    assert "kernel (2000, 32)  'i o'" in result.stdout and "weight (32, 2000)  'o i'" in result.stdout


def test_unknown_op_is_bad_input():
    result = wconv("explain", "transmogrify")
    assert result.returncode == 2 and "unknown op" in result.stderr


NO_TORCH_INSPECT = """
import sys
from converter.inspect import inspect_file
description = inspect_file(sys.argv[1])
assert "torch" not in sys.modules, "inspect imported torch"
print(description["parameters"], description["tensors"][0]["shape"])
"""


def test_inspect_state_dict_imports_no_torch(tmp_path, torch):
    import subprocess
    import sys

    from torch_models import MLP, seeded_state

    torch.save(seeded_state(MLP((7, 5, 3))), tmp_path / "s.pt")
    result = subprocess.run([sys.executable, "-c", NO_TORCH_INSPECT, str(tmp_path / "s.pt")], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(maxsplit=1) == [str(7 * 5 + 5 + 5 * 3 + 3), "[5, 7]\n"]


def test_inspect_refuses_a_pickled_object(tmp_path, torch):
    from test_bad_input import Pickled, assert_clean_failure

    torch.save({"model": Pickled()}, tmp_path / "evil.pt")
    assert_clean_failure(wconv("inspect", tmp_path / "evil.pt"), 2, tmp_path / "evil.pt", "refused global")


def test_explain_mha_by_any_of_its_names():
    """`wconv explain mha` (the issue's name), Keras' and torch's class names: the packing side by side."""
    for name in ("mha", "MultiHeadAttention", "nn.MultiheadAttention"):
        result = wconv("explain", name)
        assert result.returncode == 0, result.stderr
        assert "in_proj_weight[:E]" in result.stdout and "query kernel (e h d)" in result.stdout
