"""torch's adaptive pooling where it is a plain pool: torchvision's AlexNet/VGG AdaptiveAvgPool2d((6, 6)) or
((7, 7)), MobileNetV2's and DenseNet's F.adaptive_avg_pool2d(x, (1, 1)), and the ratios either way; windows of
varying size are refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import converter
from conftest import RUNNERS, TARGET_SUFFIX, TESTS, assert_close, run_torch_model

MODULES = TESTS / "test_adaptive_pool.py"


class AdaptiveHeads(nn.Module):
    """(N, 4, 12, 8): a (3, 2) average (windows 4 x 4), a max up to (24, 8) (rows copied), a global mean."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.pool = nn.AdaptiveAvgPool2d((3, 2))
        self.up = nn.AdaptiveMaxPool2d((24, None))
        self.head = nn.Linear(4 * 3 * 2 + 4 * 24 * 8 + 4, 2)

    def forward(self, x):
        y = torch.relu(self.conv(x))
        pooled = torch.flatten(self.pool(y), 1)
        copied = torch.flatten(self.up(y), 1)
        mean = torch.flatten(F.adaptive_avg_pool2d(y, (1, 1)), 1)
        return self.head(torch.cat([pooled, copied, mean], dim=1))


class VaryingWindows(nn.Module):
    def __init__(self):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d((5, 3))

    def forward(self, x):
        return self.pool(x)


@pytest.mark.parametrize("target", ["torch", "onnx", "keras"])
def test_adaptive_pools_that_are_plain_pools(target, tmp_path):
    from sequence_models import seeded

    model = seeded(AdaptiveHeads())
    torch.save(model.state_dict(), tmp_path / "a.pt")
    out = tmp_path / f"b{TARGET_SUFFIX[target]}"
    converter.convert(tmp_path / "a.pt", out, module=f"{MODULES}:AdaptiveHeads", input_shape=[3, 14, 10])
    x = np.random.default_rng(0).standard_normal((2, 3, 14, 10)).astype(np.float32)
    assert_close(run_torch_model(model, x), RUNNERS[target](out, x))


def test_windows_of_varying_size_are_refused(tmp_path):
    torch.save(VaryingWindows().state_dict(), tmp_path / "a.pt")
    with pytest.raises(converter.WconvError, match=r"adaptive pooling of \(12, 8\) to \(5, 3\)") as error:
        converter.convert(tmp_path / "a.pt", tmp_path / "b.onnx", module=f"{MODULES}:VaryingWindows",
                          input_shape=[4, 12, 8])
    assert error.value.exit_code == 3
