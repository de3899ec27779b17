"""GELU spelled out (ONNX has no Gelu op before opset 20), read back as one Gelu node.

torch.onnx writes ``nn.GELU()`` as ``0.5 * (x * (1 + Erf(x / sqrt(2))))`` and ``nn.GELU(approximate='tanh')`` as
``0.5 * (x * (1 + Tanh(sqrt(2/pi) * (x + 0.044715 * x * (x * x)))))``; its dynamo exporter halves before the Mul
by x and writes the cube as ``Pow(x, 3)``. Either operand order of each Mul and Add matches, and the Div by sqrt(2)
may be a Mul by 1/sqrt(2). Each match becomes one ``Gelu`` node (opset 20's, with ``approximate``); anything else
stays as it is.
"""

from __future__ import annotations

import math

import numpy as np

from ...rewrite import Match, Rule
from .wiring import Wiring


def match(wiring: Wiring, node) -> Match | None:
    """The GELU around the Erf or Tanh ``node``: one Gelu (opset 20's, with ``approximate``)."""
    from onnx import helper

    found = _match_erf(node, wiring) if node.op_type == "Erf" else _match_tanh(node, wiring)
    if found is None:
        return None
    chain, x, approximate = found
    output = chain[-1].output[0]
    name = node.name.rsplit("/", 1)[0] if "/" in node.name.strip("/") else output
    return Match(chain, [helper.make_node("Gelu", [x], [output], name=name, approximate=approximate)])


RULE = Rule("GELU spelled out", ("Erf", "Tanh"), match)


def _match_erf(erf, wiring: Wiring):
    """0.5 * (x * (1 + Erf(x / sqrt(2))))."""
    scale = wiring.producer.get(erf.input[0])
    if scale is None or wiring.only_consumer(erf.input[0]) is not erf:
        return None
    if scale.op_type == "Div" and _scalar(wiring, scale.input[1], math.sqrt(2)):
        x = scale.input[0]
    elif scale.op_type == "Mul" and (x := _other_than_constant(wiring, scale, 1 / math.sqrt(2))) is not None:
        pass
    else:
        return None
    tail = _one_plus_times_x_half(erf, x, wiring)
    return None if tail is None else ([scale, erf, *tail], x, "none")


def _match_tanh(tanh, wiring: Wiring):
    """0.5 * (x * (1 + Tanh(sqrt(2/pi) * (x + 0.044715 * (x * (x * x))))))."""
    scaled = wiring.producer.get(tanh.input[0])
    inner = _other_than_constant(wiring, scaled, math.sqrt(2 / math.pi)) if _is(scaled, "Mul") else None
    total = wiring.producer.get(inner) if inner else None
    if total is None or total.op_type != "Add" or wiring.only_consumer(scaled.output[0]) is not tanh:
        return None
    for x, cubic_term in (total.input, total.input[::-1]):
        weighted = wiring.producer.get(cubic_term)
        cubed = _other_than_constant(wiring, weighted, 0.044715) if _is(weighted, "Mul") else None
        cube = _cube(wiring, wiring.producer.get(cubed) if cubed else None, x)
        tail = _one_plus_times_x_half(tanh, x, wiring) if cube is not None else None
        if tail is not None:
            return [*cube, weighted, total, scaled, tanh, *tail], x, "tanh"
    return None


def _cube(wiring: Wiring, node, x):
    """The nodes of x³ ending in ``node``: ``x * (x * x)`` (TorchScript export) or ``Pow(x, 3)`` (dynamo), or None."""
    if _is(node, "Pow") and node.input[0] == x and _scalar(wiring, node.input[1], 3.0):
        return [node]
    square = wiring.producer.get(_other(node, x)) if _is(node, "Mul") and x in node.input else None
    return [square, node] if _is(square, "Mul") and list(square.input) == [x, x] else None


def _one_plus_times_x_half(node, x, wiring: Wiring):
    """The Add(1), then Mul(x) and Mul(0.5) in either order, after ``node`` (each the only consumer of what it
    reads), or the Add(1) times ``0.5 * x`` (GPT-2's gelu_new, as written); else None. torch.onnx's TorchScript
    exporter halves last, its dynamo exporter before the Mul by x."""
    plus = wiring.only_consumer(node.output[0])
    if not _is(plus, "Add") or _other_than_constant(wiring, plus, 1.0) != node.output[0]:
        return None
    first = wiring.only_consumer(plus.output[0])
    halved_x = wiring.producer.get(_other(first, plus.output[0])) if _is(first, "Mul") else None
    if _is(halved_x, "Mul") and _other_than_constant(wiring, halved_x, 0.5) == x and \
            wiring.only_consumer(halved_x.output[0]) is first:
        return [halved_x, plus, first]
    second = wiring.only_consumer(first.output[0]) if _is(first, "Mul") else None
    if not _is(second, "Mul"):
        return None
    for times, half in ((first, second), (second, first)):
        operand = plus.output[0] if times is first else half.output[0]
        halved = times.output[0] if half is second else plus.output[0]
        if sorted(times.input) == sorted([x, operand]) and _other_than_constant(wiring, half, 0.5) == halved:
            return [plus, first, second]
    return None


def _is(node, op_type: str) -> bool:
    return node is not None and node.op_type == op_type


def _other(node, value):
    others = [name for name in node.input if name != value]
    return others[0] if len(others) == 1 else None


def _other_than_constant(wiring: Wiring, node, value: float):
    """The operand of a two-input ``node`` beside the scalar constant ``value``, or None."""
    if node is None or len(node.input) != 2:
        return None
    for constant, other in (node.input, node.input[::-1]):
        if _scalar(wiring, constant, value):
            return other
    return None


def _scalar(wiring: Wiring, name, value: float) -> bool:
    array = wiring.constants.get(name)
    return array is not None and np.size(array) == 1 and math.isclose(float(np.ravel(array)[0]), value, rel_tol=1e-6)
