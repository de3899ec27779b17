"""A torch port an earlier wconv generated carries its helper class as that version wrote it; today's reader reads it
as the same layer (former_helpers.py), and nothing else that looks like it."""

from __future__ import annotations

import numpy as np
import pytest

import converter
from conftest import assert_close, run_inputs
from converter.adapters.torch.cells import EXPLICIT_ATTENTION
from converter.adapters.torch.former_helpers import FORMER


@pytest.fixture(scope="module")
def causal_port(tmp_path_factory):
    """A Keras causal self-attention with key_dim 3 of 5 features: torch gets ExplicitAttention."""
    keras = pytest.importorskip("keras")
    folder = tmp_path_factory.mktemp("port")
    x_in = keras.Input((6, 5))
    y = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3, name="self")(x_in, x_in, use_causal_mask=True)
    model = keras.Model(x_in, keras.layers.Dense(4, name="head")(y))
    for weight in model.weights:
        weight.assign(np.random.default_rng(len(weight.path)).standard_normal(weight.shape).astype("float32"))
    model.save(folder / "a.keras")
    converter.convert(folder / "a.keras", folder / "b.pt")
    assert EXPLICIT_ATTENTION.strip() in (folder / "b.py").read_text()
    return folder


@pytest.mark.parametrize("index", range(len(FORMER["ExplicitAttention"])))
def test_an_earlier_wconvs_explicit_attention_reads_as_the_attention_it_computes(causal_port, index, tmp_path):
    text = (causal_port / "b.py").read_text().replace(EXPLICIT_ATTENTION.strip(),
                                                      FORMER["ExplicitAttention"][index].strip())
    (tmp_path / "b.py").write_text(text)
    (tmp_path / "b.pt").write_bytes((causal_port / "b.pt").read_bytes())
    graph = converter.read(tmp_path / "b.pt", module=f"{tmp_path / 'b.py'}:Model")
    assert [node.op for node in graph.nodes] == ["attention", "dense"] and graph.nodes[0].attrs["causal"]
    x = np.random.default_rng(3).standard_normal((2, 6, 5)).astype("float32")
    assert_close(run_inputs("keras", causal_port / "a.keras", [x])[0], run_inputs("torch", tmp_path / "b.pt", [x])[0])


def test_an_edited_explicit_attention_is_not_read_as_wconvs(causal_port, tmp_path):
    """One character off any text wconv wrote: not wconv's helper, so read as any module, through its ops, whose
    spelling (heads split by unflatten) the attention rule does not read: refused by name, never read as the
    helper with its other scale."""
    text = (causal_port / "b.py").read_text().replace("key_dim ** -0.5 if scale", "key_dim ** -0.25 if scale")
    assert text != (causal_port / "b.py").read_text()
    (tmp_path / "b.py").write_text(text)
    (tmp_path / "b.pt").write_bytes((causal_port / "b.pt").read_bytes())
    with pytest.raises(converter.errors.Unsupported, match="scaled_dot_product_attention"):
        converter.read(tmp_path / "b.pt", module=f"{tmp_path / 'b.py'}:Model")