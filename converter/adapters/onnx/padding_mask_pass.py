"""The padding mask as wconv writes it (ops/padding_mask.py), read back as the one op:
``Expand(Unsqueeze(Not(Equal(mask, 0)), [1]), [1, T, 1])``."""

from __future__ import annotations

import numpy as np

from ...ops.padding_mask import PADDING_MASK
from ...rewrite import Lifted, Match, Rule
from .wiring import Wiring


def match(wiring: Wiring, negation) -> Match | None:
    equal = wiring.producer.get(negation.input[0])
    if equal is None or equal.op_type != "Equal" or wiring.only_consumer(equal.output[0]) is not negation:
        return None
    zero = wiring.constants.get(equal.input[1])
    row = wiring.only_consumer(negation.output[0])
    if zero is None or np.size(zero) != 1 or zero.reshape(()) != 0 or row is None or row.op_type != "Unsqueeze" or \
            list(np.ravel(wiring.axes(row) if wiring.axes(row) is not None else [])) != [1]:
        return None
    expand = wiring.only_consumer(row.output[0])
    shape = wiring.constants.get(expand.input[1]) if expand is not None and expand.op_type == "Expand" else None
    if shape is None or np.ndim(shape) != 1 or len(shape) != 3 or shape[0] != 1 or shape[2] != 1 or shape[1] < 1:
        return None
    name = expand.name or expand.output[0]
    padding = PADDING_MASK.node(name, [equal.input[0]], list(expand.output), int(shape[1]))
    return Match([equal, negation, row, expand], [Lifted.of(padding)])


RULE = Rule("padding mask", ("Not",), match)
