"""Torch checkpoints as training scripts save them: found, unwrapped, said in one line; inspect agrees."""

from __future__ import annotations

import json

import pytest

from conftest import TORCH_MODELS, assert_close, run_torch
from models import batch
from test_bad_input import assert_clean_failure, wconv


def checkpoint(torch, kind: str, state: dict):
    optimizer = {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.zeros(2)}},
                 "param_groups": [{"lr": 0.1, "params": [0]}]}
    return {
        "model": lambda: {"model": state, "epoch": 3, "optimizer": optimizer},
        "model_state_dict": lambda: {"model_state_dict": state, "epoch": 3},
        "net": lambda: {"net": state, "acc": 0.91},
        "ema": lambda: {"ema": state, "step": 100},
        "state_dict": lambda: {"state_dict": state, "hyper_parameters": {"lr": 0.1}},
        "ddp": lambda: {f"module.{k}": v for k, v in state.items()},
        "compiled": lambda: {f"_orig_mod.{k}": v for k, v in state.items()},
        "ddp_in_checkpoint": lambda: {"model": {f"module.{k}": v for k, v in state.items()}, "epoch": 1},
    }[kind]()


NOTES = {"model": ["under 'model'"], "model_state_dict": ["under 'model_state_dict'"], "net": ["under 'net'"],
         "ema": ["under 'ema'"], "state_dict": ["under 'state_dict'"], "ddp": ["'module.' prefix"],
         "compiled": ["'_orig_mod.' prefix"], "ddp_in_checkpoint": ["under 'model'", "'module.' prefix"]}


@pytest.mark.parametrize("kind", [k if k in ("model_state_dict", "ddp_in_checkpoint") else  # 11 s each
                                  pytest.param(k, marks=pytest.mark.slow) for k in NOTES])
def test_checkpoints_convert_and_say_what_was_unwrapped(kind, tmp_path, torch):
    from torch_models import MLP, seeded_state

    model = MLP((7, 5, 3)).eval()
    state = seeded_state(model, seed=4)
    torch.save(checkpoint(torch, kind, state), tmp_path / "ckpt.pt")
    result = wconv("torch-to-onnx", tmp_path / "ckpt.pt", tmp_path / "out.onnx",
                   "--module", f"{TORCH_MODELS}:MLP", "--module-args", json.dumps({"sizes": [7, 5, 3]}))
    assert result.returncode == 0, result.stderr
    notes = result.stderr.strip().splitlines()
    assert all(line.startswith("wconv: note: ") for line in notes) and len(notes) == len(NOTES[kind])
    for words, line in zip(NOTES[kind], notes):
        assert words in line, line
    inspected = wconv("inspect", tmp_path / "ckpt.pt", "--json")
    assert inspected.returncode == 0, inspected.stderr
    assert sorted(t["name"] for t in json.loads(inspected.stdout)["tensors"]) == sorted(state)
    model.load_state_dict(state)
    x = batch(7)
    converted = tmp_path / "port.pt"
    assert wconv("convert", tmp_path / "ckpt.pt", converted, "--module",
                 f"{TORCH_MODELS}:MLP", "--module-args", json.dumps({"sizes": [7, 5, 3]})).returncode == 0
    with torch.no_grad():
        assert_close(model(torch.from_numpy(x)).numpy(), run_torch(converted, x))


def test_several_state_dicts_are_ambiguous_and_listed(tmp_path, torch):
    from torch_models import MLP, seeded_state

    state = seeded_state(MLP((7, 5, 3)), seed=4)
    torch.save({"model": state, "ema": state, "epoch": 2}, tmp_path / "ckpt.pt")
    for arguments in (["inspect", tmp_path / "ckpt.pt"],
                      ["torch-to-onnx", tmp_path / "ckpt.pt", tmp_path / "out.onnx", "--module", f"{TORCH_MODELS}:MLP",
                       "--module-args", json.dumps({"sizes": [7, 5, 3]})]):
        assert_clean_failure(wconv(*arguments), 2, tmp_path / "ckpt.pt", "'model'", "'ema'", "several")


def test_a_pickled_model_is_refused_with_the_fix(tmp_path, torch):
    import sys

    sys.path.insert(0, str(TORCH_MODELS.parent))
    from torch_models import MLP

    torch.save(MLP((7, 5, 3)), tmp_path / "whole.pt")
    for command in ("inspect",):
        assert_clean_failure(wconv(command, tmp_path / "whole.pt"), 2, tmp_path / "whole.pt",
                             "save model.state_dict()")
