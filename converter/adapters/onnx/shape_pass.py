"""Shape arithmetic folded for the model's static sizes: exporters compute reshape targets from ``Shape`` (torch.onnx
writes ShuffleNet's channel shuffle as Shape/Gather/Div/Concat/Reshape).

Every axis but the batch has a static size (``onnx.shape_inference``); the batch is axis 0, or the axis that shape
inference names like an input's first. The arithmetic is
folded twice, as if the batch were 2 and then 3, with the constant folder (constants.py, its budget included):
a value equal in both runs is a constant; a Reshape target that differs only in its first entry, which is the
batch in both runs, becomes ``[-1, ...]`` (``[0, ...]`` beside another -1). A value that depends on the batch
otherwise (torch.onnx's attention reshapes to (T, N*heads, d)) stays computed, with the nodes it is computed from:
the attention pass reads those, and any left after it are refused by name.
"""

from __future__ import annotations

import numpy as np

from ...errors import BadInput
from . import constants as constants_pass

BATCHES = (2, 3)


def fold(model, nodes: list, constants: dict) -> tuple[list, dict, set]:
    """(the nodes and constants with the shape arithmetic folded, the constants the folded nodes read), or the
    nodes and constants unchanged. Sizes after a Reshape whose target was computed are known only once that target
    is folded: the folding repeats until nothing changes."""
    consumed = set()
    while any(node.op_type == "Shape" for node in nodes):
        folded = _fold_once(with_nodes(model, nodes, constants), nodes, constants)
        if folded is None:
            break
        kept = {id(node) for node in folded[0]}
        consumed |= {name for node in nodes if id(node) not in kept for name in node.input if name in constants}
        nodes, constants = folded
    return nodes, constants, consumed


def _fold_once(model, nodes: list, constants: dict):
    """(the nodes left, the constants with what folded), or None when nothing more folds."""
    sizes = static_sizes(model)
    known = [node for node in nodes if node.op_type == "Shape" and node.input[0] in sizes
             and node.doc_string != BATCH_READ]
    if not known:
        return None
    runs = []
    for run in range(len(BATCHES)):
        given = {node.output[0]: shape_output(node, list(concrete(sizes[node.input[0]], run))) for node in known}
        others = [node for node in nodes if not any(node is k for k in known)]
        try:
            runs.append(constants_pass.fold(others, {**constants, **given}))
        except BadInput:  # the arithmetic fails (or outgrows the budget) for this batch: it is not folded
            return None
    (remaining, first, _), (_, second, _) = runs
    folded = {name: value for name, value in second.items() if name not in constants}
    kept, values = _kept(nodes, remaining, first, folded)
    made, parts = _batch_sized(values, _batch_source(model))
    if len(kept) == len(nodes) and not made:
        return None
    values = {name: value for name, value in values.items() if not isinstance(value, BatchEntries)}
    return [*made, *kept], {**constants, **values, **parts}


SMALL = 64  # elements: a constant shape inference reads the values of (a shape, axes); larger ones only by shape


def with_nodes(model, nodes, constants):
    """A model of ``nodes`` for shape inference: the small constants as initializers, the others (the weights)
    declared by shape and type only, so that no weight is copied."""
    from onnx import helper, numpy_helper

    small = [numpy_helper.from_array(np.asarray(value), name) for name, value in constants.items()
             if np.size(value) <= SMALL]
    declared = {value.name for value in model.graph.input} | {tensor.name for tensor in small}
    weights = [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(np.asarray(value).dtype),
                                             np.shape(value))
               for name, value in constants.items() if name not in declared]
    graph = helper.make_graph(nodes, model.graph.name or "model", [*model.graph.input, *weights],
                              list(model.graph.output), small)
    graph.value_info.extend(model.graph.value_info)  # an exporter's own annotations (dynamo's symbolic sizes)
    copy = helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    copy.functions.extend(model.functions)
    return copy


BATCH = object()  # the batch axis, in the dims static_sizes gives
FREE_STEPS = (5, 7)  # an axis the file leaves free (a sequence length), per run, where a pass gives it a size


def concrete(dims, run: int, free: bool = False):
    """``dims`` from ``static_sizes`` as the sizes of run ``run`` (an index into BATCHES): the batch is
    BATCHES[run]; a named free axis is FREE_STEPS[run] with ``free``, else the dims have no concrete sizes
    (None)."""
    if dims is None or not free and any(isinstance(d, str) for d in dims):
        return None
    return tuple(BATCHES[run] if d is BATCH else FREE_STEPS[run] if isinstance(d, str) else int(d) for d in dims)


def element_types(model) -> dict:
    """value name -> its ONNX element type (TensorProto.FLOAT, ...), where shape inference knows it."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # shape inference refuses some valid files; then no type is known
        return {}
    found = {t.name: t.data_type for t in inferred.graph.initializer}
    for info in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        if info.type.tensor_type.elem_type:
            found[info.name] = info.type.tensor_type.elem_type
    return found


def static_sizes(model, symbolic: bool = False) -> dict:
    """value name -> its dims, for values whose every axis is static or the batch: the first axis, or an axis
    named like a graph input's first (shape inference carries that name through a time-major Transpose). With
    ``symbolic``, other named axes too, as their names (a free sequence length)."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)  # sizes through computed reshapes
    except Exception:  # shape inference refuses some valid files; then nothing is folded
        return {}
    batch_names = {dims[0].dim_param for dims in (i.type.tensor_type.shape.dim for i in model.graph.input)
                   if dims and dims[0].dim_param}
    found = {}
    for info in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        dims = [_dim(d, i, batch_names, symbolic) for i, d in enumerate(info.type.tensor_type.shape.dim)]
        if dims and None not in dims:
            found[info.name] = dims
    return found


