"""RMSNorm from Keras (RMSNormalization) and from ONNX (written out), into the other frameworks, predicting the same.
(From torch: tests/test_torch_export_front_end.py.)"""

from __future__ import annotations

import numpy as np
import pytest

import converter
from conftest import TARGET_SUFFIX, assert_close
from test_sequences import run_file  # (batch, steps, features) alike in every framework


def keras_rmsnorm(keras):
    x_in = keras.Input((7, 5))
    y = keras.layers.Dense(6, name="fc")(x_in)
    y = keras.layers.RMSNormalization(epsilon=0.25, name="norm")(y)
    model = keras.Model(x_in, y)
    rng = np.random.default_rng(12)
    for layer in model.layers:
        layer.set_weights([rng.standard_normal(w.shape).astype(np.float32) for w in layer.get_weights()])
    return model


@pytest.mark.parametrize("target", ["torch", "onnx"])
def test_keras_rmsnormalization_converts_and_back(target, tmp_path, keras):
    model = keras_rmsnorm(keras)
    model.save(tmp_path / "a.keras")
    assert [(n.op, n.attrs.get("epsilon")) for n in converter.read(tmp_path / "a.keras").nodes] == \
        [("dense", None), ("rmsnorm", 0.25)]
    x = np.random.default_rng(13).standard_normal((3, 7, 5)).astype(np.float32)
    reference = np.asarray(model(x))
    out = tmp_path / f"b{TARGET_SUFFIX[target]}"
    converter.convert(tmp_path / "a.keras", out)
    assert_close(reference, run_file(target, out, x))
    module = f"{out.with_suffix('.py')}:Model" if target == "torch" else None
    converter.convert(out, tmp_path / "c.keras", module=module)  # and back: nn.RMSNorm, or ONNX's spelling
    assert_close(reference, run_file("keras", tmp_path / "c.keras", x))
