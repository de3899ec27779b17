"""The rule lifting RMSNorm written out in forward() into the rmsnorm op (``ops/rmsnorm.py``).

transformers' ``LlamaRMSNorm`` (and Qwen2's, Mistral's, ...) computes, as torch.export records it::

    h = x.to(float32); h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps); y = weight * h.to(float32)

On float32 values the casts give their input, and the front end leaves them out (``aten_calls.keeps_dtype``); the
products may come in either operand order, the weight (a 1-D parameter) is optional. Anything else stays as it is,
and the reader refuses it by name.
"""

from __future__ import annotations

from ...ops.rmsnorm import RMSNORM
from ...rewrite import Lifted, Match, Rule
from .ops_view import ADD, MULTIPLY

def _product(op, one):
    """The other operand of the product ``op`` with ``one``, else None."""
    if op is None or op.op_type not in MULTIPLY or len(op.node.args) != 2 or op.node.kwargs:
        return None
    first, second = op.node.args
    return second if first is one else first if second is one else None


def match(view, rsqrt):
    shifted = view.op(rsqrt.node.args[0]) if len(rsqrt.node.args) == 1 else None
    if shifted is None or shifted.op_type not in ADD or not isinstance(shifted.node.args[1], float):
        return None
    mean = view.op(shifted.node.args[0])
    if mean is None or mean.op_type not in ("torch.mean", "mean") or list(mean.node.args[1:]) not in ([[-1], True],
                                                                                                       [-1, True]):
        return None
    square = view.op(mean.node.args[0])
    if square is None or not square.op_type.startswith("aten.pow.Tensor_Scalar") or square.node.args[1] != 2:
        return None
    h = square.node.args[0]
    product = view.only_user(rsqrt)
    if _product(product, rsqrt.node) is not h:
        return None
    ops, last = [square, mean, shifted, rsqrt, product], product
    params, weighted = {}, view.only_user(last)
    weight = view.op(_product(weighted, last.node)) if weighted is not None else None
    if weight is not None and weight.op_type == "get_attr" and view.constants.get(weight.node.target) is not None \
            and view.constants[weight.node.target].ndim == 1 and list(weight.node.users) == [weighted.node]:
        params["scale"] = view.constants[weight.node.target]
        ops += [weight, weighted]
        last = weighted
    name = rsqrt.node.meta.get("module_path") or last.name
    node = RMSNORM.node(name, [h.name], list(last.output), params, shifted.node.args[1])
    return Match(ops, [Lifted.of(node)])


RULE = Rule("RMSNorm written out", ("aten.rsqrt.default",), match)
