"""Multi-head attention spelled out in ONNX (opset < 23 has no attention op), read back as one attention node.

Whatever the exporter, attention is ``Softmax(MatMul(q, k) * scale)`` then ``MatMul(weights, v)``, where q, k and v
are projections of the inputs (``MatMul`` by a constant, ``+ b``; ``Gemm``) whose heads are taken apart by moves
(Reshape, Transpose, Squeeze, Gather, ...), and the heads are put together by moves and projected again. The
moves differ: wconv writes ``Transpose(Reshape[0,0,h,d](x W + b))``; torch.onnx packs q, k and v into one
projection, unpacks them with Unsqueeze/Transpose/Squeeze/Gather, works time-major with (T, N*heads, d) reshapes
whose targets it computes from ``Shape``, and splits the scale over q and k. So the moves are not matched by
spelling: ``attention_heads`` runs them on element indices (``layout_trace``), and a match is accepted when every
element of q, k and v is the element the IR's layout says, for every batch size tried (the file's own, or 2 and 3),
and the scales multiply to 1/sqrt(key_dim). Each projection's columns must be used whole, once.

Between the scale and the softmax, a causal mask ``Where(Cast(Trilu(Expand(1, Shape(scaled)), upper=0), bool),
scaled, -1e9)`` (-inf too, without a mask input), then Keras' mask ``Where(Unsqueeze(mask, 1), scores, -1e9)``.
Each match becomes one attention IR node with its parameters (``rewrite.Lifted``), which no file can hold: a file
cannot claim it. Anything else stays as it is, and is refused by name.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...ops.attention import ATTENTION, ZEROS, score_bias as attention_score_bias
from ...rewrite import Lifted, Match, Rule
from .attention_heads import AttentionHeads
from .layout_trace import ARITHMETIC, Tracer
from .shape_pass import BATCH
from .wiring import int_attr

FUSED_OP = "WconvAttention"  # the op type this pass once made: still refused in a file (reader.RESERVED)


@dataclass
class AttentionMatch:
    name: str
    inputs: list  # query, key, value
    output: str
    heads: int
    params: dict  # IR param -> array, canonical: wq ((h d), e), bq, ...
    causal: bool = False
    zeros: bool = False  # a query step masked whole gets no value (torch's; empty_rows)
    kv_heads: int | None = None
    scale: float | None = None  # the scores' factor
    score_bias: np.ndarray | None = None  # (heads, T, S), added to the scaled scores (T5's position bias)


def rule(sizes: dict) -> Rule:
    """The rule, for a graph whose values have ``sizes`` (``shape_pass.static_sizes(..., symbolic=True)``; the
    rule adds the sizes of the values it makes). It repeats: where an exporter left an attention's output
    time-major (torch.onnx drops the transposes between two batch-first nn.MultiheadAttention), the lifted node
    is followed by that Transpose, which the next attention's moves then read."""
    sizes = dict(sizes)

    def match(graph: _Graph, softmax) -> Match | None:
        found = graph.match(softmax)
        if found is None:
            return None
        chain, attention, arithmetic, perm = found
        return Match(chain, _made(attention, perm, sizes), feeding=list(arithmetic.values()))

    def view(nodes, constants, outputs) -> _Graph:
        return _Graph(nodes, constants, outputs, sizes)

    return Rule("attention", ("Softmax",), match, repeat=True, view=view)


def candidates(nodes: list) -> bool:
    """Whether any Softmax feeds a MatMul, directly or through the NaN guard (so that sizes are worth inferring for
    ``rule``)."""
    softmaxed = {node.output[0] for node in nodes if node.op_type == "Softmax"}
    softmaxed |= {node.output[0] for node in nodes if node.op_type == "Where" and node.input[2:3] and
                  node.input[2] in softmaxed}
    return any(node.op_type == "MatMul" and node.input[0] in softmaxed for node in nodes)


def _made(match: AttentionMatch, perm: list | None, sizes: dict) -> list:
    """The lifted attention, and the Transpose that gives its (N, T, E) output the file's layout, if another."""
    from onnx import helper

    params = dict(match.params) | ({} if match.score_bias is None else {"score_bias": match.score_bias})

    def lifted(output):
        return Lifted.of(ATTENTION.node(match.name, match.inputs, [output], params, match.heads,
                                        causal=match.causal, empty_rows=ZEROS if match.zeros else None,
                                        kv_heads=match.kv_heads, scale=match.scale))

    if perm is None:
        return [lifted(match.output)]
    batch_first, layout = f"{match.output}/batch_first", match.output
    if layout in sizes:
        sizes[batch_first] = [sizes[layout][perm.index(axis)] for axis in range(3)]
    return [lifted(batch_first),
            helper.make_node("Transpose", [batch_first], [layout], name=f"{match.name}/layout", perm=perm)]


