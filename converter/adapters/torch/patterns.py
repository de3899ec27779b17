"""Ops that a traced module spells as more than one call, read back as the one op.

wconv writes Keras' Average as ``torch.stack([a, b, ...]).mean(0)``: two fx nodes, a stack and its
mean over the new axis. The reader skips the stack and reads the mean as an ``average`` of the
stacked tensors.
"""

from __future__ import annotations


def stacked_for_mean(fx_node, function_name) -> list | None:
    """The tensors averaged when ``fx_node`` is the ``.mean(0)`` of a ``torch.stack([...])``, else None."""
    if fx_node.op != "call_method" or fx_node.target != "mean":
        return None
    dims = list(fx_node.args[1:]) + [fx_node.kwargs.get("dim")] if "dim" in fx_node.kwargs else list(fx_node.args[1:])
    source = fx_node.args[0]
    if dims != [0] or getattr(source, "op", None) != "call_function" or function_name(source) != "torch.stack":
        return None
    if len(source.users) != 1 or source.kwargs.get("dim", source.args[1] if len(source.args) > 1 else 0) != 0:
        return None
    return list(source.args[0])


def absorbed(fx_node, function_name) -> bool:
    """A ``torch.stack`` read together with the ``.mean(0)`` that is its only user."""
    if fx_node.op != "call_function" or function_name(fx_node) != "torch.stack" or len(fx_node.users) != 1:
        return False
    return stacked_for_mean(next(iter(fx_node.users)), function_name) is not None
