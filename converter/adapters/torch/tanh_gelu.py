"""The rule lifting GELU's tanh approximation, written out as arithmetic, into the gelu op (``approximate='tanh'``).

GPT-2's ``gelu_new`` (transformers' ``NewGELUActivation``) and many hand-written models compute

    0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x ** 3)))

which torch.export records op by op. The products and sums may come in either operand order; the constants must be
those of the formula (within float32 rounding), or the ops stay as they are and the reader refuses them by name.
"""

from __future__ import annotations

import math

from ...ops.activations import ACTIVATIONS
from ...rewrite import Lifted, Match, Rule
from .ops_view import ADD, MULTIPLY

POWER = ("aten.pow.Tensor_Scalar", "pow", "torch.pow", "operator.pow")
TANH = ("torch.tanh", "tanh", "aten.tanh.default")
SQRT_2_OVER_PI, CUBIC = math.sqrt(2 / math.pi), 0.044715


def _is(number, expected: float) -> bool:
    return isinstance(number, (int, float)) and not isinstance(number, bool) and \
        abs(number - expected) <= 1e-6 * abs(expected)


def _by_constant(view, value, types, constant: float):
    """(the op, its other operand) where ``value`` is ``other (op) constant`` in either order, else (None, None)."""
    op = view.op(value)
    if op is None or op.op_type not in types or len(op.node.args) != 2 or op.node.kwargs:
        return None, None
    first, second = op.node.args
    if _is(second, constant):
        return op, first
    if _is(first, constant):
        return op, second
    return None, None


def _operands(view, value, types):
    op = view.op(value)
    if op is None or op.op_type not in types or len(op.node.args) != 2 or op.node.kwargs:
        return None, ()
    return op, op.node.args


def match(view, tanh):
    if len(tanh.node.args) != 1 or tanh.node.kwargs:
        return None
    scaled, inner = _by_constant(view, tanh.node.args[0], MULTIPLY, SQRT_2_OVER_PI)
    total, terms = _operands(view, inner, ADD) if scaled else (None, ())
    if total is None:
        return None
    for x, cubic_term in (terms, terms[::-1]):
        cubic, cube = _by_constant(view, cubic_term, MULTIPLY, CUBIC)
        power, base = _by_constant(view, cube, POWER, 3.0) if cubic else (None, None)
        if power is not None and base is x:
            break
    else:
        return None
    one_plus = view.only_user(tanh)
    if one_plus is None or _by_constant(view, one_plus.node, ADD, 1.0)[1] is not tanh.node:
        return None
    product = view.only_user(one_plus)
    found = _operands(view, product.node, MULTIPLY) if product is not None else (None, ())
    half = [_by_constant(view, operand, MULTIPLY, 0.5) for operand in found[1] if operand is not one_plus.node]
    if len(half) != 1 or half[0][1] is not x:
        return None
    name = tanh.node.meta.get("module_path") or product.name  # the module computing it (GPT-2's mlp.act)
    gelu = ACTIVATIONS["gelu"].node(name, [x.name], list(product.output), approximate="tanh")
    return Match([half[0][0], power, cubic, total, scaled, tanh, one_plus, product], [Lifted.of(gelu)])


RULE = Rule("GELU, tanh approximation, written out", TANH, match)
