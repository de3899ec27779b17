"""One driver for the rules that lift an op-level graph (an ONNX file's nodes) into the ops wconv's table reads.

A rule is a name, the op types a match is anchored at, and ``match(view, node) -> Match | None``: the nodes it
found and what replaces them (nodes the op table reads: a standard op such as Softmax; or IR nodes with their
parameters, as one ``Lifted`` node). The driver applies an ordered list of rules, one rule at a time over the whole graph:

- a node belongs to one match at most: a match overlapping an earlier one of the same rule is refused;
- a match must be closed: no value made inside it, other than what its replacement gives, is read by a node
  outside it or is a graph output (else the match is refused, and the nodes stay as they are);
- the replacement goes at the earliest place, from the match's first node on, where every value it reads is made
  before it: so its values are made before their readers (an item unpacked from a call and read before the
  match's last node among them);
- nodes that computed values for a match alone (``Match.feeding``) go once nothing reads them;
- constants that only removed nodes read are returned as consumed (they are part of what a rule proved, never
  weights left unused);
- after each rule the graph is checked: every value read is made before, once, and every output made; a rule
  that breaks this (where the graph held before it) is a bug in wconv (``RewriteBroken``, exit 70), named.

Rules never edit the graph themselves; they only describe. New constants a replacement reads come in the match.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .errors import WconvError, quoted


class RewriteBroken(WconvError):
    """A rule left the graph inconsistent: a bug in wconv, not in the input."""

    exit_code = 70


class View:
    """Who makes and who uses each value of an op-level node list (nodes with ``op_type``, ``input``, ``output`` and
    ``name``): what rules walk. A front end's subclass adds what its rules read of its nodes (ONNX: ``Wiring``)."""

    def __init__(self, nodes, constants: dict, outputs: set):
        self.constants, self.outputs = constants, outputs
        self.producer = {name: n for n in nodes for name in n.output}
        self.consumers = {}
        for n in nodes:
            for name in n.input:
                self.consumers.setdefault(name, []).append(n)

    def only_consumer(self, value):
        """The one node using ``value``, which is not a graph output; else None."""
        users = self.consumers.get(value, [])
        return users[0] if len(users) == 1 and value not in self.outputs else None

    def used(self, value) -> bool:
        return bool(value) and (bool(self.consumers.get(value)) or value in self.outputs)


@dataclass
class Match:
    """What a rule found: ``nodes`` (replaced, in any order) and ``replacement`` (in order), plus the constants the
    replacement reads that the graph does not hold yet."""

    nodes: list
    replacement: list
    constants: dict = field(default_factory=dict)
    # Nodes outside the match that computed values for it alone (the Shape arithmetic sizing an Expand): dropped
    # once the match is replaced and nothing else reads what they make.
    feeding: list = field(default_factory=list)


@dataclass
class Lifted:
    """An op-level node standing for IR nodes a rule has read whole (with their parameters): front ends take them as
    they are. No file can hold one, so no file can claim what a rule proved."""

    nodes: list  # IR nodes, in order
    input: list  # the op-level values they read
    output: list  # the op-level values they give
    name: str
    calls: str | None = None  # the module whose call it is (a later call of it shares the first call's weights)
    op_type: str = "(lifted)"
    domain: str = ""
    attribute: tuple = ()

    @classmethod
    def of(cls, *nodes) -> Lifted:
        """IR ``nodes`` reading and giving op-level values: the first's inputs, the last's outputs."""
        return cls(list(nodes), list(nodes[0].inputs), list(nodes[-1].outputs), nodes[0].name)


@dataclass(frozen=True)
class Rule:
    name: str
    anchors: tuple[str, ...]  # op types at which a match is looked for
    match: Callable  # (view: View, anchor node) -> Match | None
    repeat: bool = False  # applied again while it matches (a rewrite that makes a new place for itself)
    view: Callable | None = None  # (nodes, constants, outputs) -> the View it matches on, if not the driver's


def apply(rules, nodes: list, constants: dict, outputs: set, inputs: set, view=View) -> tuple[list, set]:
    """(``nodes`` with every rule applied in order, the constants only removed nodes read). ``constants`` gains
    the matches' new constants; ``inputs``: the graph's input values; ``view``: the View class the rules take."""
    before = problems(nodes, constants, outputs, inputs)
    consumed = set()
    for rule in rules:
        for _ in range(len(nodes) + 1 if rule.repeat else 1):  # each round removes a match's nodes or moves them up
            matches = _matches(rule, nodes, (rule.view or view)(nodes, constants, outputs))
            if not matches:
                break
            nodes, removed = _replaced(nodes, matches, outputs)
            for found in matches:
                constants.update(found.constants)
            read = {value for node in nodes for value in node.input}
            consumed |= {value for node in removed for value in node.input if value in constants and value not in read}
            _check(rule.name, problems(nodes, constants, outputs, inputs), before)
    return nodes, consumed


