"""``as_strided`` as torch.onnx's dynamo exporter writes it: the tensor flattened (``Reshape [-1]``) and gathered back
with an index array (torchvision's ConvNeXt classifier exports so). Where the indices put every element back where
it was, the two nodes are the identity, and read as such.

The indices are constants in a fixed-batch file; with a free batch they are computed from the input's shape
(``Shape``/``Range``/``Mul``/``Add``), which ``layout_trace.Tracer`` evaluates for batches 2 and 3, as the other
passes do. Any other index array leaves the nodes as they are, to be refused by name.
"""

from __future__ import annotations

import numpy as np

from ...rewrite import Match, Rule
from .layout_trace import Tracer, Untraceable, indices
from .shape_pass import BATCH, BATCHES, concrete
from .wiring import Wiring, int_attr


def rule(sizes: dict) -> Rule:
    """The rule, for a graph whose values have ``sizes`` (``shape_pass.static_sizes``): each identity flat Gather,
    with its Reshape where only it reads that and the arithmetic only it read, becomes an Identity."""
    from onnx import helper

    def match(wiring: Wiring, gather) -> Match | None:
        flat = _flattened(gather, wiring)
        if flat is None or flat.input[0] not in sizes:
            return None
        tracer = Tracer(wiring)
        if not _identity(tracer, gather, sizes[flat.input[0]], sizes):
            return None
        identity = helper.make_node("Identity", [flat.input[0]], list(gather.output), name=gather.name or
                                    gather.output[0])
        chain = [flat, gather] if wiring.only_consumer(flat.output[0]) is gather else [gather]
        return Match(chain, [identity], feeding=list(tracer.arithmetic.values()))

    return Rule("as_strided as the identity", ("Gather",), match)


def candidates(nodes: list) -> bool:
    """Whether any Gather reads a Reshape (so that sizes are worth inferring for ``rule``)."""
    reshaped = {name for node in nodes if node.op_type == "Reshape" for name in node.output}
    return any(node.op_type == "Gather" and node.input[0] in reshaped for node in nodes)


def _flattened(gather, wiring):
    """The ``Reshape [-1]`` a Gather (axis 0) reads its data from, else None."""
    if gather.op_type != "Gather" or int_attr(gather, "axis", 0) != 0:
        return None
    flat = wiring.producer.get(gather.input[0])
    target = wiring.constants.get(flat.input[1]) if flat is not None and flat.op_type == "Reshape" else None
    return flat if target is not None and [int(v) for v in np.ravel(target)] == [-1] else None


def _identity(tracer, gather, dims, sizes) -> bool:
    runs = (0,) if BATCH not in dims else range(len(BATCHES))
    for run in runs:
        shape = concrete(dims, run)
        if shape is None:
            return False
        tracer.shape_of = lambda name: concrete(sizes.get(name), run)
        try:
            index, identity = tracer.evaluate(gather.input[1], {}), indices(shape)  # within the folding budget
        except Untraceable:
            return False
        if np.shape(index) != tuple(shape) or not np.array_equal(index, identity):
            return False
    return True
