"""Fold the parts of an ONNX graph that depend on constants only (exporters' shape arithmetic).

torch.onnx, for one, computes F.pad's pads with Constant/ConstantOfShape/Concat/Reshape/Slice/...
nodes. They are evaluated here with ONNX's own reference implementation, one node at a time,
so that the layers after them see plain constant inputs.
"""

from __future__ import annotations

from ...errors import BadInput


def fold(nodes, initializers: dict) -> tuple[list, dict, set]:
    """(remaining nodes, constants including folded ones, the initializers that folding consumed)."""
    from onnx.reference import ReferenceEvaluator

    constants, consumed, remaining = dict(initializers), set(), []
    for node in nodes:
        if node.op_type == "Constant" or (node.input and all(name in constants for name in node.input if name)):
            try:
                results = ReferenceEvaluator(node).run(None, {n: constants[n] for n in node.input if n})
            except Exception as error:  # the reference runtime raises many types
                raise BadInput(f"{node.op_type} '{node.name}': constant inputs could not be evaluated "
                               f"({type(error).__name__}: {error})") from None
            constants.update(zip(node.output, results))
            consumed.update(name for name in node.input if name in initializers)
        else:
            remaining.append(node)
    return remaining, constants, consumed
