"""The parsing child's memory budget grows with the data an ONNX model keeps beside itself (external data), which
the model file's own size does not count: torch.onnx's dynamo export of AlexNet is a 33 KB model and 228 MB of
weights. The growth is granted only for bytes read under external_data.py's rules; without it, what needs more
than the file's share is refused."""

from __future__ import annotations

import pytest

from converter import untrusted
from converter.errors import BadInput

BEYOND_THE_FLOOR = untrusted.MEMORY_FLOOR + (256 << 20)  # bytes of address space the child asks for


def reserve(granted: int) -> None:
    """In the child: grant ``granted`` bytes of data, then reserve more address space than the floor allows (never
    touched, so nothing is really used)."""
    import numpy as np

    untrusted.grant(granted)
    np.empty(BEYOND_THE_FLOOR, dtype=np.uint8)


def test_external_data_grows_the_childs_budget():
    untrusted.isolated(reserve, 128 << 20, what="model.onnx", file_size=0)  # 4 x 128 MB more: enough


def test_without_it_the_child_stays_within_the_files_share():
    with pytest.raises(BadInput, match="needed more memory than the file's size can justify"):
        untrusted.isolated(reserve, 0, what="model.onnx", file_size=0)
