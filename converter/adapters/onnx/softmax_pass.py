"""Softmax and LogSoftmax spelled out, read back as the one op: what ONNX's own function bodies for them expand to
(the backend's ``*_expanded`` tests), and what exporters write when they inline them.

Softmax:    d = x - ReduceMax(x, [a], keepdims=1); e = Exp(d); Div(e, ReduceSum(e, [a], keepdims=1))
LogSoftmax: d = x - ReduceMax(x, [a], keepdims=1); Sub(d, Log(ReduceSum(Exp(d), [a], keepdims=1)))

The max is subtracted only to keep Exp finite, so it may be left out (d = x). Both reductions must be over the one
same axis and keep it; every value in between must be read only inside the match. Anything else stays as it is.
"""

from __future__ import annotations

from ...rewrite import Match, Rule
from .wiring import Wiring, int_attr


def match(wiring: Wiring, node) -> Match | None:
    """A spelled-out Softmax ending in the Div ``node``, or LogSoftmax ending in the Sub ``node``."""
    from onnx import helper

    found = _softmax(node, wiring) if node.op_type == "Div" else _log_softmax(node, wiring)
    if found is None:
        return None
    chain, x, axis, op_type = found
    return Match(chain, [helper.make_node(op_type, [x], list(node.output), name=node.name or node.output[0],
                                          axis=axis)])


RULE = Rule("softmax spelled out", ("Div", "Sub"), match)


def _softmax(div, wiring: Wiring):
    """Div(e, ReduceSum(e)) with e = Exp(d): (nodes, x, axis, "Softmax"), else None."""
    exp, total = (wiring.producer.get(name) for name in div.input)
    if not _is(exp, "Exp") or not _is(total, "ReduceSum") or total.input[0] != exp.output[0] or \
            sorted(id(n) for n in wiring.consumers.get(exp.output[0], [])) != sorted((id(div), id(total))) or \
            wiring.only_consumer(total.output[0]) is not div:
        return None
    start = _shifted(exp.input[0], wiring, {id(exp)}, _axis(total, wiring))
    return None if start is None else ([*start[0], exp, total, div], start[1], start[2], "Softmax")


def _log_softmax(sub, wiring: Wiring):
    """Sub(d, Log(ReduceSum(Exp(d)))): (nodes, x, axis, "LogSoftmax"), else None."""
    log = wiring.producer.get(sub.input[1])
    total = wiring.producer.get(log.input[0]) if _is(log, "Log") else None
    exp = wiring.producer.get(total.input[0]) if _is(total, "ReduceSum") else None
    if not _is(exp, "Exp") or exp.input[0] != sub.input[0] or wiring.only_consumer(log.output[0]) is not sub or \
            wiring.only_consumer(total.output[0]) is not log or wiring.only_consumer(exp.output[0]) is not total:
        return None
    start = _shifted(sub.input[0], wiring, {id(exp), id(sub)}, _axis(total, wiring))
    return None if start is None else ([*start[0], exp, total, log, sub], start[1], start[2], "LogSoftmax")


def _shifted(value, wiring: Wiring, readers: set, axis):
    """(the max-subtraction nodes, x, axis) for ``value`` = x - ReduceMax(x, [axis]) read only by ``readers``, or
    ([], value, axis) for ``value`` = x itself; None when the axis is not one axis kept."""
    if axis is None:
        return None
    sub = wiring.producer.get(value)
    peak = wiring.producer.get(sub.input[1]) if _is(sub, "Sub") else None
    users = {id(n) for n in wiring.consumers.get(value, [])}
    if _is(peak, "ReduceMax") and peak.input[0] == sub.input[0] and _axis(peak, wiring) == axis and \
            users == readers and value not in wiring.outputs and wiring.only_consumer(peak.output[0]) is sub:
        return [sub, peak], sub.input[0], axis
    return [], value, axis


def _axis(reduce, wiring: Wiring):
    """The one axis a reduction keeps (keepdims=1), else None."""
    axes = wiring.axes(reduce)
    return axes[0] if axes is not None and len(axes) == 1 and int_attr(reduce, "keepdims", 1) == 1 else None


def _is(node, op_type: str) -> bool:
    return node is not None and node.op_type == op_type and node.domain in ("", "ai.onnx")
