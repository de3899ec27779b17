"""What the ONNX probing rules share: the ops a value is computed from, and those ops run on probe rows.

A probing rule (padding_mask_probe.py, token_positions_probe.py) does not match an exporter's spelling: it runs the
ops a value comes from (nothing else of the model) on rows of its own, one node at a time by the constant folder's
evaluator under its size budget, and reads the value for what it is.
"""

from __future__ import annotations

import numpy as np

from .constants import evaluable, evaluator
from .wiring import Wiring


def computed_from(wiring: Wiring, mask, inputs: dict):
    """(the nodes ``mask`` is computed from, in graph order; the one graph input whose values it reads, or whose size
    alone it reads; the other inputs it reads only the sizes of), else (None, None, None)."""
    found, stack, sources, values_read = {}, [(mask, False)], set(), set()
    while stack:
        value, sized = stack.pop()  # sized: reached through a Shape (the mask reads its size, not its values)
        if value in wiring.constants or (value, sized) in found:
            continue
        if value in inputs:
            sources.add(value)
            if not sized:
                values_read.add(value)
            continue
        node = wiring.producer.get(value)
        if node is None:
            return None, None, None
        for name in node.output:
            found[(name, sized)] = node
        stack.extend((name, sized or node.op_type == "Shape") for name in node.input if name)
    if len(values_read or sources) != 1 or not all(evaluable(node) for node in found.values()):
        return None, None, None  # the other inputs it reads, it reads through their sizes: fed zeros of their shape
    source = (values_read or sources).pop()  # a value of one input's size alone (a causal mask at a free batch) too
    if any(not all(isinstance(size, int) for size in inputs[name][0][1:]) for name in sources):
        return None, None, None
    shape, dtype = inputs[source]
    if len(shape) != 2 or not isinstance(shape[1], int) or not np.issubdtype(dtype, np.integer):
        return None, None, None
    order = {id(n): i for i, n in enumerate(wiring.producer.values())}
    nodes = sorted({id(n): n for n in found.values()}.values(), key=lambda n: order[id(n)])
    return nodes, source, sorted(sources - {source})


def evaluated(nodes, source, sized, value, inputs: dict, constants: dict, rows: np.ndarray):
    """``value`` with ``source`` holding each of ``rows`` (the inputs read for their sizes alone zeros), in whole
    batches of the file's size where it has one; the rows as run (padded to whole batches); or (None, rows)."""
    shape, dtype = inputs[source]
    rows = rows.astype(dtype)
    batch = shape[0] if isinstance(shape[0], int) else len(rows)
    rows = np.concatenate([rows, rows[: (-len(rows)) % batch]])  # whole batches of the file's size
    evaluators = [evaluator(node) for node in nodes]
    results = []
    try:
        for start in range(0, len(rows), batch):
            values = {source: rows[start:start + batch],
                      **{name: np.zeros((batch, *inputs[name][0][1:]), inputs[name][1]) for name in sized}}
            for node, evaluate in zip(nodes, evaluators):
                values.update(zip(node.output, evaluate(*[values.get(n, constants.get(n)) for n in node.input])))
            results.append(np.asarray(values[value]))
    except Exception:  # a node the probe's values do not fit (a reshape to the file's batch): not read
        return None, rows
    return np.concatenate(results), rows
