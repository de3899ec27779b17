"""Multi-head attention spelled out in ONNX (opset < 23 has no attention op), read back as one attention node.

The form wconv writes (``ops/attention.py``)::

    q = Transpose[0,2,1,3](Reshape[0,0,h,d](MatMul(query, Wq) [+ bq]))
    k = Transpose[0,2,3,1](Reshape[0,0,h,d](MatMul(key, Wk) [+ bk]))
    v = Transpose[0,2,1,3](Reshape[0,0,h,v](MatMul(value, Wv) [+ bv]))
    out = MatMul(Reshape[0,0,h*v](Transpose[0,2,1,3](MatMul(Softmax(MatMul(q, k) * 1/sqrt(d)), v))), Wo) [+ bo]

(the scale also as ``Div`` by sqrt(d)). Between the scale and the softmax, a causal mask
``Where(Cast(Trilu(Expand(1, Shape(scaled)), upper=0), bool), scaled, -1e9)`` (-inf too, without a mask input),
then Keras' mask ``Where(Unsqueeze(mask, 1), scores, -1e9)``. Each match becomes one node that only
``ops/attention.py`` reads, by the identity of the node this pass made, never by its op type: a file cannot claim
it. Anything else stays as it is; torch.onnx's spelling (packed projections split with Gather, time-major reshapes whose sizes it computes
from shapes, the scale split over q and k) is not matched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .wiring import Wiring, int_attr, is_transpose

FUSED_OP = "WconvAttention"


@dataclass
class AttentionMatch:
    name: str
    inputs: list  # query, key, value
    output: str
    heads: int
    params: dict  # IR param -> array, canonical: wq ((h d), e), bq, ...
    causal: bool = False


def fuse(nodes: list, constants: dict, graph_outputs: set) -> tuple[list, dict, set]:
    """(the nodes with each match replaced by one ``WconvAttention`` node, id(that node) -> AttentionMatch, the
    constants the replaced nodes used)."""
    from onnx import helper

    graph = _Graph(nodes, constants, graph_outputs)
    records, replaced, made, consumed = {}, set(), {}, set()
    for node in nodes:
        if node.op_type == "Softmax" and id(node) not in replaced:
            found = graph.match(node)
            if found is not None:
                chain, match = found
                fused = helper.make_node(FUSED_OP, match.inputs, [match.output], name=match.name)
                records[id(fused)], made[id(chain[-1])] = match, fused
                replaced |= {id(n) for n in chain}
                consumed |= {name for n in chain for name in n.input if name in constants}
    return [made.get(id(n), n) for n in nodes if id(n) not in replaced or id(n) in made], records, consumed


class _Graph(Wiring):
    def single_use_producer(self, value):
        node = self.producer.get(value)
        return node if node is not None and self.only_consumer(value) is not None else None

    def match(self, softmax):
        if int_attr(softmax, "axis", -1) not in (-1, 3):
            return None
        scaled, weights = self.single_use_producer(softmax.input[0]), softmax.output[0]
        masked = self._masked(scaled)
        if masked is not None:  # Keras' attention_mask
            scaled = self.producer.get(scaled.input[1])
        causal = []
        if scaled is not None and scaled.op_type == "Where":
            found = self._causal(scaled)
            if found is None or masked and float(np.ravel(self.constants[scaled.input[2]])[0]) != np.float32(-1e9):
                return None  # with a mask too, only -1e9 computes what the IR means (a row masked whole averages)
            scaled, causal = self.producer.get(found[0]), found[1]
        scores, scale = self._scaled(scaled)
        if scores is None or scores.op_type != "MatMul":
            return None
        q = self._heads(scores.input[0], [0, 2, 1, 3])
        k = self._heads(scores.input[1], [0, 2, 3, 1])
        attend = self.only_consumer(weights)
        if q is None or k is None or attend is None or attend.op_type != "MatMul" or attend.input[0] != weights:
            return None
        v = self._heads(attend.input[1], [0, 2, 1, 3])
        heads, key_dim = q[1], q[2]
        if v is None or k[1:3] != (heads, key_dim) or v[1] != heads or \
                not math.isclose(scale, 1 / math.sqrt(key_dim), rel_tol=1e-6):
            return None
        joined = self._joined(attend, heads * v[2])
        if joined is None:
            return None
        output = self._projection_after(joined[-1].output[0])
        if output is None:
            return None
        mask_nodes = masked[1] if masked else []
        chain = [*q[3], *k[3], *v[3], scores, scaled, *causal, *mask_nodes, softmax, attend, *joined, *output[0]]
        params = {}
        for short, found in (("q", q), ("k", k), ("v", v), ("o", output)):
            params[f"w{short}"] = found[-2].T
            if found[-1] is not None:
                params[f"b{short}"] = found[-1]
        name = softmax.name.rsplit("/", 1)[0] if "/" in softmax.name.strip("/") else chain[-1].output[0]
        inputs = [q[0], k[0], v[0]] + ([masked[0]] if masked else [])
        return chain, AttentionMatch(name, inputs, chain[-1].output[0], heads, params, bool(causal))

    def _masked(self, where):
        """(the (N, T, S) mask, its nodes) for Keras' mask before the softmax: Where(Unsqueeze(mask, axis 1),
        scores, -1e9); else None."""
        if where is None or where.op_type != "Where":
            return None
        unsqueeze = self.single_use_producer(where.input[0])
        hidden = self.constants.get(where.input[2])
        if unsqueeze is None or unsqueeze.op_type != "Unsqueeze" or self.axes(unsqueeze) != [1] or \
                hidden is None or np.size(hidden) != 1 or float(np.ravel(hidden)[0]) != np.float32(-1e9):
            return None
        return unsqueeze.input[0], [unsqueeze, where]

    def _causal(self, where):
        """(the scaled scores, the mask's nodes) for the causal Where above, else None."""
        keep, scores, hidden = where.input
        value = self.constants.get(hidden)
        if value is None or np.size(value) != 1 or float(np.ravel(value)[0]) > -1e9:
            return None
        cast = self.single_use_producer(keep)
        trilu = self.single_use_producer(cast.input[0]) if cast is not None and cast.op_type == "Cast" and \
            int_attr(cast, "to", 0) == 9 else None
        expand = self.single_use_producer(trilu.input[0]) if trilu is not None and trilu.op_type == "Trilu" and \
            int_attr(trilu, "upper", 1) == 0 and len(trilu.input) == 1 else None
        one = self.constants.get(expand.input[0]) if expand is not None and expand.op_type == "Expand" else None
        shape = self.single_use_producer(expand.input[1]) if one is not None and np.size(one) == 1 and \
            float(np.ravel(one)[0]) == 1.0 else None
        if shape is None or shape.op_type != "Shape" or shape.input[0] != scores or shape.attribute or \
                sorted(id(n) for n in self.consumers.get(scores, [])) != sorted((id(shape), id(where))):
            return None
        return scores, [shape, expand, trilu, cast, where]

    def _scaled(self, node):
        """(the scores MatMul, the factor) for ``Mul(scores, c)`` or ``Div(scores, c)``."""
        if node is None or node.op_type not in ("Mul", "Div") or node.input[1] not in self.constants or \
                np.size(self.constants[node.input[1]]) != 1:
            return None, None
        factor = float(np.ravel(self.constants[node.input[1]])[0])
        if node.op_type == "Div":
            factor = 1 / factor if factor else math.inf
        return self.single_use_producer(node.input[0]), factor

    def _heads(self, value, perm):
        """(the projected input, heads, size, the nodes, W, b) for Transpose[perm](Reshape[0,0,h,size](projection))."""
        transpose = self.single_use_producer(value)
        if not is_transpose(transpose, perm):
            return None
        reshape = self.single_use_producer(transpose.input[0])
        shape = self._shape(reshape)
        if shape is None or len(shape) != 4 or shape[:2] != [0, 0] or min(shape[2:]) <= 0:
            return None
        projection = self._projection_before(reshape.input[0])
        if projection is None:
            return None
        source, nodes, weight, bias = projection
        if weight.shape[1] != shape[2] * shape[3]:
            return None
        return source, shape[2], shape[3], nodes + [reshape, transpose], weight, bias

    def _projection_before(self, value):
        """(input, nodes, W (in, out), b or None) for ``MatMul(x, W) [+ b]`` ending in ``value``."""
        node = self.single_use_producer(value)
        bias = None
        if node is not None and node.op_type == "Add":
            matmul_out, bias = self._bias_operand(node)
            add, node = node, self.single_use_producer(matmul_out) if matmul_out else None
        else:
            add = None
        weight = self.constants.get(node.input[1]) if node is not None and node.op_type == "MatMul" else None
        if weight is None or weight.ndim != 2 or bias is not None and bias.shape != (weight.shape[1],):
            return None
        return node.input[0], [node] + ([add] if add else []), weight, bias

    def _projection_after(self, value):
        """(nodes, W (in, out), b or None) for ``MatMul(value, W) [+ b] [Identity]``."""
        node = self.only_consumer(value)
        weight = self.constants.get(node.input[1]) if node is not None and node.op_type == "MatMul" else None
        if weight is None or weight.ndim != 2 or node.input[0] != value:
            return None
        nodes, bias = [node], None
        add = self.only_consumer(node.output[0])
        if add is not None and add.op_type == "Add":
            other, bias = self._bias_operand(add)
            if other == node.output[0] and bias is not None and bias.shape == (weight.shape[1],):
                nodes.append(add)
            else:
                bias = None
        identity = self.only_consumer(nodes[-1].output[0])
        if identity is not None and identity.op_type == "Identity":
            nodes.append(identity)
        return nodes, weight, bias

    def _joined(self, attend, width):
        """Transpose[0,2,1,3] then Reshape[0,0,width] after the attention MatMul."""
        transpose = self.only_consumer(attend.output[0])
        if not is_transpose(transpose, [0, 2, 1, 3]):
            return None
        reshape = self.only_consumer(transpose.output[0])
        if self._shape(reshape) != [0, 0, width]:
            return None
        return [transpose, reshape]

    def _bias_operand(self, add):
        """(the other operand, the 1-D constant) of an Add with one constant vector."""
        constant = [name for name in add.input if name in self.constants]
        other = [name for name in add.input if name not in self.constants]
        if len(constant) != 1 or len(other) != 1 or np.ndim(self.constants[constant[0]]) != 1:
            return None, None
        return other[0], self.constants[constant[0]]

    def _shape(self, reshape):
        if reshape is None or reshape.op_type != "Reshape" or reshape.input[1] not in self.constants or \
                int_attr(reshape, "allowzero", 0):
            return None
        return [int(d) for d in np.ravel(self.constants[reshape.input[1]])]
