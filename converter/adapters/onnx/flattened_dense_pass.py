"""A Linear on a sequence as torch.onnx's dynamo exporter writes transformers' ``Conv1D`` (GPT-2's projections):
``Reshape(x, [-1, F])``, ``Gemm``, then ``Reshape`` back to x's leading axes and the Gemm's width. That is one
Dense over the last axis: ``MatMul(x, W) + b``, which the reader reads as one layer. The first Reshape must merge
exactly the leading axes; the last must give them back (its batch the file's, or -1, or the batch itself).
"""

from __future__ import annotations

import numpy as np

from ...rewrite import Match, Rule
from .shape_pass import BATCH
from .wiring import Wiring, feeds, int_attr


def candidates(nodes: list) -> bool:
    """Whether a Gemm reads a Reshape and a Reshape reads the Gemm (so that sizes are worth inferring for ``rule``:
    inferring them copies the model, which a CNN's Flatten before its classifier's Gemm is not worth)."""
    return feeds(nodes, "Reshape", "Gemm", 0) and feeds(nodes, "Gemm", "Reshape", 0)


def rule(sizes: dict) -> Rule:
    def match(wiring: Wiring, gemm) -> Match | None:
        flatten = wiring.producer.get(gemm.input[0])
        unflatten = wiring.only_consumer(gemm.output[0])
        if flatten is None or flatten.op_type != "Reshape" or unflatten is None or unflatten.op_type != "Reshape" or \
                wiring.only_consumer(flatten.output[0]) is not gemm or len(gemm.input) < 2 or \
                int_attr(gemm, "transA", 0) or gemm.input[1] not in wiring.constants:
            return None
        x, dims = flatten.input[0], sizes.get(flatten.input[0])
        kernel = np.asarray(wiring.constants[gemm.input[1]], np.float32)
        if int_attr(gemm, "transB", 0):
            kernel = kernel.T
        merged, split = wiring.constants.get(flatten.input[1]), wiring.constants.get(unflatten.input[1])
        if dims is None or len(dims) < 3 or any(isinstance(d, str) for d in dims) or merged is None or \
                split is None or kernel.ndim != 2 or list(np.ravel(merged)) != [-1, dims[-1]] or \
                kernel.shape[0] != dims[-1] or int_attr(unflatten, "allowzero", 0) and 0 in np.ravel(split) or \
                not _gives_back(list(np.ravel(split)), dims, kernel.shape[1]):
            return None
        from onnx import helper

        alpha, beta = _float(gemm, "alpha"), _float(gemm, "beta")
        name, out = gemm.name or gemm.output[0], unflatten.output[0]
        made = {f"{name}/kernel": kernel * np.float32(alpha)}
        product = [helper.make_node("MatMul", [x, f"{name}/kernel"], [out if len(gemm.input) < 3 else f"{name}/mm"],
                                    name=name)]
        if len(gemm.input) > 2 and gemm.input[2]:
            bias = wiring.constants.get(gemm.input[2])
            if bias is None:
                return None
            made[f"{name}/bias"] = np.asarray(bias, np.float32) * np.float32(beta)
            product.append(helper.make_node("Add", [f"{name}/mm", f"{name}/bias"], [out], name=f"{name}/bias"))
        return Match([flatten, gemm, unflatten], product, constants=made)

    return Rule("a Linear on a sequence, flattened around a Gemm", ("Gemm",), match)


def _gives_back(split: list, dims, width: int) -> bool:
    """Whether Reshape to ``split`` gives back x's leading axes ``dims[:-1]`` with ``width`` last."""
    leading = [None if d is BATCH else int(d) for d in dims[:-1]]
    if len(split) != len(leading) + 1 or split[-1] != width or split[1:-1] != leading[1:]:
        return False
    # the batch: -1, 0 (copy, where allowzero is not set), the file's own size at a fixed batch
    return split[0] in (-1, 0) or split[0] == leading[0] or leading[0] is None and split[0] > 0


def _float(node, name: str) -> float:
    return next((a.f for a in node.attribute if a.name == name), 1.0)
