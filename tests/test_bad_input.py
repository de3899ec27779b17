"""Bad input: a one-line error naming the file, a documented exit code, no traceback, no output."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from conftest import ROOT, TORCH_MODELS

SEED_MLP = ROOT / "fixtures" / "seed_mlp.h5"


def wconv(*args, cwd=None):
    """The CLI in a fresh process. The timeout only turns a hang into a failure; no test asserts speed."""
    return subprocess.run([sys.executable, "-m", "converter", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=600)


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_clean_failure(result, code, source, *words):
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, result.stderr
    assert len(lines) == 1 and lines[0].startswith("wconv: error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert lines[0].count(str(source)) == 1, "the file is named exactly once"
    for word in words:
        assert word in lines[0], lines[0]


class Pickled:
    """Not a tensor: torch.save pickles this class by reference."""


def make_bad(kind: str, folder, keras=None, torch=None):
    if kind == "text":
        path = folder / "model.h5"
        path.write_text("this is not a model\n")
    elif kind == "truncated_h5":
        path = folder / "model.h5"
        data = SEED_MLP.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "corrupt_onnx":
        path = folder / "model.onnx"
        path.write_bytes(b"\x08\x07" + bytes(range(256)) * 4)
    elif kind == "pickled_object":
        path = folder / "model.pt"
        torch.save({"model": Pickled()}, path)
    elif kind == "lambda":
        inputs = keras.Input((7,))
        x = keras.layers.Dense(5, name="dense")(inputs)
        x = keras.layers.Lambda(lambda t: t * 2.0, name="double")(x)
        x = keras.layers.UnitNormalization(name="norm")(x)
        path = folder / "model.keras"
        keras.Model(inputs, x).save(path)
    return path


CASES = {
    "text": (2, ["not a Keras"]),
    "truncated_h5": (2, ["unreadable HDF5"]),
    "corrupt_onnx": (2, ["not a readable ONNX"]),
    "pickled_object": (2, ["weights_only", "never falls back"]),
    "lambda": (3, ["'double' (Lambda", "'norm' (UnitNormalization)", "2 unsupported"]),
}


@pytest.mark.parametrize("kind", CASES)
def test_bad_input_fails_cleanly(kind, tmp_path, keras, torch):
    source = make_bad(kind, tmp_path, keras, torch)
    before = digest(source)
    result = wconv("convert", source, tmp_path / "out.pt")
    code, words = CASES[kind]
    assert_clean_failure(result, code, source, *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == [source.name], "partial output left behind"
    assert digest(source) == before


def test_missing_file(tmp_path):
    result = wconv("keras-to-torch", tmp_path / "absent.h5", tmp_path / "out.pt")
    assert_clean_failure(result, 2, tmp_path / "absent.h5", "no such file")


def test_wrong_direction_names_the_real_format(tmp_path):
    result = wconv("onnx-to-torch", SEED_MLP, tmp_path / "out.pt")
    assert_clean_failure(result, 2, SEED_MLP, "is a keras file, not onnx")


def test_state_dict_needs_a_module(tmp_path, torch):
    torch.save({"w": torch.zeros(2, 3)}, tmp_path / "s.pt")
    result = wconv("torch-to-onnx", tmp_path / "s.pt", tmp_path / "out.onnx")
    assert_clean_failure(result, 2, tmp_path / "s.pt", "--module")


def test_a_module_file_imports_the_modules_beside_it_and_its_failure_is_bad_input(tmp_path, torch):
    """``--module nets/model.py:Net`` imports what sits beside it (as ``python nets/model.py`` would); a file that
    fails as it is imported is the user's to fix: one line, exit 2, never wconv's internal error."""
    nets = tmp_path / "nets"
    nets.mkdir()
    (nets / "blocks_of_mine.py").write_text("from torch import nn\n\n\ndef block():\n    return nn.Linear(4, 3)\n")
    (nets / "model.py").write_text("from torch import nn\nfrom blocks_of_mine import block\n\n\nclass Net(nn.Module):\n"
                                   "    def __init__(self):\n        super().__init__()\n        self.fc = block()\n\n"
                                   "    def forward(self, x):\n        return self.fc(x)\n")
    torch.save({"fc.weight": torch.ones(3, 4), "fc.bias": torch.zeros(3)}, tmp_path / "s.pt")
    result = wconv("torch-to-onnx", tmp_path / "s.pt", tmp_path / "out.onnx", "--module", f"{nets / 'model.py'}:Net")
    assert result.returncode == 0, result.stderr
    (nets / "broken.py").write_text("import a_module_nobody_has\n")
    result = wconv("torch-to-onnx", tmp_path / "s.pt", tmp_path / "b.onnx", "--module", f"{nets / 'broken.py'}:Net")
    assert_clean_failure(result, 2, tmp_path / "s.pt", "importing", "ModuleNotFoundError", "a_module_nobody_has")
    assert not (tmp_path / "b.onnx").exists()
    (nets / "exits.py").write_text("import sys\n\nsys.exit(5)\n")  # a script's argparse, say
    result = wconv("torch-to-onnx", tmp_path / "s.pt", tmp_path / "b.onnx", "--module", f"{nets / 'exits.py'}:Net")
    assert_clean_failure(result, 2, tmp_path / "s.pt", "importing", "SystemExit")


@pytest.mark.parametrize("problem", ["extra", "missing", "shape"])
def test_weights_that_do_not_fit_are_errors(problem, tmp_path, torch):
    from torch_models import MLP, seeded_state

    state = seeded_state(MLP((7, 5, 3)))
    if problem == "extra":
        state["layers.9.weight"] = torch.ones(3, 3)
    elif problem == "missing":
        del state["layers.1.bias"]
    else:
        state["layers.0.weight"] = torch.ones(5, 6)
    torch.save(state, tmp_path / "s.pt")
    result = wconv("torch-to-onnx", tmp_path / "s.pt", tmp_path / "out.onnx", "--module", f"{TORCH_MODELS}:MLP")
    expected = {"extra": "layers.9.weight", "missing": "layers.1.bias", "shape": "'layers.0.weight' is (5, 6) in the file but (5, 7)"}
    assert_clean_failure(result, 2, tmp_path / "s.pt", expected[problem])
    assert not (tmp_path / "out.onnx").exists()


def test_existing_output_needs_force(tmp_path):
    out = tmp_path / "out.onnx"
    out.write_text("keep me")
    result = wconv("keras-to-onnx", SEED_MLP, out)
    assert_clean_failure(result, 4, out, "--force")
    assert out.read_text() == "keep me"
    assert wconv("keras-to-onnx", SEED_MLP, out, "--force").returncode == 0
    assert out.read_bytes() != b"keep me"


def test_torch_output_checks_the_generated_source_too(tmp_path):
    (tmp_path / "out.py").write_text("# mine")
    result = wconv("keras-to-torch", SEED_MLP, tmp_path / "out.pt")
    assert_clean_failure(result, 4, tmp_path / "out.py", "exists")
    assert not (tmp_path / "out.pt").exists()


def test_outputs_get_the_usual_permissions(tmp_path):
    import os
    import stat

    assert wconv("keras-to-onnx", SEED_MLP, tmp_path / "out.onnx").returncode == 0
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "out.onnx").stat().st_mode) == 0o666 & ~mask


def test_output_equal_to_input_is_refused(tmp_path):
    source = tmp_path / "model.h5"
    source.write_bytes(SEED_MLP.read_bytes())
    before = digest(source)
    result = wconv("convert", source, source, "--force")
    assert_clean_failure(result, 4, source, "is the input")
    assert digest(source) == before


def test_debug_shows_the_traceback(tmp_path):
    result = wconv("--debug", "keras-to-torch", tmp_path / "absent.h5", tmp_path / "out.pt")
    assert result.returncode == 2 and "Traceback" in result.stderr
