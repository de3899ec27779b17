"""Dense networks in all six directions, through the CLI and through the library.

The truth is the source framework: it runs the source model, the target framework runs
wconv's output, both on the same seeded batch.
"""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

import converter
from converter.cli import app
from models import batch, keras_mlp, onnx_mlp
from conftest import RUNNERS, TARGET_SUFFIX, TORCH_MODELS, assert_predictions_match, run_torch_model

SHAPES = {"2000-32-1": (2000, 32, 1), "7-5-3": (7, 5, 3)}
DIRECTIONS = [("keras", "torch"), ("keras", "onnx"), ("torch", "keras"), ("torch", "onnx"),
              ("onnx", "torch"), ("onnx", "keras")]
VIA = ["cli", "library"]


def make_source(kind: str, sizes, tmp_path, keras=None, torch=None):
    """(path, module spec or None, predictions on the batch) for a seeded source model."""
    x = batch(sizes[0])
    if kind == "keras":
        model = keras_mlp(keras, sizes, activation="relu", seed=3)
        path = tmp_path / "source.h5"
        model.save(path)
        return path, None, np.asarray(model(x)), x
    if kind == "torch":
        from torch_models import MLP, seeded_state

        model = MLP(sizes, activation="tanh").eval()
        path = tmp_path / "source.pt"
        torch.save(seeded_state(model, seed=3), path)
        return path, f"{TORCH_MODELS}:MLP", run_torch_model(model, x), x, {"sizes": list(sizes), "activation": "tanh"}
    import onnx

    path = tmp_path / "source.onnx"
    onnx.save(onnx_mlp(sizes, activation="sigmoid", seed=3), path)
    return path, None, RUNNERS["onnx"](path, x), x


def convert_with(via, source, target, module, module_args, direction):
    if via == "library":
        converter.convert(source, target, module=module, module_args=module_args)
        return
    args = [f"{direction[0]}-to-{direction[1]}", str(source), str(target)]
    if module:
        args += ["--module", module, "--module-args", module_args]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("via", VIA)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("direction", DIRECTIONS, ids=[f"{a}->{b}" for a, b in DIRECTIONS])
def test_predictions_match(direction, shape, via, tmp_path, keras, torch):
    import json

    made = make_source(direction[0], SHAPES[shape], tmp_path, keras, torch)
    source, module, expected, x = made[:4]
    module_args = json.dumps(made[4]) if len(made) > 4 else None
    target = tmp_path / f"target{TARGET_SUFFIX[direction[1]]}"
    convert_with(via, source, target, module, module_args, direction)
    assert_predictions_match(expected, RUNNERS[direction[1]](target, x))