def _dim(dim, axis: int, batch_names: set, symbolic: bool):
    if dim.HasField("dim_value"):
        return dim.dim_value
    if dim.dim_param in batch_names or axis == 0:
        return BATCH
    return dim.dim_param or None if symbolic else None


def shape_output(node, dims) -> np.ndarray:
    attrs = {a.name: a.i for a in node.attribute}
    start, end = attrs.get("start", 0), attrs.get("end", len(dims))
    return np.array(dims[slice(start, end if end != 0 or "end" not in attrs else 0)], dtype=np.int64)


def _kept(nodes, remaining, first: dict, second: dict) -> tuple[list, dict]:
    """(the nodes that stay, the folded values they read). A value that depends on the batch stays computed, and
    so does what it is computed from, back to the Shape nodes: the attention pass evaluates those per batch."""
    producer = {name: node for node in nodes for name in node.output}
    kept, values = {id(node) for node in remaining}, {}
    while True:
        readers = {}
        for node in nodes:
            if id(node) in kept:
                for name in node.input:
                    if name in second:
                        readers.setdefault(name, []).append(node)
        values = {name: _batch_free(name, users, first, second) for name, users in readers.items()}
        grown = {id(producer[name]) for name, value in values.items() if value is None} - kept
        if not grown:
            return [node for node in nodes if id(node) in kept], {k: v for k, v in values.items() if v is not None}
        kept |= grown


BATCH_READ = "wconv: the batch size, read where an Expand needs it"  # a Shape node folding leaves alone


class BatchEntries:
    """An Expand target that is the batch at some entries and constant at the others (torch.onnx's
    ``cls_token.expand(n, -1, -1)``): rewritten as the batch read from a graph input, concatenated with the
    constants, which shape inference follows where it cannot follow the Where/Equal it was computed with."""

    def __init__(self, value: np.ndarray, at: np.ndarray):
        self.value, self.at = value, at


def _batch_source(model) -> str | None:
    """A graph input whose first axis is the batch (every input shares it, as the folding assumes)."""
    initializers = {tensor.name for tensor in model.graph.initializer}
    return next((i.name for i in model.graph.input if i.name not in initializers
                 and len(i.type.tensor_type.shape.dim) > 0), None)


def _batch_sized(values: dict, source: str | None) -> tuple[list, dict]:
    """(the nodes computing each BatchEntries value: ``Slice(Shape(source), 0, 1)`` at its batch entries, its
    constants between; the constants they read)."""
    from onnx import helper

    made, parts = [], {}
    for name, value in values.items():
        if not isinstance(value, BatchEntries) or source is None:
            continue
        batch = f"{name}/batch"
        parts |= {f"{batch}/starts": np.array([0], np.int64), f"{batch}/ends": np.array([1], np.int64)}
        parts |= {f"{name}/{index}": np.array([entry], np.int64)
                  for index, (entry, at) in enumerate(zip(value.value, value.at)) if not at}
        made += [helper.make_node("Shape", [source], [f"{batch}/shape"], name=f"{batch}/shape", doc_string=BATCH_READ),
                 helper.make_node("Slice", [f"{batch}/shape", f"{batch}/starts", f"{batch}/ends"], [batch],
                                  name=batch),
                 helper.make_node("Concat", [batch if at else f"{name}/{index}" for index, at in enumerate(value.at)],
                                  [name], name=name, axis=0)]
    return made, parts


def _batch_free(name, readers, first: dict, second: dict):
    """The folded value as a constant for any batch: equal in both runs, or a Reshape target whose first entry is
    the batch, or an Expand target with the batch at some entries (BatchEntries); None when it depends on the
    batch otherwise."""
    one, two = np.asarray(first[name]), np.asarray(second[name])
    if one.shape == two.shape and np.array_equal(one, two):
        return two
    at = (one == BATCHES[0]) & (two == BATCHES[1]) if one.shape == two.shape and one.ndim == 1 else None
    if at is not None and at.any() and np.array_equal(one[~at], two[~at]) and \
            all(r.op_type == "Expand" and list(r.input).index(name) == 1 and np.ndim(first.get(r.input[0])) == one.size
                for r in readers):  # a constant of the target's rank expanded over the batch (a class token)
        return BatchEntries(two.astype(np.int64), at)
    reshape_target = all(r.op_type == "Reshape" and list(r.input).index(name) == 1 for r in readers)
    if reshape_target and one.ndim == 1 and one.shape == two.shape and [one[0], two[0]] == list(BATCHES) and \
            np.array_equal(one[1:], two[1:]):
        # the batch: -1, or 0 ("as the input's") beside another -1, where 0 is not a size (allowzero=0)
        if -1 in one[1:] and any(a.name == "allowzero" and a.i for r in readers for a in r.attribute):
            return None
        return np.concatenate([[0 if -1 in one[1:] else -1], two[1:]]).astype(np.int64)
    return None
