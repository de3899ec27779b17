"""The IR on disk: one safetensors file, tensors as ``<node>.<param>``, the graph as JSON metadata."""

from __future__ import annotations

import json

import numpy as np

from .errors import BadInput
from .ir import Graph, Node, Value
from .outputs import atomic_path
from .flatten_rows import take_as
from .shapes import finish

METADATA_KEY = "wconv_graph"
SCHEMA = 2  # 2: a Keras Flatten is a relayout then a Flatten (1 kept it as the Flatten's 'order' attribute)


def to_dict(graph: Graph) -> dict:
    """The graph without its tensors: params are listed by name, shape and dtype."""
    return {
        "schema": SCHEMA,
        "name": graph.name,
        "inputs": [{"name": v.name, "shape": list(v.shape) if v.shape else None, "dtype": v.dtype,
                    "layout": v.layout} for v in graph.inputs],
        "outputs": list(graph.outputs),
        "source": graph.source,
        "nodes": [
            {"op": n.op, "name": n.name, "inputs": n.inputs, "outputs": n.outputs, "attrs": n.attrs,
             "fused": n.fused,
             "params": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in n.params.items()}}
            for n in graph.nodes
        ],
    }


def save(graph: Graph, path) -> None:
    from safetensors.numpy import save_file

    tensors = {f"{n.name}.{k}": np.require(v, requirements="C") for n in graph.nodes for k, v in n.params.items()}
    with atomic_path(path) as temp:
        save_file(tensors, temp, metadata={METADATA_KEY: json.dumps(to_dict(graph))})


def is_ir_file(path) -> bool:
    try:
        return METADATA_KEY in (_metadata(path) or {})
    except (OSError, ValueError):
        return False


def load(path) -> Graph:
    from safetensors.numpy import load_file

    metadata = _metadata(path)
    if not metadata or METADATA_KEY not in metadata:
        raise BadInput(f"{path}: a safetensors file without a wconv graph")
    spec = json.loads(metadata[METADATA_KEY])
    tensors = load_file(str(path))
    nodes = [
        Node(n["op"], n["name"], n["inputs"], n["outputs"], {k: tensors.pop(f"{n['name']}.{k}") for k in n["params"]},
             n["attrs"], n.get("fused", False))
        for n in spec["nodes"]
    ]
    if tensors:
        raise BadInput(f"{path}: tensors {sorted(tensors)[:5]} belong to no node")
    inputs = [Value(v["name"], tuple(v["shape"]) if v["shape"] else None, v["dtype"], v.get("layout"))
              for v in spec["inputs"]]
    source = spec.get("source", {})
    graph = finish(Graph(spec["name"], inputs, spec["outputs"], nodes, source=source),
                   "keras" if source.get("format") == "keras" else "torch")
    return _flatten_orders(graph)


def _flatten_orders(graph: Graph) -> Graph:
    """Schema 1's Flatten(order='channels_last') (Keras' order) as schema 2 spells it: a transpose to Keras' view
    first."""
    for node in [n for n in graph.nodes if n.op == "flatten"]:
        if node.attrs.pop("order", "channels_first") == "channels_last" and graph.layout(node.inputs[0]):
            take_as(graph, node, "keras")
    return graph


def _metadata(path) -> dict | None:
    """Read the safetensors JSON header without loading tensors."""
    with open(path, "rb") as handle:
        size_bytes = handle.read(8)
        if len(size_bytes) != 8:
            raise ValueError("too short")
        size = int.from_bytes(size_bytes, "little")
        if size > 100_000_000:
            raise ValueError("header too large")
        header = json.loads(handle.read(size))
    return header.get("__metadata__")
