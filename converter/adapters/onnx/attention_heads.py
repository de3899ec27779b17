"""The q, k and v of an attention and its output, found by tracing element indices (``layout_trace``).

Each of q, k and v is a projection (``MatMul`` by a constant ``[+ b]``, or ``Gemm``) of a source (N, T, E),
followed by moves (and scales by constants) up to the attention's MatMuls. A run puts each source element's own
index through the moves; the operand is read as the IR means it when element [(n, head), t, j] of q is row
n*T + t, column offset + head*d + j of the projection (k transposed; v alike), with (N, heads) or (N*heads) as
the leading axes. The heads are joined by moves into the output projection, whose output, moved on, must hold
(N, T, E) in some order. Runs use the file's batch, or 2 and then 3 where it is free; a free sequence length is
5, then 7 (``shape_pass.concrete``).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from . import layout_trace
from .layout_trace import Untraceable, indices, rows
from .rotary_pass import OP_TYPE as ROTATION
from .shape_pass import BATCH, BATCHES, concrete
from .wiring import Wiring



@dataclass
class _Projection:
    input: str
    nodes: list
    weight: np.ndarray  # (in, out)
    bias: np.ndarray | None

    @property
    def output(self):
        return self.nodes[-1].output[0]


@dataclass
class _Path:
    """q, k or v: the moves (and scales) after a projection, back to one operand of the attention."""
    nodes: list
    projection: _Projection
    factor: float


@dataclass
class _Heads:
    """q, k or v as one run found it: ``values``[(n, head), t, j] is row n*steps + t, column offset + head*size +
    j of the projection of ``source`` (batch, steps, features)."""
    source: str
    batch: int
    steps: int
    lead: tuple  # the leading axes: (N, heads) or (N*heads,)
    heads: int
    size: int
    offset: int
    groups: int  # the projection's heads: fewer than ``heads`` where each is repeated (grouped key/value heads)
    values: dict  # the run's values, for the shape arithmetic of the moves after


@dataclass
class _Layout:
    """What one run found: the attention's inputs, heads, (q, k, v) sizes and column offsets, the moves after
    the output projection, and the output's permutation of (N, T, E) in the file (None: as it is)."""
    sources: tuple
    heads: int
    sizes: tuple
    offsets: tuple
    output_moves: list
    perm: list | None
    fixed_batch: bool
    groups: int  # key/value heads
    found: tuple  # q, k and v as the run found them (_Heads)

    def key(self):
        return self.sources, self.heads, self.sizes, self.offsets, [id(n) for n in self.output_moves], self.perm, \
            self.groups


