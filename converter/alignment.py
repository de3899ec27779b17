"""Which layer of one model is which layer of another: one alignment of two IR graphs, with a reason per pair.

``wconv port`` fills a user's module with a source's weights and ``validate`` compares a hand port layer by layer;
both ask this. Only layers with weights are aligned: an activation, a pad or a pool has nothing to fill, and the
models are run to prove the rest. Granularity that differs between frameworks (Keras' ``Dense(activation=)``
against ``nn.Linear`` then ``F.relu``; a padding layer against ``padding=``, folded by ``passes.fold_pads``) leaves
the layers with weights as they are. Pairs are found, in this order, by:

- **override**: ``--map`` (source layer -> target layer);
- **name**: the same name once both are normalized (``layer1.0.conv1`` = ``layer1_0_conv1``), the same op and
  shapes, and no other layer of that name;
- **topology**: the same op and parameter shapes, at the same depth (layers with weights on the longest path
  from an input), fed by layers already paired with each other (or the same model input). Names usually
  differ completely (Keras ``conv2_block1_1_conv`` against ``layer1.0.conv1``): topology carries a whole
  ResNet on its own, a branch's first layers told apart by their shapes.

A target layer that two source layers fit equally is ambiguous; what is left unpaired on either side is
unmatched. Each comes with its candidates: the other side's unpaired layers of the same op.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from .errors import BadInput
from .ir import Graph, Node
from .ops import OPS


@dataclass
class Pair:
    source: str
    target: str
    reason: str  # "override", "name" or "topology"


@dataclass
class Alignment:
    pairs: list[Pair]  # in the target's execution order
    unmatched_source: dict[str, list[str]] = field(default_factory=dict)  # layer -> candidates on the other side
    unmatched_target: dict[str, list[str]] = field(default_factory=dict)
    ambiguous: dict[str, list[str]] = field(default_factory=dict)  # target layer -> the source layers that fit

    @property
    def complete(self) -> bool:
        return not (self.unmatched_source or self.unmatched_target)

    def target_of(self) -> dict[str, str]:
        return {pair.source: pair.target for pair in self.pairs}


@dataclass
class _Layer:
    node: Node
    index: int  # execution order
    depth: int  # layers with weights on the longest path from an input, this one included
    feeds: frozenset  # the nearest layers with weights before it, or "input k"

    @property
    def kind(self) -> tuple:
        """The op and the shapes of the params every such layer has (a bias may be absent on one side)."""
        optional = OPS[self.node.op].optional
        return self.node.op, tuple(sorted((name, tuple(array.shape)) for name, array in self.node.params.items()
                                          if name not in optional))


def align(source: Graph, target: Graph, overrides: dict | None = None) -> Alignment:
    """Pair the layers with weights of ``source`` and ``target`` (``overrides``: source layer -> target layer)."""
    ours, theirs = layers(source), layers(target)
    paired: dict[str, tuple[str, str]] = {}  # target -> (source, reason)
    for source_name, target_name in (overrides or {}).items():
        _check_override(source_name, ours, "source")
        _check_override(target_name, theirs, "target")
        paired[target_name] = (source_name, "override")
    _by_name(ours, theirs, paired)
    ambiguous = _by_topology(ours, theirs, paired)
    taken = {source_name for source_name, _ in paired.values()}
    alignment = Alignment([Pair(paired[name][0], name, paired[name][1]) for name in theirs if name in paired])
    alignment.unmatched_source = {name: _candidates(layer, theirs, set(paired)) for name, layer in ours.items()
                                  if name not in taken}
    alignment.unmatched_target = {name: _candidates(layer, ours, taken) for name, layer in theirs.items()
                                  if name not in paired}
    alignment.ambiguous = {name: found for name, found in ambiguous.items() if name not in paired}
    return alignment


def layers(graph: Graph) -> dict[str, _Layer]:
    """Layer name -> its place among the layers with weights, in execution order. A shared layer's later calls
    hold no weights of their own (``weights_of``): they are not layers to pair."""
    reach = {value.name: (frozenset([f"input {index}"]), 0) for index, value in enumerate(graph.inputs)}
    found = {}
    for index, node in enumerate(graph.nodes):
        before = [reach[name] for name in node.inputs if name in reach]
        feeds = frozenset().union(*(f for f, _ in before)) if before else frozenset()
        depth = max((d for _, d in before), default=0)
        if node.params and "weights_of" not in node.attrs:
            found[node.name] = _Layer(node, index, depth + 1, feeds)
            reach.update({name: (frozenset([node.name]), depth + 1) for name in node.outputs})
        else:
            reach.update({name: (feeds, depth) for name in node.outputs})
    return found


def normalized(name: str) -> str:
    """A name as both frameworks could spell it: ``layer1.0.conv1`` and ``Layer1_0_Conv1`` are one name."""
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


def _check_override(name: str, found: dict, side: str) -> None:
    if name not in found:
        raise BadInput(f"--map names {side} layer '{name}', which is not a layer with weights of the {side}; "
                       f"those are: {', '.join(list(found)[:20])}{' ...' if len(found) > 20 else ''}")


def _by_name(ours: dict, theirs: dict, paired: dict) -> None:
    taken = {source_name for source_name, _ in paired.values()}
    spelled = defaultdict(list)
    for name in ours:
        spelled[normalized(name)].append(name)
    for name, layer in theirs.items():
        fits = [s for s in spelled.get(normalized(name), []) if s not in taken and ours[s].kind == layer.kind]
        if name not in paired and len(fits) == 1:
            paired[name] = (fits[0], "name")
            taken.add(fits[0])


def _by_topology(ours: dict, theirs: dict, paired: dict) -> dict:
    """Pair in depth order, repeating while pairs are found (a pair can settle what feeds the next); the target
    layers left with several fitting source layers."""
    while True:
        taken = {source_name for source_name, _ in paired.values()}
        counterpart = {source_name: name for name, (source_name, _) in paired.items()}
        free = [(name, layer) for name, layer in theirs.items() if name not in paired]
        buckets = defaultdict(list)
        for name, layer in ours.items():
            if name not in taken:
                buckets[(layer.kind, layer.depth)].append(name)
        fits = {name: [s for s in buckets[(layer.kind, layer.depth)]
                       if _fed_alike(ours[s].feeds, layer.feeds, counterpart)]
                for name, layer in free}
        wanted = defaultdict(list)
        for name, found in fits.items():
            for s in found:
                wanted[s].append(name)
        settled = {name: found[0] for name, found in fits.items() if len(found) == 1 and len(wanted[found[0]]) == 1}
        if not settled:
            return {name: found for name, found in fits.items() if len(found) > 1 or
                    len(found) == 1 and len(wanted[found[0]]) > 1}
        paired.update({name: (s, "topology") for name, s in settled.items()})


def _fed_alike(source_feeds: frozenset, target_feeds: frozenset, counterpart: dict) -> bool:
    """Whether what feeds a source layer is, pair by pair, what feeds the target layer."""
    mapped = {feed if feed.startswith("input ") else counterpart.get(feed) for feed in source_feeds}
    return None not in mapped and mapped == set(target_feeds)


def _candidates(layer: _Layer, others: dict, taken: set) -> list[str]:
    return [name for name, other in others.items() if name not in taken and other.node.op == layer.node.op]
