"""Adaptive average pooling as torch.onnx's dynamo exporter decomposes it, read back as the one op.

For an input whose bins all hold the same number of values (AlexNet's ``AdaptiveAvgPool2d((6, 6))`` on a 2 x 3 map,
each bin one value), the exporter writes: ``Transpose(x, [2, 3, 0, 1])`` (the spatial axes first),
``GatherND`` of constant indices shaped (out_h, k_h, out_w, k_w, 2) (every bin's values), ``Transpose([4, 5, 0, 1,
2, 3])`` (the batch and channels first again), then ``ReduceMean`` over the two window axes. Where the indices are
exactly torch's bins for the input's size (bin i of n covers floor(i * size / n) to ceil((i + 1) * size / n)), the
four nodes become the pooling it is for that size (``ops/adaptive_pool.adaptive``), lifted into IR nodes; any other
indices leave the nodes as they are, to be refused by name.
"""

from __future__ import annotations

import math

import numpy as np

from ...ops.adaptive_pool import adaptive
from ...rewrite import Lifted, Match, Rule
from .shape_pass import BATCH
from .wiring import Wiring, int_attr, is_transpose

def candidates(nodes: list) -> bool:
    """Whether any GatherND is there to match (so that sizes are worth inferring for ``rule``)."""
    return any(node.op_type == "GatherND" for node in nodes)


def rule(sizes: dict) -> Rule:
    """The rule, for a graph whose values have ``sizes`` (``shape_pass.static_sizes``)."""
    def match(wiring: Wiring, gather) -> Match | None:
        chain = _chain(gather, wiring)
        if chain is None:
            return None
        first, _, _, mean = chain
        dims = sizes.get(first.input[0])
        output_size = _bins(wiring.constants[gather.input[1]], dims)
        if output_size is None:
            return None
        pooled = adaptive("avg", mean.name or mean.output[0], [first.input[0]], list(mean.output),
                          (None, *dims[1:]), output_size)
        return Match(list(chain), [Lifted.of(*pooled)])

    return Rule("adaptive average pool decomposed", ("GatherND",), match)


def _chain(gather, wiring: Wiring):
    """(Transpose, GatherND, Transpose, ReduceMean) around ``gather``, each read only by the next; else None."""
    if gather.op_type != "GatherND" or int_attr(gather, "batch_dims", 0) != 0 or gather.input[1] not in \
            wiring.constants or np.shape(wiring.constants[gather.input[1]])[-1:] != (2,):
        return None
    first = wiring.producer.get(gather.input[0])
    after = wiring.only_consumer(gather.output[0])
    mean = wiring.only_consumer(after.output[0]) if is_transpose(after, [4, 5, 0, 1, 2, 3]) else None
    if not is_transpose(first, [2, 3, 0, 1]) or wiring.only_consumer(first.output[0]) is not gather or \
            mean is None or mean.op_type != "ReduceMean" or int_attr(mean, "keepdims", 1) != 0 or \
            sorted(a % 6 for a in (wiring.axes(mean) or [])) != [3, 5]:
        return None
    return first, gather, after, mean


def _bins(indices: np.ndarray, dims) -> list[int] | None:
    """The output size when ``indices`` (out_h, k_h, out_w, k_w, 2) are torch's adaptive bins for an input of
    ``dims`` (batch, channels, h, w), every bin holding k_h x k_w values; else None."""
    if dims is None or len(dims) != 4 or any(d is BATCH or isinstance(d, str) for d in dims[2:]) or \
            np.ndim(indices) != 5:
        return None
    out_h, k_h, out_w, k_w, _ = indices.shape
    rows, columns = _windows(int(dims[2]), out_h, k_h), _windows(int(dims[3]), out_w, k_w)
    if rows is None or columns is None:
        return None
    expected = np.stack(np.broadcast_arrays(rows[:, :, None, None], columns[None, None, :, :]), axis=-1)
    return [out_h, out_w] if np.array_equal(indices, expected) else None


def _windows(size: int, bins: int, width: int) -> np.ndarray | None:
    """(bins, width): the input positions of each of torch's adaptive bins, when every bin holds ``width``."""
    starts = [math.floor(i * size / bins) for i in range(bins)]
    ends = [math.ceil((i + 1) * size / bins) for i in range(bins)]
    if any(end - start != width for start, end in zip(starts, ends)):
        return None
    return np.array([range(start, start + width) for start in starts], dtype=np.int64)
