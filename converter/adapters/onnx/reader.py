"""``.onnx`` -> IR. External data is never loaded automatically."""

from __future__ import annotations

from os import PathLike
from ...progress import steps
from ...errors import BadInput, Unsupported, UnsupportedLayers, WeightMismatch, about, first_line, quoted
from ...frameworks import require
from ... import rewrite, untrusted
from ...rewrite import Lifted
from ...ir import Graph, Value
from ...ops import ONNX_TYPES
from ...shapes import Shapes, finish
from . import adaptive_pool_pass, attention_pass, constants as constants_pass, gelu_pass, groupnorm_pass
from . import layernorm_pass, padding_mask_pass, recurrent_pass, rmsnorm_pass
from . import flattened_dense_pass, padding_mask_probe, shape_pass, softmax_pass, strided_pass, token_rows_pass
from . import rotary_pass, token_positions_probe, tokens_pass
from . import transpose_pass
from . import external_data, tensors
from .context import OnnxContext
from .wiring import Wiring

# Rules lifting what exporters spell out op by op into the one op (rewrite.py applies them, in this order), after
# moving tf2onnx's NHWC Transposes above its preprocessing arithmetic.
def spelled_out(types: dict) -> tuple:
    """The rules of what exporters spell out; ``types``: element types, for the RMSNorm of a cast."""
    return (transpose_pass.RULE, layernorm_pass.RULE, rmsnorm_pass.rule(types), groupnorm_pass.RULE, gelu_pass.RULE,
            softmax_pass.RULE, padding_mask_pass.RULE)
# Recurrent ops with the time-major plumbing exporters put around them, read as batch-first layers.
RECURRENT = (recurrent_pass.ZERO_STATES, recurrent_pass.DEAD_PLUMBING, recurrent_pass.BATCH_FIRST)


def read(path: str | PathLike) -> Graph:
    """Read an ``.onnx`` file into the canonical IR (external data under rules, constants folded within a budget)."""
    with untrusted.malformed_input(path):
        untrusted.open_input(path)  # parsed once in a limited child first
        with about(path):
            return _read(path)


def load_model(path):
    """The ModelProto with any external initializers read in (external_data.py), refusing files that are not
    ONNX, break the external data rules or need a newer onnx."""
    onnx = require("onnx")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # protobuf raises DecodeError and friends
        raise BadInput(f"not a readable ONNX model ({type(error).__name__}: {first_line(error)})") from None
    if not model.graph.node and not model.graph.initializer:
        raise BadInput("not an ONNX model (no graph)")
    # torch.onnx's weights beside the model (and wconv's past 2 GiB), under rules; the limited child's memory grown
    # by their share first, as if they were in the file
    external_bytes = external_data.inline(model, path, before_reading=untrusted.grant)
    tensors.check_declared_sizes(model.graph, path, external_bytes)
    known = onnx.defs.onnx_opset_version()
    if _opset(model) > known:
        raise Unsupported(f"opset {_opset(model)} is newer than the installed onnx {onnx.__version__} knows "
                          f"(up to {known}); upgrade onnx to read it")
    return model


