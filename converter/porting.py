"""Fill a model the user already wrote with a source's weights: every convention applied, every weight placed once.

The source (any model wconv reads) and the target (the user's ``nn.Module`` or Keras model, ``port_targets.py``)
are both read into the IR, and ``alignment.align`` pairs their layers with weights. A pair the target cannot
express (another stride or padding, a bias the target lacks, another epsilon) is refused, naming the pair and the
reason, except where the two sides only split one computation differently: a conv's bias before a BatchNorm moves
into that BatchNorm's running mean for a target conv without bias. The target's weights are made from the
source's canonical params through the op table, under the target's own names, and must be exactly the target's:
every tensor, no other, every shape.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from os import PathLike
from typing import Sequence

import numpy as np

from . import api
from .alignment import Alignment, align
from .port_targets import fit, read_target
from .errors import BadInput, Unsupported, WconvError, about
from .ir import Graph, Node
from .ops import OPS

EPSILON_RTOL = 0.01  # BatchNorm/LayerNorm epsilons this close (Keras' 1.001e-5 against torch's 1e-5) are one


@dataclass
class PortRow:
    """One line of the mapping table: a source layer, the target module its weights go to, and how."""

    source: str
    target: str
    op: str
    reason: str  # how the pair was found: override, name or topology
    source_shapes: dict  # the source's parameter names and shapes, in its framework
    target_shapes: dict  # the target's parameter names (state_dict suffixes, Keras weights) and shapes
    permutation: str  # the layout change per parameter, e.g. "kernel h w i o -> weight o i h w"
    note: str = ""  # what was adapted (a bias moved into a BatchNorm)
    comparable: bool = True  # whether the two layers' own outputs are equal (not so for a conv whose bias moved)


@dataclass
class Port:
    """What a port made: ``weights, mapping = port(...)``. ``weights``: the torch target's state_dict (key -> array),
    or a Keras target's weights per layer (name -> arrays in Keras' order); ``mapping``: a PortRow per pair."""

    weights: dict
    mapping: list
    target: object = field(default=None, repr=False)  # port_targets.TorchTarget or KerasTarget
    # The input shape the target was traced with (as --input-shape takes it for the source), where the source
    # leaves a size free: the weights do not depend on it, and the check runs with it too.
    traced_shape: tuple | None = None

    def __iter__(self):
        return iter((self.weights, self.mapping))


class AlignmentFailed(BadInput):
    """Layers left unmatched or ambiguous: nothing is written; ``alignment`` holds the table."""

    def __init__(self, message: str, alignment: Alignment):
        super().__init__(message)
        self.alignment = alignment


class PortBlocked(Unsupported):
    """Pairs whose target layer cannot compute what the source layer does: nothing is written; ``blocked`` holds
    (source layer, target layer, the problems) for the table."""

    def __init__(self, message: str, blocked: list[tuple[str, str, list[str]]] = ()):
        super().__init__(message)
        self.blocked = list(blocked)


def port(source, into, *, module: str | None = None, module_args: str | dict | None = None,
         into_args: str | dict | None = None, overrides: dict | None = None,
         input_shape: Sequence[int] | None = None, input_dtype: str | None = None) -> Port:
    """The weights of ``source`` for the model ``into``, as its own (a state_dict for an ``nn.Module``, weights per
    layer for a keras.Model), and how each was placed. ``into``: a live model, a ``.keras``/``.h5`` file, or
    ``file.py:name``/``pkg.mod:name`` naming a module class or a function building either, with ``into_args``.

    ``source``: a model file (``module``/``module_args``/``input_shape`` for a torch state_dict) or an IR Graph.
    ``overrides``: source layer -> target module path, for pairs the alignment cannot settle.
    """
    graph = copy.deepcopy(source) if isinstance(source, Graph) else \
        api.read(source, module=module, module_args=module_args, input_shape=input_shape, input_dtype=input_dtype)
    target = read_target(into, into_args, graph)
    alignment = align(graph, target.graph, overrides)
    named = "" if isinstance(source, Graph) else f"{source}: "
    if not alignment.complete or alignment.ambiguous:
        raise AlignmentFailed(named + _summary(alignment), alignment)
    notes = _move_conv_biases(graph, target.graph, alignment)
    ours, theirs = _by_name(graph), _by_name(target.graph)
    blocked = [(p.source, p.target, found) for p in alignment.pairs
               if (found := _blockers(ours[p.source], theirs[p.target], target.kind))]
    if blocked:
        problems = [f"'{mine}' -> '{yours}': {'; '.join(found)}" for mine, yours, found in blocked]
        raise PortBlocked(f"{named}the target cannot express {len(problems)} source layer(s): {', '.join(problems)}",
                          blocked)
    filled = {p.target: fit(ours[p.source], theirs[p.target]) for p in alignment.pairs}
    frameworks = graph.source.get("format", "ir"), target.kind
    rows = [_row(p, ours[p.source], filled[p.target], frameworks,
                 notes.get(p.source) or _flatten_note(graph, ours[p.source]), p.source not in notes)
            for p in alignment.pairs]
    return Port(target.weights(filled), rows, target, _traced_shape(graph))


def _traced_shape(graph: Graph) -> tuple | None:
    """Where the source leaves a size free, its one input's traced shape in the order --input-shape takes for it
    (Keras' own for a Keras source); None otherwise."""
    from . import views
    from .port_targets import free_sizes_filled, trace_shapes

    if not free_sizes_filled(graph) or len(graph.inputs) != 1:
        return None
    value, (shape,) = graph.inputs[0], trace_shapes(graph)
    framework = "keras" if graph.source.get("format") == "keras" else "torch"
    return tuple(views.shape_to((None, *shape), value.layout, framework)[1:])


def _summary(alignment: Alignment) -> str:
    parts = []
    if alignment.unmatched_source:
        parts.append(f"{len(alignment.unmatched_source)} source layer(s) with no target "
                     f"({', '.join(list(alignment.unmatched_source)[:5])})")
    if alignment.unmatched_target:
        parts.append(f"{len(alignment.unmatched_target)} target layer(s) with no source "
                     f"({', '.join(list(alignment.unmatched_target)[:5])})")
    if alignment.ambiguous:
        parts.append(f"{len(alignment.ambiguous)} ambiguous ({', '.join(list(alignment.ambiguous)[:5])})")
    return f"cannot pair the layers: {'; '.join(parts)}; nothing written (the table lists candidates; --map " \
           "settles a pair)"


def _by_name(graph: Graph) -> dict[str, Node]:
    return {node.name: node for node in graph.nodes}


def _move_conv_biases(source: Graph, target: Graph, alignment: Alignment) -> dict[str, str]:
    """A source conv with a bias, paired with a target conv without one, whose only reader is a BatchNorm:
    BN(conv(x) + b) is BN with running mean - b of conv(x), so the bias moves there. Source layer -> note."""
    ours, theirs, notes = _by_name(source), _by_name(target), {}
    for pair in alignment.pairs:
        conv, other = ours[pair.source], theirs[pair.target]
        if not conv.op.startswith("conv") or "bias" not in conv.params or "bias" in other.params:
            continue
        readers = source.consumers(conv.outputs[0])
        if len(readers) != 1 or readers[0].op != "batchnorm" or conv.outputs[0] in source.outputs:
            continue
        norm = readers[0]
        norm.params["mean"] = (norm.params["mean"] - conv.params.pop("bias")).astype(norm.params["mean"].dtype)
        notes[pair.source] = f"bias moved into '{norm.name}' (running mean - bias): the target's conv has none"
    return notes


def _flatten_note(graph: Graph, node: Node) -> str:
    """For a Keras Dense after a Flatten of a feature map: its rows were reordered as the IR flattens."""
    before = graph.producer(node.inputs[0]) if node.op == "dense" else None
    shape = graph.shape(before.inputs[0]) if before is not None and before.op == "flatten" else None
    if graph.source.get("format") != "keras" or shape is None or len(shape) < 3:
        return ""
    return "rows reordered from Keras' (h w c) flattening to torch's (c h w)"


def _blockers(ours: Node, theirs: Node, framework: str) -> list[str]:
    """Why the target layer cannot compute what the source layer does, if it cannot, with how to build the target
    so that it can (in ``framework``'s spelling)."""
    if ours.op != theirs.op:  # paired by --map
        return [f"a {theirs.op} cannot compute a {ours.op}"]
    problems = []
    lacking = sorted(set(ours.params) - set(theirs.params))
    if lacking:
        problems.append(f"the source has {', '.join(lacking)}, which the target's layer lacks")
    for key in sorted(set(ours.attrs) | set(theirs.attrs)):
        mine, yours = _plain(ours.attrs.get(key)), _plain(theirs.attrs.get(key))
        if key == "momentum" or mine == yours:
            continue  # momentum: training only
        if key == "epsilon" and mine and yours and abs(mine - yours) <= EPSILON_RTOL * max(mine, yours):
            continue
        problems.append(f"{key} {mine} in the source, {yours} in the target" + _hint(ours.op, framework, key, mine))
    return problems


def _hint(op: str, framework: str, key: str, value) -> str:
    """How ``framework`` spells attribute ``key`` when constructing the layer (the op table's ``eps=1e-5``)."""
    spelling = OPS[op].conventions.get(framework, None)
    spelled = spelling.attrs.get(key, "") if spelling else ""
    name = spelled.split("=")[0].split()[0] if spelled else ""
    return f" (construct it with {name}={value!r})" if name.isidentifier() else ""


def _plain(value):
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def _row(pair, ours: Node, filled: Node, frameworks: tuple, note: str, comparable: bool) -> PortRow:
    """The table's line for one pair: shapes in each side's framework, and the layout change between them."""
    op, (source, target) = OPS[filled.op], frameworks
    changes = []
    if source in op.conventions and target in op.conventions:
        mine, yours = op.conventions[source].params, op.conventions[target].params
        changes = [f"{mine[name][0]} {mine[name][1]} -> {yours[name][0]} {yours[name][1]}"
                   for name in ours.params if name in mine and name in yours and mine[name][1] != yours[name][1]]
    return PortRow(pair.source, pair.target, filled.op, pair.reason, _shapes_in(op, ours, source),
                   _shapes_in(op, filled, target), "; ".join(changes) or "-", note, comparable)


def _shapes_in(op, node: Node, framework: str) -> dict:
    """A layer's weights by its framework's names and shapes (canonical, where the op packs them otherwise)."""
    if framework in op.conventions:
        try:
            named = {name: list(np.shape(value)) for name, value in op.params_to(framework, node).items()}
            if len(named) == len(node.params):  # not where several params share a name (ONNX attention's MatMuls)
                return named
        except (WconvError, KeyError):  # an op whose form there needs more than its params (a recurrent layer's)
            pass
    return {name: list(value.shape) for name, value in node.params.items()}


def rows_as_dicts(rows: list[PortRow]) -> list[dict]:
    return [asdict(row) for row in rows]


def write_port(result: Port, out: str | PathLike, force: bool = False, sources=()) -> None:
    """The filled target to ``out`` (torch: ``.pt``/``.safetensors``; Keras: ``.keras``/``.h5``), atomically;
    never over an existing file without ``force``."""
    from .outputs import check_outputs, transaction

    target = result.target
    if not str(out).lower().endswith(target.suffixes):
        raise BadInput(f"{out}: a {target.kind} target is written as {' or '.join(target.suffixes)}")
    check_outputs(sources, [out], force)
    with about(out), transaction(force):
        target.write(result.weights, out)


def check_port_output(source, out, force: bool, dry_run: bool = False) -> None:
    """Before any work: the source exists, ``out`` names a torch weights file, and may be written (unless nothing
    will be: ``dry_run``)."""
    from . import formats
    from .outputs import check_outputs

    formats.detect(source)
    if formats.for_output(out) not in ("torch", "keras"):
        raise BadInput(f"{out}: port writes your model's weights: .pt or .safetensors for a torch module, .keras or "
                       ".h5 for a Keras model")
    if not dry_run:
        check_outputs([source], [out], force)


def load_overrides(path) -> dict | None:
    """``--map``: a JSON file holding {source layer: target module path}."""
    import json

    if path is None:
        return None
    try:
        with open(path) as file:
            found = json.load(file)
    except OSError as error:
        raise BadInput(f"{path}: cannot read the --map file ({error.strerror})") from None
    except json.JSONDecodeError as error:
        raise BadInput(f"{path}: not JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(found, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in found.items()):
        raise BadInput(f"{path}: --map takes a JSON object of source layer names to target module paths")
    return found
