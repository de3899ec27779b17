"""The rule reading ``torch.stack([a, b, ...]).mean(0)`` as the ``average`` of the stacked tensors.

wconv writes Keras' Average so (ops/merge.py): two ops, a stack on a new first axis read by its mean over that
axis alone. The stack's other readers, a mean over another axis or keeping the axis leave both as they are (each
then read, or refused, by its own name).
"""

from __future__ import annotations

from ...ops import OPS
from ...rewrite import Lifted, Match, Rule

MEANS = ("mean", "torch.mean")


def _argument(node, keyword: str, position: int, default):
    if keyword in node.kwargs:
        return node.kwargs[keyword]
    return node.args[position] if len(node.args) > position else default


def match(view, mean):
    node = mean.node
    dims, keepdim = _argument(node, "dim", 1, None), _argument(node, "keepdim", 2, False)
    stack = view.op(node.args[0]) if node.args else None
    if dims not in (0, [0], (0,)) or keepdim or stack is None or stack.op_type != "torch.stack" or \
            view.only_user(stack) is not mean or _argument(stack.node, "dim", 1, 0) != 0:
        return None
    tensors = stack.node.args[0]
    if not isinstance(tensors, (list, tuple)) or not all(hasattr(tensor, "name") for tensor in tensors):
        return None
    average = OPS["average"].node(node.name, [t.name for t in tensors], list(mean.output))
    return Match([stack, mean], [Lifted.of(average)])


RULE = Rule("average of a stack", MEANS, match)
