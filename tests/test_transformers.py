"""transformers models, built tiny from configs with seeded weights, read through torch.export and converted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import converter
from conftest import assert_close
from sequence_models import seeded  # every weight drawn at random: LayerNorm gammas and biases far from 1 and 0

pytest.importorskip("transformers")
MODELS = Path(__file__).with_name("transformers_models.py")


def token_ids(steps, batch=3, seed=1):
    from transformers_models import VOCABULARY

    return np.random.default_rng(seed).integers(0, VOCABULARY, (batch, steps)).astype(np.int64)


def run(target, path, ids):
    if target == "keras":
        import keras

        found = keras.saving.load_model(path, compile=False)(ids)
        return [np.asarray(o) for o in (found if isinstance(found, (list, tuple)) else [found])]
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: ids})


@pytest.mark.parametrize("target", ["onnx", "keras"])
@pytest.mark.parametrize("name", ["TinyBert", "TinyDistilBert", "TinyViT"])
def test_transformers_models_convert_and_predict_the_same(name, target, tmp_path):
    """From the user's wrapper module and a state_dict, through torch.export and the attention rule."""
    import torch

    import transformers_models

    model = seeded(getattr(transformers_models, name)())
    torch.save(model.state_dict(), tmp_path / "a.pt")
    out = tmp_path / f"b.{target}"
    converter.convert(tmp_path / "a.pt", out, module=f"{MODELS}:{name}")
    x = images() if name == "TinyViT" else token_ids(transformers_models.STEPS)
    with torch.no_grad():
        expected = model(torch.from_numpy(x))
    expected = [o.numpy() for o in (expected if isinstance(expected, tuple) else [expected])]
    channels_last = target == "keras" and x.ndim == 4  # a Keras port takes images channels last
    found = run(target, out, x.transpose(0, 2, 3, 1) if channels_last else x)
    assert len(found) == len(expected)
    for reference, result in zip(expected, found):
        assert_close(reference, result)


def images(batch=2, seed=2):
    from transformers_models import IMAGE

    return np.random.default_rng(seed).standard_normal((batch, *IMAGE)).astype(np.float32)
