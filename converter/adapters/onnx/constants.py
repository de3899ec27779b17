"""Fold the parts of an ONNX graph that depend on constants only (exporters' shape arithmetic).

torch.onnx, for one, computes F.pad's pads with Constant/ConstantOfShape/Concat/Reshape/Slice/...
nodes. They are evaluated here with ONNX's own reference implementation, one node at a time,
so that the layers after them see plain constant inputs.

Folding runs before any op is refused, on an untrusted file, so nothing whose cost is not bounded
by its inputs' sizes runs unchecked: control flow (Loop, Scan, If) is never folded (it stays a node,
and is refused as unsupported), and the size of what a node would make is estimated from its
constant inputs first (``output_elements``) and held to ``limits.FOLD_ELEMENTS``.
"""

from __future__ import annotations

import math

import numpy as np

from ...errors import BadInput
from ...limits import FOLD_ELEMENTS

NEVER_FOLDED = {"Loop", "Scan", "If", "SequenceMap", "Resize", "Upsample", "Einsum", "RandomNormal",
                "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"}


def fold(nodes, initializers: dict) -> tuple[list, dict, set]:
    """(remaining nodes, constants including folded ones, the initializers that folding consumed)."""
    constants, consumed, remaining = dict(initializers), set(), []
    for node in nodes:
        if (sized := _sized_by_its_index(node, constants)) is not None:
            remaining.extend(sized)  # Shape arithmetic now, which shape_pass folds for the file's sizes
            constants[sized[1].input[0]] = np.asarray(constants[node.input[0]]).flat[0]
            consumed |= {node.input[0]} & set(initializers)
        elif _foldable(node, constants):
            try:
                results = evaluator(node)(*[constants[n] if n else None for n in node.input])
            except BadInput:  # over the budget: said as it is
                raise
            except Exception as error:  # the reference runtime raises many types
                raise BadInput(f"{node.op_type} '{node.name}': constant inputs could not be evaluated "
                               f"({type(error).__name__}: {error})") from None
            constants.update(zip(node.output, results))
            consumed.update(name for name in node.input if name in initializers)
        else:
            remaining.append(node)
    return remaining, constants, consumed


def _sized_by_its_index(node, constants):
    """[Shape(index), Expand(value, that shape)] for a GatherElements from a constant whose every element is one
    value, by an index computed at run time (RoBERTa's token types, gathered from a zeros buffer by positions
    counted from the ids): it gives that value wherever it reads, in the index's shape. Else None."""
    from onnx import helper

    data = constants.get(node.input[0]) if node.op_type == "GatherElements" else None
    if data is None or np.size(data) == 0 or node.input[1] in constants or not (np.asarray(data) == np.asarray(
            data).flat[0]).all():
        return None
    shape, value = f"{node.output[0]}/index_shape", f"{node.output[0]}/value"
    return [helper.make_node("Shape", [node.input[1]], [shape], name=shape),
            helper.make_node("Expand", [value, shape], list(node.output), name=node.name)]


def evaluator(node):
    """What evaluates ``node`` on its inputs' values (one call per set of values): numpy's own where onnx's reference
    is wrong (OWN), else the reference runtime; every call's output size checked against the budget first."""
    from onnx.reference import ReferenceEvaluator

    run = (lambda *values: OWN[node.op_type](node, *values)) if node.op_type in OWN else \
        (lambda *values, reference=ReferenceEvaluator(node): reference.run(
            None, {name: value for name, value in zip(node.input, values) if name}))

    def evaluate(*values):
        check_budget(node, list(values))
        with np.errstate(all="ignore"):  # a value the graph discards later (T5's log(0) cast, then Where'd away)
            return run(*values)
    return evaluate


def _gather_elements(node, data, indices) -> list:
    """onnx's reference GatherElements fails on some valid inputs (a (1, 64) table, (1, 7) indices: BERT's token types
    as torch.onnx exports them); numpy's take_along_axis is the op."""
    axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
    axis = axis + data.ndim if axis < 0 else axis
    indices = np.where(indices < 0, indices + data.shape[axis], indices)
    return [np.take_along_axis(data, indices.astype(np.int64), axis=axis)]


OWN = {"GatherElements": _gather_elements}  # evaluated here, not by onnx.reference


def _foldable(node, constants) -> bool:
    if not evaluable(node):
        return False
    return node.op_type == "Constant" or bool(node.input) and all(name in constants for name in node.input if name)


def evaluable(node) -> bool:
    """Whether wconv may evaluate ``node`` at all: no control flow, no subgraph, no randomness, standard ops only."""
    return node.op_type not in NEVER_FOLDED and node.domain in ("", "ai.onnx") and \
        not any(a.g.ByteSize() or a.graphs for a in node.attribute)


def check_budget(node, inputs) -> None:
    estimate = output_elements(node.op_type, inputs)
    if estimate > FOLD_ELEMENTS:
        raise BadInput(f"{node.op_type} '{node.name or node.output[0]}': would make {estimate} elements from "
                       f"constants (more than {FOLD_ELEMENTS}); refused before computing it")


def _elements(array) -> int:
    return int(np.size(array)) if array is not None else 0


def _values(array) -> list[int]:
    return [int(v) for v in np.asarray(array).reshape(-1)]


def output_elements(op_type: str, inputs: list) -> int:
    """An upper bound of the elements a node makes from these constant inputs."""
    present = [a for a in inputs if a is not None]
    shapes = [np.shape(a) for a in present]
    if op_type == "ConstantOfShape":
        return math.prod(max(d, 0) for d in _values(present[0])) if present else 1
    if op_type == "Expand":
        target = _values(inputs[1])
        rank = max(len(shapes[0]), len(target))
        padded = [1] * (rank - len(shapes[0])) + list(shapes[0])
        target = [1] * (rank - len(target)) + target
        return math.prod(max(a, b, 0) for a, b in zip(padded, target))
    if op_type == "Range":
        start, limit, delta = (float(np.asarray(a).reshape(-1)[0]) for a in inputs[:3])
        return max(0, math.ceil((limit - start) / delta)) if delta else FOLD_ELEMENTS + 1
    if op_type == "Tile":
        return _elements(inputs[0]) * math.prod(max(r, 0) for r in _values(inputs[1]))
    if op_type == "Pad":
        pads = _values(inputs[1]) if len(inputs) > 1 and inputs[1] is not None else []
        half = len(pads) // 2
        grown = [d + max(pads[i], 0) + max(pads[i + half], 0) if i < half else d for i, d in enumerate(shapes[0])]
        return math.prod(grown)
    if op_type in ("MatMul", "Gemm", "MatMulInteger"):
        left, right = shapes[0], shapes[1]
        batch = math.prod(np.broadcast_shapes(left[:-2], right[:-2])) if len(left) > 2 or len(right) > 2 else 1
        return batch * (left[-2] if len(left) > 1 else 1) * (right[-1] if len(right) > 1 else 1)
    if op_type == "Gather":
        return _elements(inputs[1]) * max(1, _elements(inputs[0]))
    if op_type in ("Concat", "Sum", "Mean", "Max", "Min") or not shapes:
        return sum(_elements(a) for a in present) or 1
    try:
        return max(math.prod(np.broadcast_shapes(*shapes)), max(_elements(a) for a in present))
    except ValueError:
        return sum(_elements(a) for a in present)
