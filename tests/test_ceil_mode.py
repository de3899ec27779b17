"""MaxPool with ceil_mode (GoogLeNet's and SqueezeNet's pools): the partial windows at the end read -inf
padding, which is how the IR spells them; torch.onnx's MaxPool(ceil_mode=1) reads the same way."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import converter
from conftest import RUNNERS, TARGET_SUFFIX, TESTS, assert_close, run_torch_model


class CeilPools(nn.Module):
    """Pools after ReLU (Keras then pads with zeros, as -inf would), with odd and even sizes, h != w."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(4, 5, 1)
        self.pool2 = nn.MaxPool2d(2, 2, padding=1, ceil_mode=True)

    def forward(self, x):
        y = self.pool(torch.relu(self.conv(x)))
        return self.pool2(torch.relu(self.conv2(y)))


@pytest.mark.parametrize("size", [(17, 12), (16, 13)])
@pytest.mark.parametrize("target", ["torch", "onnx", "keras"])
def test_max_pool_ceil_mode(target, size, tmp_path):
    from sequence_models import seeded

    model = seeded(CeilPools())
    x = np.random.default_rng(0).standard_normal((2, 3, *size)).astype(np.float32)
    torch.save(model.state_dict(), tmp_path / "a.pt")
    out = tmp_path / f"b{TARGET_SUFFIX[target]}"
    converter.convert(tmp_path / "a.pt", out, module=f"{TESTS / 'test_ceil_mode.py'}:CeilPools", input_shape=[3, *size])
    assert_close(run_torch_model(model, x), RUNNERS[target](out, x))
    torch.onnx.export(model, torch.from_numpy(x), tmp_path / "c.onnx", dynamo=False, opset_version=17,
                      input_names=["x"])
    again = tmp_path / f"d{TARGET_SUFFIX[target]}"
    converter.convert(tmp_path / "c.onnx", again)
    assert_close(run_torch_model(model, x), RUNNERS[target](again, x))


def test_average_pool_ceil_mode_counting_its_padding_is_refused(tmp_path):
    """torch divides such a pool's partial windows by a count that includes the padding but not the overflow,
    which no other framework does. Without padding (or without counting it), it converts (test_library_idioms)."""
    path = tmp_path / "m.py"
    path.write_text("from torch import nn\n\n\nclass M(nn.Sequential):\n    def __init__(self):\n        super().__init__("
                    "nn.Linear(5, 5), nn.Unflatten(1, (1, 5, 1)), nn.AvgPool2d((2, 1), padding=(1, 0), "
                    "ceil_mode=True))\n")
    model = nn.Sequential(nn.Linear(5, 5), nn.Unflatten(1, (1, 5, 1)), nn.AvgPool2d((2, 1), padding=(1, 0),
                                                                                   ceil_mode=True))
    torch.save(model.state_dict(), tmp_path / "a.pt")
    with pytest.raises(converter.WconvError, match="average pooling with ceil_mode counts its padding") as error:
        converter.convert(tmp_path / "a.pt", tmp_path / "b.onnx", module=f"{path}:M")
    assert error.value.exit_code == 3
