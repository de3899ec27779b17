"""Class tokens as exporters write them, read back as one node: learned rows put before a sequence.

torch.onnx writes ``torch.cat([self.class_token.expand(n, -1, -1), x], dim=1)`` as ``Concat(axis=1)`` of an
``Expand`` of the (1, k, f) parameter and ``x``. With a free batch, the Expand's target shape is arithmetic on
``Shape(x)``, which ``layout_trace.Tracer`` evaluates for batches 2 and 3; with a fixed batch, the constant folder has
already made the Expand a constant of (n, k, f) with equal rows. Where every sample gets the same rows, the Concat
becomes one ``WconvClassTokens`` node (read by ``ops/tokens.py``); anything else stays as it is, to be refused.
"""

from __future__ import annotations

import numpy as np

from .layout_trace import Tracer, Untraceable, without_dead
from .shape_pass import BATCH, BATCHES, concrete
from .wiring import Wiring, int_attr

FUSED_OP = "WconvClassTokens"


def candidates(nodes: list, constants: dict) -> bool:
    """Whether a Concat reads an Expand or a rank-3 constant (so that sizes are worth inferring for ``fuse``)."""
    expanded = {name for node in nodes if node.op_type == "Expand" for name in node.output}
    return any(node.op_type == "Concat" and any(name in expanded or np.ndim(constants.get(name)) == 3
                                                for name in node.input) for node in nodes)


def fuse(nodes: list, constants: dict, graph_outputs: set, sizes: dict) -> tuple[list, set]:
    """(``nodes`` with each class-token Concat replaced by one node, the constants the replaced nodes read). The
    tokens become a new constant named after the Concat. ``sizes``: ``shape_pass.static_sizes``."""
    from onnx import helper

    wiring = Wiring(nodes, constants, graph_outputs)
    replaced, arithmetic, consumed = {}, {}, set()
    for concat in nodes:
        if concat.op_type != "Concat" or int_attr(concat, "axis") not in (1, -2) or len(concat.input) < 2:
            continue
        *leading, value = concat.input
        dims = sizes.get(value)
        if value in constants or dims is None or len(dims) != 3:
            continue
        tracer = Tracer(wiring)
        rows = [_rows(name, wiring, tracer, dims, sizes) for name in leading]
        if any(row is None for row in rows) or len({row.shape[1] for row in rows} | {dims[2]}) != 1:
            continue
        tokens = f"{concat.name or concat.output[0]}/tokens"
        constants[tokens] = np.concatenate(rows).astype(np.float32)
        replaced[id(concat)] = helper.make_node(FUSED_OP, [value, tokens], list(concat.output),
                                               name=concat.name or concat.output[0])
        for name in leading:
            expand = wiring.producer.get(name)
            if expand is not None and expand.op_type == "Expand" and wiring.only_consumer(name) is concat:
                replaced[id(expand)] = None
                consumed.add(expand.input[0])
            elif name in constants:
                consumed.add(name)
        arithmetic.update(tracer.arithmetic)
    kept = [replaced.get(id(n), n) for n in nodes if replaced.get(id(n), n) is not None]
    consumed |= {name for n in arithmetic.values() for name in n.input if name in constants}
    return without_dead(kept, arithmetic, graph_outputs), consumed


def _rows(name: str, wiring: Wiring, tracer: Tracer, dims, sizes) -> np.ndarray | None:
    """The (k, f) rows every sample gets from ``name``: a constant (n, k, f) with equal rows for the file's batch,
    or a (1, ...) constant expanded to (batch, k, f). None for anything else."""
    constant = wiring.constants.get(name)
    if constant is not None:
        batch = concrete(dims, 0)[0] if dims[0] is not BATCH else None
        same = np.ndim(constant) == 3 and constant.shape[0] in (1, batch) and (constant == constant[:1]).all()
        return np.asarray(constant[0]) if same else None
    expand = wiring.producer.get(name)
    data = wiring.constants.get(expand.input[0]) if expand is not None and expand.op_type == "Expand" else None
    if data is None or np.ndim(data) != 3 or data.shape[0] != 1:
        return None
    shape = None
    for run in range(len(BATCHES) if BATCH in dims else 1):
        tracer.shape_of = lambda value: concrete(sizes.get(value), run)
        try:
            target = [int(size) for size in np.ravel(tracer.evaluate(expand.input[1], {}))]
            shape = np.broadcast_shapes(data.shape, tuple(target))
        except (Untraceable, ValueError):
            return None
        if shape[0] != concrete(dims, run)[0]:
            return None  # not one copy per sample
    return np.broadcast_to(data, (1, *shape[1:]))[0].copy()  # the rows as expanded, repeats included