def _matches(rule: Rule, nodes: list, view: View) -> list[Match]:
    """The rule's matches in graph order, none overlapping an earlier one, each closed: what it makes inside is read
    only by nodes this round removes (its own, or another match's: stacked layers read away together)."""
    claimed, found = set(), []
    for node in nodes:
        if node.op_type not in rule.anchors or id(node) in claimed:
            continue
        match = rule.match(view, node)
        if match is None:
            continue
        members = {id(n) for n in match.nodes}
        if members & claimed:
            continue
        claimed |= members
        found.append(match)
    while True:  # a refused match keeps its nodes, which may read what another match makes inside
        removed = {id(n) for match in found for n in match.nodes}
        kept = [match for match in found if closed(match, view, removed)]
        if len(kept) == len(found):
            return found
        found = kept


def closed(match: Match, view: View, removed: set | None = None) -> bool:
    """No value the match's nodes make, other than what the replacement gives, is read outside the match (or the
    ``removed`` nodes of the same round): by another node, as a graph output, or through a feeding node that reads
    it (which then goes with the match)."""
    inside = {id(n) for n in match.nodes} | {id(n) for n in match.feeding} | (removed or set())
    given = {value for node in match.replacement for value in node.output}
    inner = {value for node in match.nodes for value in node.output if value and value not in given}
    grown = True
    while grown:  # a feeding node computing from an inner value makes inner values too
        before = len(inner)
        inner |= {value for node in match.feeding if inner & set(node.input) for value in node.output if value}
        grown = len(inner) > before
    return not any(value in view.outputs or any(id(reader) not in inside for reader in view.consumers.get(value, []))
                   for value in inner)


def _replaced(nodes: list, matches: list[Match], outputs: set) -> tuple[list, list]:
    """(the nodes with each match's replacement at its place (_place), and without the feeding nodes nothing reads
    any more; the nodes removed)."""
    position = {id(node): index for index, node in enumerate(nodes)}
    removed = {id(node) for found in matches for node in found.nodes}
    made_at = {value: index for index, node in enumerate(nodes) if id(node) not in removed for value in node.output}
    at = {}
    for found in matches:
        at.setdefault(_place(found, position, made_at), []).extend(found.replacement)
    result = []
    for index, node in enumerate(nodes):
        result.extend(at.get(index, ()))
        if id(node) not in removed:
            result.append(node)
    feeding = {id(node) for found in matches for node in found.feeding}
    while True:
        read = {value for node in result for value in node.input} | outputs
        dead = {id(node) for node in result if id(node) in feeding and not read & set(node.output)}
        if not dead:
            break
        removed |= dead
        result = [node for node in result if id(node) not in dead]
    return result, [node for node in nodes if id(node) in removed]


def _place(found: Match, position: dict, made_at: dict) -> int:
    """The index before which ``found``'s replacement goes: its first node's, or later, after the last node making a
    value it reads (graph inputs and constants are made before any)."""
    given = {value for node in found.replacement for value in node.output}
    reads = [value for node in found.replacement for value in node.input if value not in given]
    after = max((made_at[value] + 1 for value in reads if value in made_at), default=0)
    return max(min(position[id(node)] for node in found.nodes), after)


def problems(nodes: list, constants: dict, outputs: set, inputs: set) -> set[str]:
    """What is wrong with the graph: a value read that is not a graph input, a constant or made by an earlier node;
    a value made twice; a graph output made by no node."""
    available, found = set(inputs) | set(constants) | {""}, set()
    for node in nodes:
        name = f"{quoted(node.name or node.output[0])} ({node.op_type})"
        found |= {f"{name} reads {quoted(value)}, which no earlier node makes" for value in node.input
                  if value not in available}
        found |= {f"{name} makes {quoted(value)} again" for value in node.output
                  if value and value in available and value not in constants}
        available.update(node.output)
    return found | {f"graph output {quoted(value)} is made by no node" for value in outputs if value not in available}


def _check(rule: str, found: set, before: set) -> None:
    """A rule may leave what was wrong before it as it was (the front end refuses that by name); what it adds is
    a bug in wconv."""
    added = sorted(found - before)
    if added:
        raise RewriteBroken(f"rewrite rule '{rule}' broke the graph: {'; '.join(added[:3])}; rerun with --debug and "
                            "report it")
