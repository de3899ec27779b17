"""Shape arithmetic folded for the model's static sizes: exporters compute reshape targets from ``Shape`` (torch.onnx
writes ShuffleNet's channel shuffle as Shape/Gather/Div/Concat/Reshape).

Every axis but the batch has a static size (``onnx.shape_inference``); the batch is axis 0. The arithmetic is
folded twice, as if the batch were 2 and then 3, with the constant folder (constants.py, its budget included):
a value equal in both runs is a constant; a Reshape target that differs only in its first entry, which is the
batch in both runs, becomes ``[-1, ...]`` (``[0, ...]`` beside another -1). If anything else would depend on the batch, nothing is folded and the
nodes are refused by name, as before.
"""

from __future__ import annotations

import numpy as np

from ...errors import BadInput
from . import constants as constants_pass

BATCHES = (2, 3)


def fold(model, nodes: list, constants: dict) -> tuple[list, dict]:
    """(the nodes and constants with the shape arithmetic folded), or both unchanged. Sizes after a Reshape whose
    target was computed are known only once that target is folded: the folding repeats until nothing changes."""
    while any(node.op_type == "Shape" for node in nodes):
        folded = _fold_once(_with(model, nodes, constants), nodes, constants)
        if folded is None:
            break
        nodes, constants = folded
    return nodes, constants


def _fold_once(model, nodes: list, constants: dict):
    sizes = _static_sizes(model)
    known = [node for node in nodes if node.op_type == "Shape" and node.input[0] in sizes]
    if not known:
        return None
    runs = []
    for batch in BATCHES:
        given = {node.output[0]: _shape_output(node, [batch, *sizes[node.input[0]][1:]]) for node in known}
        others = [node for node in nodes if not any(node is k for k in known)]
        try:
            runs.append(constants_pass.fold(others, {**constants, **given}))
        except BadInput:  # the arithmetic fails (or outgrows the budget) for this batch: it is not folded
            return None
    (remaining, first, _), (_, second, _) = runs
    folded = {name: value for name, value in second.items() if name not in constants}
    patched = _patched(remaining, first, folded)
    return None if patched is None else (remaining, {**constants, **patched})


def _with(model, nodes, constants):
    """``model`` with ``nodes`` and the small constants as initializers, for shape inference (weights stay as
    they are in the file)."""
    from onnx import numpy_helper

    copy = type(model)()
    copy.CopyFrom(model)
    del copy.graph.node[:]
    copy.graph.node.extend(nodes)
    present = {t.name for t in copy.graph.initializer}
    copy.graph.initializer.extend(numpy_helper.from_array(np.asarray(value), name) for name, value in constants.items()
                                  if name not in present and np.size(value) <= 64)
    return copy


def _static_sizes(model) -> dict:
    """value name -> its dims, for values whose every axis but the first has a static size."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # shape inference refuses some valid files; then nothing is folded
        return {}
    found = {}
    for info in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        dims = [d.dim_value if d.HasField("dim_value") else None for d in info.type.tensor_type.shape.dim]
        if dims and None not in dims[1:]:
            found[info.name] = dims
    return found


def _shape_output(node, dims) -> np.ndarray:
    attrs = {a.name: a.i for a in node.attribute}
    start, end = attrs.get("start", 0), attrs.get("end", len(dims))
    return np.array(dims[slice(start, end if end != 0 or "end" not in attrs else 0)], dtype=np.int64)


def _patched(remaining, first: dict, second: dict):
    """The folded values the remaining nodes read, batch-independent: equal in both runs, or a Reshape target
    whose first entry is the batch; None when another depends on the batch."""
    read = {name: node for node in remaining for name in node.input if name in second}
    values = {}
    for name, reader in read.items():
        one, two = np.asarray(first[name]), np.asarray(second[name])
        if one.shape == two.shape and np.array_equal(one, two):
            values[name] = two
        elif reader.op_type == "Reshape" and list(reader.input).index(name) == 1 and one.ndim == 1 and \
                one.shape == two.shape and [one[0], two[0]] == list(BATCHES) and np.array_equal(one[1:], two[1:]):
            # the batch: -1, or 0 ("as the input's") beside another -1, where 0 is not a size (allowzero=0)
            if -1 in one[1:] and any(a.name == "allowzero" and a.i for a in reader.attribute):
                return None
            values[name] = np.concatenate([[0 if -1 in one[1:] else -1], two[1:]]).astype(np.int64)
        else:
            return None
    return values