class AttentionHeads(Wiring):
    """The tracing of q, k, v and the output around an attention's MatMuls; ``sizes`` from
    ``shape_pass.static_sizes(..., symbolic=True)``."""

    def __init__(self, nodes, constants, outputs, sizes):
        super().__init__(nodes, constants, outputs)
        self.sizes = sizes

    def traced(self, tracer, scores, attend, factor, masked):
        """(the query, key and value inputs, heads, the IR params, the output's nodes, the other nodes, the
        output's permutation, the key/value heads, the scores' scale: the product of the scales met) when the moves
        around the attention put every element where the IR means it, in every run; else None."""
        paths = [self._path(tracer, value) for value in (scores.input[0], scores.input[1], attend.input[1])]
        projection = self._projection_forward(tracer, attend.output[0])
        if None in paths or projection is None:
            return None
        joining, output_projection = projection
        layout = None
        for run in range(len(BATCHES)):
            try:
                found = self._run(tracer, paths, joining, output_projection, attend, run, masked)
            except Untraceable:
                return None
            if found is None or layout is not None and found.key() != layout.key():
                return None
            layout = found
            if layout.fixed_batch:  # the file's own batch: one run
                break
        key_dim = layout.sizes[0]
        widths = [count * size for count, size in zip((layout.heads, layout.groups, layout.groups), layout.sizes)]
        if layout.sizes[1] != key_dim or paths[2].factor != 1.0 or \
                not self._whole([(p.projection, o, width) for p, o, width in zip(paths, layout.offsets, widths)]):
            return None
        scale = factor * paths[0].factor * paths[1].factor  # 1/sqrt(key_dim) but for T5's (1)
        rotary = _rotary(paths, layout)
        if rotary is None:
            return None
        moves_before = [n for source, path in zip(layout.sources, paths)
                        for n in self._moves_between(tracer, source, path)]
        nodes = _unique([*moves_before, *(n for p in paths for n in [*p.projection.nodes, *p.nodes])])
        return list(layout.sources), layout.heads, {**_params(paths, layout, output_projection), **rotary}, \
            [*joining, *output_projection.nodes, *layout.output_moves], nodes, layout.perm, layout.groups, scale

    def _run(self, tracer, paths, joining, output_projection, attend, run, masked):
        """The layout one run on indices finds, or None where an element is not where the IR means it. Keras'
        mask is (N, 1, T, S): with it, the scores must be (N, heads, T, S)."""
        tracer.shape_of = lambda name: self._concrete(name, run)
        q, k, v = (self._trace_path(tracer, path, run, keys_last=role == 1) for role, path in enumerate(paths))
        if None in (q, k, v) or (k.batch, v.batch, k.lead, v.lead, k.heads, v.heads) != \
                (q.batch, q.batch, q.lead, q.lead, q.heads, q.heads) or k.steps != v.steps or \
                masked and q.lead != (q.batch, q.heads) or q.groups != q.heads or k.groups != v.groups:
            return None
        width = q.heads * v.size
        lead = np.arange(math.prod(q.lead))[:, None, None]
        attended = ((lead // q.heads) * q.steps + np.arange(q.steps)[None, :, None]) * width + \
            (lead % q.heads) * v.size + np.arange(v.size)[None, None, :]
        values = tracer.run(joining, attend.output[0], attended.reshape(*q.lead, q.steps, v.size),
                            {**q.values, **k.values, **v.values})
        tokens = rows(values[joining[-1].output[0] if joining else attend.output[0]], width)
        if tokens is None or output_projection.weight.shape[0] != width:
            return None
        output = self._output(tracer, output_projection, tokens, values, (q.batch, q.steps))
        if output is None:
            return None
        return _Layout((q.source, k.source, v.source), q.heads, (q.size, k.size, v.size),
                       (q.offset, k.offset, v.offset), *output, self.sizes.get(q.source, [BATCH])[0] is not BATCH,
                       k.groups, (q, k, v))

    def _output(self, tracer, projection, tokens, values, batch_steps):
        """(the moves after the output projection up to the output, the output's permutation of (N, T, E) or
        None): the last value of the moves that holds the output in some order (an Identity after it too)."""
        out = projection.weight.shape[1]
        moves = tracer.moves_forward(projection.output)
        values = tracer.run(moves, projection.output, tokens[..., None] * out + np.arange(out), values)
        canonical = indices((*batch_steps, out))
        for count in range(len(moves), -1, -1):
            perm = _permutation(values[moves[count - 1].output[0] if count else projection.output], canonical)
            if perm is not None:
                return moves[:count], None if perm == [0, 1, 2] else perm
        return None

    def _trace_path(self, tracer, path, run, keys_last):
        """q, k or v as the run finds it from the nearest source (moves back from its projection) whose rows
        n*steps + t, columns offset + head*size + j land at [(n, head), t, j] (keys: [(n, head), j, t])."""
        start, moves = tracer.moves_back(path.projection.input)
        for count in range(len(moves), -1, -1):  # nearest first
            source = moves[count - 1].output[0] if count else start
            shape = self._concrete(source, run)
            if shape is None or len(shape) != 3 or shape[2] != path.projection.weight.shape[0]:
                continue
            try:
                found = self._heads_from(tracer, path, source, shape, moves[count:], keys_last)
            except Untraceable:  # this source's moves do not run on its shape: a farther one may
                continue
            if found is not None:
                return found
        return None

    def _heads_from(self, tracer, path, source, shape, moves, keys_last):
        values = tracer.run(moves, source, indices(shape))
        tokens = rows(values[path.projection.input], shape[2])
        if tokens is None:
            return None
        columns = path.projection.weight.shape[1]
        values = tracer.run(path.nodes, path.projection.output, tokens[..., None] * columns + np.arange(columns),
                            values)
        moved = values[path.nodes[-1].output[0] if path.nodes else path.projection.output]
        moved = np.swapaxes(moved, -1, -2) if keys_last and moved.ndim > 1 else moved
        layout = _heads(moved, shape[0], shape[1], columns)
        return None if layout is None else _Heads(source, shape[0], shape[1], moved.shape[:-2], *layout, values)

    def _moves_between(self, tracer, source, path):
        start, moves = tracer.moves_back(path.projection.input)
        outputs = [start] + [m.output[0] for m in moves]
        return moves[outputs.index(source):]

    def _concrete(self, value, run):
        return concrete(self.sizes.get(value), run, free=True)

    def _path(self, tracer, operand):
        """The moves and scales from a projection to ``operand``, or None."""
        end, nodes = tracer.moves_back(operand, scales=True)
        projection = self._projection_back(end)
        if projection is None:
            return None
        factor = math.prod(tracer.scale_factor(n)[1] for n in nodes if n.op_type in layout_trace.SCALES)
        return _Path(nodes, projection, factor)

    def _projection_back(self, value):
        """The projection ending in ``value``: ``MatMul(x, W) [+ b]`` or ``Gemm(x, W, b)``."""
        node = self.producer.get(value)
        bias, add = None, None
        if node is not None and node.op_type == "Add":
            matmul_out, bias = self._bias_operand(node)
            add, node = node, self.producer.get(matmul_out) if matmul_out else None
        found = self._linear(node)
        if found is None or add is not None and (found[2] is not None or bias.shape != (found[1].shape[1],)):
            return None
        return _Projection(node.input[0], [node] + ([add] if add else []), found[1], bias if add else found[2])

    def _projection_forward(self, tracer, value):
        """(the moves after ``value``, the projection they feed), or None."""
        moves = tracer.moves_forward(value)
        end = moves[-1].output[0] if moves else value
        node = self.only_consumer(end)
        found = self._linear(node)
        if found is None or node.input[0] != end:
            return None
        projection = _Projection(end, [node], found[1], found[2])
        add = self.only_consumer(node.output[0])
        if found[2] is None and add is not None and add.op_type == "Add":
            other, bias = self._bias_operand(add)
            if other == node.output[0] and bias is not None and bias.shape == (found[1].shape[1],):
                projection.nodes.append(add)
                projection.bias = bias
        return moves, projection

    def _linear(self, node):
        """(input, W (in, out), bias or None) for ``MatMul(x, W)`` or ``Gemm(x, W[, b])`` with constant W, b."""
        if node is None or node.op_type not in ("MatMul", "Gemm") or node.input[1] not in self.constants:
            return None
        weight = self.constants[node.input[1]]
        if weight.ndim != 2:
            return None
        if node.op_type == "MatMul":
            return node.input[0], weight, None
        attrs = {a.name: (a.f if a.type == 1 else a.i) for a in node.attribute}
        if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 or attrs.get("transA", 0):
            return None
        weight = weight.T if attrs.get("transB", 0) else weight
        bias = self.constants.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if len(node.input) > 2 and node.input[2] and (bias is None or bias.shape != (weight.shape[1],)):
            return None
        return node.input[0], weight, bias

    def _whole(self, uses) -> bool:
        """Each projection's output columns are taken once, all of them (a packed in_proj splits in three)."""
        by_projection = {}
        for projection, offset, width in uses:
            by_projection.setdefault(id(projection.nodes[0]), (projection, []))[1].append((offset, width))
        for projection, spans in by_projection.values():
            covered = 0
            for offset, width in sorted(spans):
                if offset != covered:
                    return False
                covered += width
            if covered != projection.weight.shape[1]:
                return False
        return True

    def _bias_operand(self, add):
        """(the other operand, the 1-D constant) of an Add with one constant vector."""
        constant = [name for name in add.input if name in self.constants]
        other = [name for name in add.input if name not in self.constants]
        if len(constant) != 1 or len(other) != 1 or np.ndim(self.constants[constant[0]]) != 1:
            return None, None
        return other[0], self.constants[constant[0]]


def _heads(moved: np.ndarray, batch: int, steps: int, columns: int):
    """(heads, size, column offset, groups) when ``moved``[(n, head), t, j] holds row n*steps + t, column
    offset + (head // (heads / groups))*size + j of a (batch*steps, columns) projection: groups = heads, or fewer
    where each of the projection's heads is repeated for its run of heads (grouped key/value heads); else None."""
    if moved.ndim < 3 or moved.shape[-2] != steps:
        return None
    lead, size = int(np.prod(moved.shape[:-2])), moved.shape[-1]
    if lead % batch:
        return None
    heads = lead // batch
    offset = int(moved.flat[0] % columns)
    index = np.arange(lead)[:, None, None]
    for groups in (count for count in range(heads, 0, -1) if heads % count == 0):
        if offset + groups * size > columns:
            continue
        expected = ((index // heads) * steps + np.arange(steps)[None, :, None]) * columns + offset + \
            (index % heads) // (heads // groups) * size + np.arange(size)[None, None, :]
        if np.array_equal(moved.reshape(lead, steps, size), expected):
            return heads, size, offset, groups
    return None


def _rotary(paths, layout: _Layout):
    """The attention's rotary params ({} for none) from the rotations on the q and k paths (rotary_pass.py), or None
    when they are not one rotation of whole heads by step: a rotation on v, on q or k alone, a rotation whose last
    axis is not one head's features in order, or tables that differ between q and k or do not give one value per
    step and feature."""
    rotations = [next((node for node in path.nodes if node.op_type == ROTATION), None) for path in paths]
    if rotations[2] is not None or (rotations[0] is None) != (rotations[1] is None):
        return None
    if rotations[0] is None:
        return {}
    tables = [_tables(rotation, path, found) for rotation, path, found in zip(rotations[:2], paths, layout.found)]
    if None in tables or any(a.shape != b.shape or not np.array_equal(a, b) for a, b in zip(*tables)):
        return None
    return {"cos": tables[0][0], "sin": tables[0][1]}


def _tables(rotation, path, found: _Heads):
    """(cos, sin) (steps, head size) of one rotation, laid out by where each element of its input comes from."""
    held = found.values.get(rotation.input[0])
    columns = path.projection.weight.shape[1]
    if held is None or held.shape[-1] != found.size or any(axis not in (-1, held.ndim - 1) for axis in rotation.axes):
        return None
    steps, features = (held // columns) % found.steps, (held % columns - found.offset) % found.size
    if not np.array_equal(features, np.broadcast_to(np.arange(found.size), held.shape)):
        return None
    laid_out = []
    for table in (rotation.cos, rotation.sin):
        try:
            if np.broadcast_shapes(table.shape, held.shape) != held.shape:
                return None
        except ValueError:
            return None
        spread = np.broadcast_to(table, held.shape)
        rows = np.full((found.steps, found.size), np.nan, dtype=np.float64)
        rows[steps, features] = spread
        if np.isnan(rows).any() or not np.array_equal(rows[steps, features], spread):
            return None  # a step whose elements are rotated by different angles, or one never rotated
        laid_out.append(rows.astype(table.dtype))
    return laid_out


def _params(paths, layout: _Layout, output_projection: _Projection) -> dict:
    """The IR params: each projection's columns of q, k and v, rows grouped by head; the output projection."""
    params = {}
    for short, path, offset, size, count in zip("qkv", paths, layout.offsets, layout.sizes,
                                                (layout.heads, layout.groups, layout.groups)):
        columns = slice(offset, offset + count * size)
        params[f"w{short}"] = np.ascontiguousarray(path.projection.weight[:, columns].T)
        if path.projection.bias is not None:
            params[f"b{short}"] = path.projection.bias[columns]
    params["wo"] = np.ascontiguousarray(output_projection.weight.T)
    if output_projection.bias is not None:
        params["bo"] = output_projection.bias
    return params


def _permutation(moved: np.ndarray, canonical: np.ndarray):
    """The axes order ``perm`` with ``moved == canonical.transpose(perm)``, the identity first; else None."""
    for perm in itertools.permutations(range(canonical.ndim)):
        if moved.shape == tuple(canonical.shape[a] for a in perm) and np.array_equal(moved, canonical.transpose(perm)):
            return list(perm)
    return None


def _unique(nodes: list) -> list:
    seen, kept = set(), []
    for node in nodes:
        if id(node) not in seen:
            seen.add(id(node))
            kept.append(node)
    return kept