def _read(path) -> Graph:
    from onnx import numpy_helper

    model = load_model(path)
    initializers = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    inputs = [Value(i.name, _shape(i)) for i in model.graph.input if i.name not in initializers]
    refuse_reserved(model.graph.node)
    onnx_nodes, constants, consumed = constants_pass.fold(list(model.graph.node), initializers)
    onnx_nodes, constants, folded = shape_pass.fold(model, onnx_nodes, constants)  # Shape arithmetic, per sizes
    consumed |= folded
    wanted = attention_pass.candidates(onnx_nodes) or strided_pass.candidates(onnx_nodes) or \
        tokens_pass.candidates(onnx_nodes, constants) or adaptive_pool_pass.candidates(onnx_nodes) or \
        token_rows_pass.candidates(onnx_nodes) or flattened_dense_pass.candidates(onnx_nodes)
    sizes = shape_pass.static_sizes(shape_pass.with_nodes(model, onnx_nodes, constants), symbolic=True) \
        if wanted else {}  # before fusing makes non-ONNX nodes
    outputs = {o.name for o in model.graph.output}
    # dynamo's as_strided, a ViT's class token, dynamo's adaptive pool; then attention, whose moves are read whole
    # before another rule moves a Transpose through a bias; then what exporters spell out, and recurrent ops (the
    # constants the rules read away are not weights)
    typed = _typed_inputs(model.graph)
    types = shape_pass.element_types(shape_pass.with_nodes(model, onnx_nodes, constants)) \
        if any(node.op_type == "Cast" for node in onnx_nodes) else {}  # what a Cast is cast from
    rules = [strided_pass.rule(sizes), tokens_pass.rule(sizes), token_rows_pass.rule(sizes),
             adaptive_pool_pass.rule(sizes), padding_mask_probe.rule(typed), token_positions_probe.rule(typed),
             rotary_pass.RULE, attention_pass.rule(sizes),
             flattened_dense_pass.rule(sizes), *spelled_out(types), *RECURRENT]
    onnx_nodes, lifted = rewrite.apply(rules, onnx_nodes, constants, outputs, {value.name for value in inputs}, Wiring)
    consumed |= lifted
    refuse_unsupported(onnx_nodes)
    context = OnnxContext(onnx_nodes, constants, Shapes(inputs))
    context.static_batch = _static_batch(model.graph, initializers)
    context.used |= consumed | (set(constants) - set(initializers))  # folded values: not weights
    nodes = []
    for onnx_node in steps(onnx_nodes, "reading ONNX nodes"):
        if id(onnx_node) not in context.absorbed:
            created = onnx_node.nodes if isinstance(onnx_node, Lifted) else \
                ONNX_TYPES[onnx_node.op_type](onnx_node, context)
            context.shapes.add(created)
            nodes.extend(created)
    refuse_dropped_outputs(onnx_nodes, nodes, model.graph)
    unused = context.unused_initializers()
    operands = sorted(name for name in unused if any(name in node.input for node in onnx_nodes))
    if operands:  # a valid graph: a constant where wconv takes a tensor from another layer
        users = {name: next(context.name(n) for n in onnx_nodes if name in n.input) for name in operands}
        raise Unsupported("constant operands where wconv converts only tensors from other layers: "
                          + ", ".join(f"{name} (of '{user}')" for name, user in users.items()))
    if unused:
        raise WeightMismatch(f"initializers the graph does not use as weights: {unused}")
    outputs = [o.name for o in model.graph.output]
    graph = Graph(model.graph.name or "model", inputs, outputs, nodes,
                  source={"format": "onnx", "path": str(path), "opset": _opset(model)})
    return finish(graph)


def refuse_dropped_outputs(onnx_nodes, nodes, graph) -> None:
    """An ONNX output that the model uses (a graph output, or another node's input) but that no converted
    node makes: a second output wconv does not convert (Dropout's mask, MaxPool's indices)."""
    made = {value for node in nodes for value in node.outputs}
    needed = {o.name for o in graph.output} | {name for n in onnx_nodes for name in n.input}
    problems = [f"{quoted(n.name or n.output[0])} ({n.op_type}) output {index} {quoted(name)}"
                for n in onnx_nodes for index, name in enumerate(n.output)
                if name and name in needed and name not in made and index > 0]
    if problems:
        raise Unsupported(f"outputs that wconv does not convert are used: {', '.join(problems[:10])}")


# The op types the reader's passes give the nodes they fuse: what a pass proved, never what a file claims.
RESERVED = {attention_pass.FUSED_OP, tokens_pass.FUSED_OP}


def refuse_reserved(onnx_nodes) -> None:
    found = [f"{quoted(n.name or n.output[0])} ({n.op_type})" for n in onnx_nodes if n.op_type in RESERVED]
    if found:
        raise Unsupported(f"node(s) of op types wconv reserves for its own reading: {', '.join(found)}")


def refuse_unsupported(onnx_nodes) -> None:
    listing = [(n.name or n.output[0], n.op_type, None if n.op_type in ONNX_TYPES or isinstance(n, Lifted) else "")
               for n in onnx_nodes]
    problems = [f"{quoted(name)} ({quoted(kind, 60)[1:-1]})" for name, kind, problem in listing if problem is not None]
    if problems:
        raise UnsupportedLayers.of(problems, listing)


def _shape(value_info) -> tuple:
    dims = value_info.type.tensor_type.shape.dim
    shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)
    return (None,) + shape[1:] if shape else shape


def _typed_inputs(graph) -> dict:
    """Graph input name -> (its declared sizes, None where free; its numpy dtype), for rules that evaluate a part of
    the graph (padding_mask_probe.py)."""
    from onnx.helper import tensor_dtype_to_np_dtype

    found = {}
    for value in graph.input:
        dims = value.type.tensor_type.shape.dim
        try:
            dtype = tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)
        except (KeyError, ValueError):  # no numpy dtype: such an input is never probed
            continue
        found[value.name] = (tuple(d.dim_value if d.HasField("dim_value") else None for d in dims), dtype)
    return found


def _static_batch(graph, initializers) -> int | None:
    """The first size every graph input declares, if they all declare the same fixed one."""
    sizes = set()
    for value in graph.input:
        if value.name not in initializers:
            dims = value.type.tensor_type.shape.dim
            sizes.add(dims[0].dim_value if dims and dims[0].HasField("dim_value") else None)
    found = sizes.pop() if len(sizes) == 1 else None
    return found or None


def _opset(model) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
