"""One driver for the rules that lift an op-level graph (an ONNX file's nodes) into the ops wconv's table reads.

A rule is a name, the op types a match is anchored at, and ``match(view, node) -> Match | None``: the nodes it
found and what replaces them (nodes the op table reads: a standard op such as Softmax, or an IR node with its
parameters). The driver applies an ordered list of rules, one rule at a time over the whole graph:

- a node belongs to one match at most: a match overlapping an earlier one of the same rule is refused;
- a match must be closed: no value made inside it, other than what its replacement gives, is read by a node
  outside it or is a graph output (else the match is refused, and the nodes stay as they are);
- the replacement takes the place of the match's last node in graph order, so every value it reads is made
  before it and every value it gives is made before its readers;
- constants that only removed nodes read are returned as consumed (they are part of what a rule proved, never
  weights left unused);
- after each rule the graph is checked: every value read is made before, once; a rule that breaks this is a bug
  in wconv (``RewriteBroken``, exit 70), named.

Rules never edit the graph themselves; they only describe. New constants a replacement reads come in the match.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .errors import BadInput, WconvError, quoted


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


@dataclass(frozen=True)
class Rule:
    name: str
    anchors: tuple[str, ...]  # op types at which a match is looked for
    match: Callable  # (view: View, anchor node) -> Match | None


def apply(rules, nodes: list, constants: dict, outputs: set, inputs: set, view=View) -> tuple[list, set]:
    """(``nodes`` with every rule applied in order, the constants only removed nodes read). ``constants`` gains
    the matches' new constants; ``inputs``: the graph's input values; ``view``: the View class the rules take."""
    check(nodes, constants, outputs, inputs, None)
    consumed = set()
    for rule in rules:
        graph = view(nodes, constants, outputs)
        matches = _matches(rule, nodes, graph)
        if not matches:
            continue
        nodes = _replaced(nodes, matches)
        for found in matches:
            constants.update(found.constants)
        read = {value for node in nodes for value in node.input}
        consumed |= {value for found in matches for node in found.nodes for value in node.input
                     if value in constants and value not in read}
        check(nodes, constants, outputs, inputs, rule.name)
    return nodes, consumed


def _matches(rule: Rule, nodes: list, view: View) -> list[Match]:
    claimed, found = set(), []
    for node in nodes:
        if node.op_type not in rule.anchors or id(node) in claimed:
            continue
        match = rule.match(view, node)
        if match is None:
            continue
        members = {id(n) for n in match.nodes}
        if members & claimed or not closed(match, view):
            continue
        claimed |= members
        found.append(match)
    return found


def closed(match: Match, view: View) -> bool:
    """No value the match's nodes make, other than what the replacement gives, is read outside the match."""
    members = {id(n) for n in match.nodes}
    given = {value for node in match.replacement for value in node.output}
    inner = {value for node in match.nodes for value in node.output if value and value not in given}
    return not any(value in view.outputs or any(id(reader) not in members for reader in view.consumers.get(value, []))
                   for value in inner)


def _replaced(nodes: list, matches: list[Match]) -> list:
    """The nodes with each match's replacement at the place of its last node in graph order."""
    position = {id(node): index for index, node in enumerate(nodes)}
    removed = {id(node) for found in matches for node in found.nodes}
    at = {max(position[id(node)] for node in found.nodes): found.replacement for found in matches}
    result = []
    for index, node in enumerate(nodes):
        result.extend(at.get(index, ()))
        if id(node) not in removed:
            result.append(node)
    return result


def check(nodes: list, constants: dict, outputs: set, inputs: set, rule: str | None) -> None:
    """Every value a node reads is a graph input, a constant or made by an earlier node; no value is made twice;
    every graph output is made. Before any rule, a failure is the file's (BadInput); after one, wconv's."""
    available = set(inputs) | set(constants) | {""}
    for node in nodes:
        missing = [value for value in node.input if value not in available]
        twice = [value for value in node.output if value and value in available and value not in constants]
        if missing or twice:
            problem = f"{quoted(node.name or node.output[0])} ({node.op_type}) " + \
                (f"reads {missing}, which no earlier node makes" if missing else f"makes {twice} again")
            _broken(rule, problem)
        available.update(node.output)
    lost = sorted(value for value in outputs if value not in available)
    if lost:
        _broken(rule, f"graph outputs {lost} are made by no node")


def _broken(rule: str | None, problem: str) -> None:
    if rule is None:
        raise BadInput(f"malformed graph: {problem}")
    raise RewriteBroken(f"rewrite rule '{rule}' broke the graph: {problem}; rerun with --debug and report it")
