"""Every tensor an ONNX model holds, wherever it sits, so that one rule applies to all of them.

Tensors live in initializers, in node attributes (a Constant's ``value``, ``ConstantOfShape``'s fill,
any TENSOR/TENSORS/SPARSE_TENSOR attribute) and again inside subgraphs (If/Loop/Scan bodies).
"""

from __future__ import annotations

import math
import os

from ...errors import BadInput
from ...limits import Budget

ITEMSIZE = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 14: 8, 15: 16, 16: 2}


def every_tensor(graph):
    """Each TensorProto of ``graph`` and of its subgraphs (sparse tensors as their values and indices)."""
    from onnx import AttributeProto

    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from (sparse.values, sparse.indices)
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == AttributeProto.TENSOR:
                yield attribute.t
            elif attribute.type == AttributeProto.TENSORS:
                yield from attribute.tensors
            elif attribute.type == AttributeProto.SPARSE_TENSOR:
                yield from (attribute.sparse_tensor.values, attribute.sparse_tensor.indices)
            elif attribute.type == AttributeProto.GRAPH:
                yield from every_tensor(attribute.g)
            elif attribute.type == AttributeProto.GRAPHS:
                for subgraph in attribute.graphs:
                    yield from every_tensor(subgraph)


def check_declared_sizes(graph, path, external_bytes: int = 0) -> None:
    """Each tensor's dims against the data it carries, and their sum against the file's size (plus the
    ``external_bytes`` read from data files beside it)."""
    budget = Budget(path, os.path.getsize(path) + external_bytes)
    for tensor in every_tensor(graph):
        what = f"tensor '{tensor.name or '(unnamed)'}'"
        budget.declare(what, tensor.dims, ITEMSIZE.get(tensor.data_type, 8))
        elements = math.prod(tensor.dims)
        if tensor.HasField("raw_data") and len(tensor.raw_data) != elements * ITEMSIZE.get(tensor.data_type, 0) \
                and tensor.data_type != 8:  # strings have no fixed size
            raise BadInput(f"{what}: dims {tuple(tensor.dims)} do not match its {len(tensor.raw_data)} bytes of data")
