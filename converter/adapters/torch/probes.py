"""What the torch probing folds share (padding_masks.py, token_positions.py): the one input a value reads, and the
value run on rows of one's own, the ops it comes from alone (the model never sees the probe's rows).

The ONNX twin is ``adapters/onnx/probes.py``.
"""

from __future__ import annotations

from ...frameworks import require
from .computed_weights import ancestors
from .static_shapes import inputs_read, recorded_run


def read_input(node):
    """The one input (placeholder) whose values ``node`` reads, through anything but its sizes; else None."""
    read = inputs_read(node) if hasattr(node, "op") else set()
    return read.pop() if len(read) == 1 else None


def run_on_rows(traced, input_shapes, input_dtypes, index: int, rows, node):
    """Every value ``node`` is computed from, and its own, with input ``index`` holding ``rows`` (the other inputs
    zeros of their shape, 13 for a free size); None where the module rejects the rows."""
    torch = require("torch")
    inputs = [torch.from_numpy(rows).to(getattr(torch, dtype or "float32")) if position == index else
              torch.zeros((len(rows), *[13 if size is None else size for size in shape]),
                          dtype=getattr(torch, dtype or "float32"))
              for position, (shape, dtype) in enumerate(zip(input_shapes, input_dtypes))]
    try:
        return recorded_run(traced, inputs, ancestors(node) | {node})
    except Exception:  # the module's own code rejects some row: the value is not what the fold reads
        return None