class _Graph(AttentionHeads):
    def single_use_producer(self, value):
        node = self.producer.get(value)
        return node if node is not None and self.only_consumer(value) is not None else None

    def match(self, softmax):
        """(the replaced nodes, ending with the one making the output; the match; the shape arithmetic used; the
        permutation of (N, T, E) the output has in the file, or None), or None."""
        if int_attr(softmax, "axis", -1) not in (-1, 3):
            return None
        scaled, weights = self.single_use_producer(softmax.input[0]), softmax.output[0]
        guard = self._nan_guard(weights)  # torch's: a row masked whole (all -inf) is NaN, then 0
        if guard:
            weights = guard[-1].output[0]
        masked = self._masked(scaled)
        if masked is not None:  # the mask (N, T, S) is an input of the attention
            if _kind_of_hidden(masked[2], guard) is None:
                return None  # -inf without the guard: a row masked whole is NaN
            scaled = self.producer.get(scaled.input[1])
        causal = []
        bias = self._additive_mask(scaled) if not masked else None
        if bias is not None:  # torch.onnx's dynamo exporter: the mask as a constant added to the scores
            scaled, causal = self.producer.get(bias[0]), bias[1]
        elif scaled is not None and scaled.op_type == "Where":
            found = self._causal(scaled)
            if found is None or masked and _kind_of_hidden(float(np.ravel(self.constants[scaled.input[2]])[0]),
                                                           guard) != _kind_of_hidden(masked[2], guard):
                return None  # with a mask too, both hide alike: a row masked whole averages, or gets no value
            scaled, causal = self.producer.get(found[0]), found[1]
        score_bias = self._score_bias(scaled) if bias is None else None
        if score_bias is not None:
            scaled = self.producer.get(score_bias[0])
        tracer = Tracer(self)
        tracer.arithmetic.update({id(node): node for node in (bias[3] if bias is not None else [])})
        scale_nodes, factor = [], 1.0
        while (found := tracer.scale_factor(scaled)) is not None:  # who else reads these: _closed
            scale_nodes.append(scaled)
            factor *= found[1]
            scaled = self.producer.get(found[0])
        scores, attend = scaled, self.only_consumer(weights)
        if scores is None or scores.op_type != "MatMul" or attend is None or attend.op_type != "MatMul" or \
                attend.input[0] != weights:
            return None
        traced = self.traced(tracer, scores, attend, factor, bool(masked))
        if traced is None:
            return None
        inputs, heads, params, output, nodes, perm, kv_heads, scale = traced
        table = None
        if score_bias is not None:
            dims = self.sizes.get(scores.output[0])
            table = attention_score_bias(score_bias[2], heads, dims[-2:]) if dims is not None else None
            if table is None:
                return None  # per sample (flattened (N x heads, T, S) scores), or broadcast over steps: left as ops
        mask_nodes = masked[1] if masked else []
        bias_nodes = score_bias[1] if score_bias else []
        chain = [*nodes, scores, *scale_nodes[::-1], *bias_nodes, *causal, *mask_nodes, softmax, *guard, attend,
                 *output]
        if not self._closed(chain, tracer.arithmetic):
            return None
        name = softmax.name.rsplit("/", 1)[0] if "/" in softmax.name.strip("/") else chain[-1].output[0]
        inputs += [masked[0]] if masked else []
        causal_kind = bias[2] if bias is not None else bool(causal)
        zeros = bool(masked) and _kind_of_hidden(masked[2], guard) == ZEROS
        match = AttentionMatch(name, inputs, chain[-1].output[0], heads, params, causal_kind, zeros, kv_heads, scale,
                               table)
        return chain, match, tracer.arithmetic, perm

    def _closed(self, chain, arithmetic: dict) -> bool:
        """Nothing outside the chain (and the shape arithmetic read with it) reads a value made inside it, but its
        output."""
        inside = {id(n) for n in chain} | set(arithmetic)
        final = chain[-1].output[0]
        return all(name == final or name not in self.outputs and
                   all(id(user) in inside for user in self.consumers.get(name, []))
                   for node in chain for name in node.output if name)

    def _additive_mask(self, add):
        """(the scores, [the Add], causal, the nodes computing the mask) for ``Add(scores, constant)`` where the
        constant, for each sample and head, is 0 everywhere (no mask) or 0 on and below the diagonal and -1e9 or less
        above it (causal), as torch.onnx's dynamo exporter adds F.scaled_dot_product_attention's mask; at a free
        batch, the constant is ``Where(Expand(C, [batch, ...]), 0, hidden)`` (_expanded_bias); else None."""
        if add is None or add.op_type != "Add":
            return None
        constant = next((name for name in add.input if name in self.constants), None)
        expanded = None if constant is not None else next(
            ((name, found) for name in add.input if (found := self._expanded_bias(name)) is not None), None)
        constant = expanded[0] if expanded else constant
        other = next((name for name in add.input if name != constant), None)
        bias = expanded[1][0] if expanded else \
            np.asarray(self.constants[constant], dtype=np.float64) if constant is not None else None
        if bias is None or other is None or bias.ndim < 2:
            return None
        stacked = bias.reshape(-1, *bias.shape[-2:])  # the same for every sample and head (at a fixed batch too)
        square = stacked[0]
        if not (stacked == square).all():
            return None
        lower = np.tril(np.ones(square.shape, dtype=bool))
        if not (square == 0).all() and not ((square[lower] == 0).all() and (square[~lower] <= -1e9).all()):
            return None
        return other, [add], not (square == 0).all(), expanded[1][1] if expanded else []

    def _score_bias(self, add):
        """(the scores, [the Add], the constant) for ``Add(scores, constant)``: a score bias if attention.score_bias
        takes it once the heads and steps are known (T5's relative position bias, as wconv and torch.onnx's
        TorchScript exporter, folded, write it); else None."""
        if add is None or add.op_type != "Add":
            return None
        constant = next((name for name in add.input if name in self.constants), None)
        other = next((name for name in add.input if name != constant), None)
        if constant is None or other is None:
            return None
        return other, [add], np.asarray(self.constants[constant])

    def _expanded_bias(self, value):
        """(one sample's mask, the nodes computing it) for ``Where(Expand(C, [batch, ...]), zero, hidden)``, C, zero
        and hidden constants, C one sample's (first axis 1): what dynamo writes at a free batch (the same for every
        sample, as C is); else None. The nodes go where no other attention reads them (dynamo shares one mask)."""
        where = self.producer.get(value)
        if where is None or where.op_type != "Where" or any(name not in self.constants for name in where.input[1:]):
            return None
        expand = self.producer.get(where.input[0])
        if expand is None or expand.op_type != "Expand" or expand.input[0] not in self.constants:
            return None
        data, dims = np.asarray(self.constants[expand.input[0]]), self.sizes.get(expand.output[0])
        if dims is None or dims[0] is not BATCH or not all(isinstance(d, int) for d in dims[1:]) or \
                data.ndim != len(dims) or data.shape[0] != 1:
            return None
        keep = np.broadcast_to(data, (1, *dims[1:]))
        bias = np.where(keep, self.constants[where.input[1]], self.constants[where.input[2]]).astype(np.float64)
        return bias, [where, expand, *self._shape_arithmetic(expand.input[1])]

    def _shape_arithmetic(self, value) -> list:
        """The nodes computing ``value`` from constants and tensors' shapes alone (an Expand's target)."""
        found, stack = {}, [value]
        while stack:
            node = self.producer.get(stack.pop())
            if node is None or id(node) in found or node.op_type not in ARITHMETIC:
                continue
            found[id(node)] = node
            if node.op_type != "Shape":
                stack.extend(name for name in node.input if name and name not in self.constants)
        return list(found.values())

    def _nan_guard(self, weights) -> list:
        """[IsNaN, Where] for ``Where(IsNaN(weights), 0, weights)`` after the softmax, else []."""
        users = self.consumers.get(weights, [])
        isnan = next((user for user in users if user.op_type == "IsNaN"), None)
        where = self.only_consumer(isnan.output[0]) if isnan is not None and len(users) == 2 else None
        zero = self.constants.get(where.input[1]) if where is not None and where.op_type == "Where" else None
        if zero is None or np.size(zero) != 1 or float(np.ravel(zero)[0]) != 0.0 or where.input[2] != weights or \
                not any(user is where for user in users):
            return []
        return [isnan, where]

    def _masked(self, where):
        """(the (N, T, S) mask, its nodes, the hidden score) for the mask before the softmax: Where(Unsqueeze(mask,
        axis 1), scores, hidden), hidden -1e9 or less (-inf: see _kind_of_hidden); else None."""
        if where is None or where.op_type != "Where":
            return None
        unsqueeze = self.single_use_producer(where.input[0])
        hidden = self.constants.get(where.input[2])
        if unsqueeze is None or unsqueeze.op_type != "Unsqueeze" or self.axes(unsqueeze) != [1] or \
                hidden is None or np.size(hidden) != 1 or not float(np.ravel(hidden)[0]) <= -1e9:
            return None
        return unsqueeze.input[0], [unsqueeze, where], float(np.ravel(hidden)[0])

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


def _kind_of_hidden(hidden: float, guard: list) -> str | None:
    """What a query step masked whole gets where masked scores are set to ``hidden``: any finite score of -1e9 or
    less makes every score of the row equal, so the average of the values ('average', the IR's default); -inf makes
    the row NaN, which the guard Where(IsNaN(w), 0, w) makes no value (ZEROS); -inf unguarded: None (NaN)."""
    if np.isfinite(hidden):
        return "average"
    return ZEROS if guard else None
