"""Recurrent ops in batch-first form: the time-major plumbing around ONNX LSTM/GRU/RNN, read away.

ONNX recurrent ops run time-major (layout=0): X (T, N, F), Y (T, D, N, H), Y_h (D, N, H). Exporters and
wconv wrap them to take and give batch-first values, and torch.onnx chains stacked layers time-major:

- into time-major: ``Transpose(perm=[1, 0, 2])`` of an (N, T, F) value;
- Y to time-major (T, N, D*H): ``Squeeze`` of the direction axis, or ``Transpose([0, 2, 1, 3])`` then
  ``Reshape([0, 0, -1])``; then to batch-first with ``Transpose([1, 0, 2])``, or straight into the
  next layer; wconv writes ``Transpose([2, 0, 1, 3])`` then ``Reshape([0, 0, D*H])``;
- Y_h (D, N, H) to the final state (N, D*H): ``Transpose([1, 0, 2])`` then ``Reshape`` (wconv),
  ``Squeeze``/``Gather`` of the one direction, or torch's h_n[-1]: ``Gather(-1)`` of the ``Concat`` of
  the stacked layers' Y_h; or ``Gather(axis=1, -1)`` of the batch-first sequence (torch's ``out[:, -1]``),
  ``Gather(axis=0, -1)`` of the time-major one (``out[-1]``);
- zero initial states, which torch.onnx builds from the input's shape (Shape/Gather/Concat/Expand of
  zeros): zeros are what a missing initial state means;
- states in and out (Keras' initial_state and return_state, as wconv writes them): initial_h/initial_c a
  ``Concat`` (axis 0) of ``Unsqueeze`` (axis 0) of (N, H) values, one per direction; final states
  ``Gather`` (axis 0) of Y_h/Y_c at a direction;
- each direction's sequence apart (Keras' merge_mode=None): ``Gather`` (axis 1) of Y at each direction, then
  ``Transpose([1, 0, 2])`` to batch-first.

Each match, with its plumbing, is lifted into one IR node (``ops/recurrent.py from_onnx_record``, told by a
``BatchFirst`` record what it reads and gives). A recurrent op in any other form stays, and its reader refuses it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...rewrite import Lifted, Match, Rule
from .wiring import Wiring, int_attr, is_transpose

RECURRENT_OPS = ("LSTM", "GRU", "RNN")
SHAPE_ARITHMETIC = {"Shape", "Gather", "Unsqueeze", "Concat", "Expand", "Constant", "ConstantOfShape", "Slice",
                    "Cast", "Squeeze", "Reshape"}
# Nodes dropped when nothing uses what they give: the arithmetic above, and the transposes that batch-first a
# recurrent output nobody uses (an encoder whose states alone are used: Keras' ``_, h, c = encoder(x)``).
WEIGHTLESS_PLUMBING = SHAPE_ARITHMETIC | {"Transpose"}


@dataclass
class BatchFirst:
    input: str
    returns: str  # "sequence" or "final"
    output: str
    states: list = field(default_factory=list)  # final states taken out, (N, H) values in Keras order ("": unused)
    initial: list = field(default_factory=list)  # initial states, (N, H) values in Keras order
    split: list | None = None  # each direction's sequence apart (Keras merge_mode=None): forward, backward


def _zero_states(wiring: Wiring, node) -> Match | None:
    """A recurrent op whose initial states are zeros (constants, or an Expand of zeros): the same op without them
    (zeros are what a missing initial state means); the arithmetic that made them is then dead plumbing."""
    from onnx import helper

    inputs = list(node.input)
    for index in (5, 6):
        value = inputs[index] if len(inputs) > index else ""
        source = wiring.producer.get(value)
        if value in wiring.constants and not np.any(wiring.constants[value]) or source is not None and \
                source.op_type == "Expand" and source.input[0] in wiring.constants and \
                not np.any(wiring.constants[source.input[0]]):
            inputs[index] = ""
    if inputs == list(node.input):
        return None
    without = helper.make_node(node.op_type, inputs, list(node.output), name=node.name)
    without.attribute.extend(node.attribute)
    return Match([node], [without])


def _batch_first(graph: _Rewrite, node) -> Match | None:
    """The recurrent op ``node`` with its plumbing, lifted into one IR node reading and giving batch-first values."""
    from ...ops import ONNX_TYPES
    from .context import OnnxContext

    found = graph.match(node)
    if found is None:
        return None
    record, plumbing = found
    weights = OnnxContext([], graph.constants, None)  # the op's attributes and weights, as the reader reads them
    reader = ONNX_TYPES[node.op_type].__self__
    return Match([node, *plumbing], [Lifted.of(*reader.from_onnx_record(node, record, weights))])


def _dead_plumbing(wiring: Wiring, node) -> Match | None:
    """Plumbing whose outputs nothing reads, in a graph with recurrent ops: the zero states' arithmetic, and the
    transposes that batch-first a recurrent output nobody uses (an encoder whose states alone are used: Keras'
    ``_, h, c = encoder(x)``)."""
    if any(wiring.used(value) for value in node.output) or \
            not any(n.op_type in RECURRENT_OPS for n in wiring.producer.values()):
        return None
    return Match([node], [])


ZERO_STATES = Rule("zero initial states", RECURRENT_OPS, _zero_states)
DEAD_PLUMBING = Rule("plumbing nothing reads, beside recurrent ops", tuple(WEIGHTLESS_PLUMBING), _dead_plumbing,
                     repeat=True)
BATCH_FIRST = Rule("recurrent ops in batch-first form", RECURRENT_OPS, _batch_first,
                   view=lambda nodes, constants, outputs: _Rewrite(nodes, constants, outputs))


class _Rewrite(Wiring):
    def __init__(self, nodes, constants, outputs):
        super().__init__(nodes, constants, outputs)
        self.time_major = {}  # a time-major (T, N, F) value -> the batch-first IR value it stands for
        self.layer_states = self._layer_states(nodes)

    def match(self, node):
        """(the BatchFirst record, the plumbing read away with it) for a recurrent op in a form listed above; else
        None."""
        attrs = {a.name: a for a in node.attribute}
        if attrs.get("layout") and attrs["layout"].i or "hidden_size" not in attrs or \
                attrs.get("direction") and attrs["direction"].s == b"reverse":
            return
        directions = 2 if attrs.get("direction") and attrs["direction"].s == b"bidirectional" else 1
        source = self._batch_first_input(node)
        if source is None:
            return
        source_name, plumbing = source
        outputs = list(node.output) + [""] * (3 - len(node.output))
        sequence, final, cell = outputs[:3]
        initial = self._initial_states(node, directions)
        states = self._final_states([final, cell] if node.op_type == "LSTM" else [final], directions)
        if initial is None or states is None:
            return
        final_used = self.used(final) and final not in self.layer_states.get("inner", set())
        split = self._split(sequence) if directions == 2 else None
        if split is not None and not final_used and not self.used(cell):
            return BatchFirst(source_name, "sequence", split[0][0], states[0], initial[0], split[0]), \
                plumbing + split[1] + states[1] + initial[1]
        if states[0] and not self.used(sequence) and not final_used and not self.used(cell):  # the states alone
            return BatchFirst(source_name, "final", f"{final}/unused", states[0], initial[0]), \
                plumbing + states[1] + initial[1]
        if self.used(cell) or self.used(sequence) == final_used:
            return
        found = self._sequence(node, sequence, directions) if self.used(sequence) else self._final(final, directions)
        if found is None:
            return
        returns, output, chain = found
        step = self.only_consumer(output)
        if returns == "sequence" and directions == 1 and step is not None and self._is_last(step, axis=1):
            returns, output, chain = "final", step.output[0], chain + [step]  # out[:, -1]
        return BatchFirst(source_name, returns, output, states[0], initial[0]), plumbing + chain + states[1] + initial[1]

    def _split(self, sequence):
        """([forward, backward] batch-first values, their nodes) for Y taken apart by direction, else None."""
        users = self.consumers.get(sequence, [])
        found = {}
        for gather in users:
            index = self.constants.get(gather.input[1]) if gather.op_type == "Gather" and len(gather.input) > 1 \
                else None
            if index is None or np.ndim(index) != 0 or int_attr(gather, "axis", 0) != 1 or int(index) % 2 in found:
                return None
            transpose = self.only_consumer(gather.output[0])
            if not is_transpose(transpose, [1, 0, 2]):
                return None
            found[int(index) % 2] = (gather, transpose)
        if set(found) != {0, 1} or len(users) != 2 or sequence in self.outputs:
            return None
        return [found[d][1].output[0] for d in (0, 1)], [n for d in (0, 1) for n in found[d]]

    def _initial_states(self, node, directions: int):
        """([(N, H) values in Keras order], their plumbing) for initial_h/initial_c stacked by Concat of
        Unsqueeze; ([], []) without; None for another form."""
        given = [node.input[index] if len(node.input) > index else "" for index in (5, 6)]
        given = [value for value in given if value]
        if not given:
            return [], []
        per_kind, plumbing = [], []
        for value in given:
            concat = self.producer.get(value)
            if concat is None or concat.op_type != "Concat" or len(concat.input) != directions or \
                    self.only_consumer(value) is not node or int_attr(concat, "axis") != 0:
                return None
            unsqueezes = [self.producer.get(v) for v in concat.input]
            if any(u is None or u.op_type != "Unsqueeze" or self.axes(u) != [0] or self.only_consumer(u.output[0])
                   is not concat for u in unsqueezes):
                return None
            per_kind.append([u.input[0] for u in unsqueezes])
            plumbing += [concat] + unsqueezes
        if node.op_type == "LSTM" and len(per_kind) != 2:
            return None
        return [per_kind[kind][d] for d in range(directions) for kind in range(len(per_kind))], plumbing

    def _final_states(self, kinds: list, directions: int):
        """([(N, H) values in Keras order, "" where unused], the Gathers) for Y_h/Y_c taken apart by direction with
        Gather (axis 0); those Gathers leave the consumers (what remains of Y_h is the final state)."""
        gathers = {}
        for kind, value in enumerate(kinds):
            for user in list(self.consumers.get(value, []) if value else []):
                index = self.constants.get(user.input[1]) if user.op_type == "Gather" else None
                if index is None or np.ndim(index) != 0 or int_attr(user, "axis", 0) != 0 or \
                        not -directions <= int(index) < directions:
                    continue
                position = (int(index) % directions) * len(kinds) + kind
                if position in gathers:
                    return None
                gathers[position] = user
                self.consumers[value].remove(user)
        if not gathers:
            return [], []
        states = [gathers[p].output[0] if p in gathers else "" for p in range(directions * len(kinds))]
        return states, list(gathers.values())

    def _batch_first_input(self, node):
        value = node.input[0]
        if value in self.time_major:
            return self.time_major[value], []
        source = self.producer.get(value)
        if is_transpose(source, [1, 0, 2]) and self.only_consumer(value) is node:
            return source.input[0], [source]
        return None

    def _sequence(self, node, value, directions: int):
        """('sequence', batch-first output, chain) for Y, or None."""
        width = directions * self._hidden(node)
        wconv = self._chain(value, [("Transpose", [2, 0, 1, 3]), ("Reshape", (0, 0, width))])
        if wconv:
            return "sequence", wconv[-1].output[0], wconv
        chain = self._chain(value, [("Squeeze", 1)] if directions == 1 else
                            [("Transpose", [0, 2, 1, 3]), ("Reshape", (0, 0, width))])
        if not chain:
            return None
        merged = chain[-1].output[0]  # time-major (T, N, D*H)
        after = self.only_consumer(merged)
        if is_transpose(after, [1, 0, 2]):
            return "sequence", after.output[0], chain + [after]
        if directions == 1 and after is not None and self._is_last(after, axis=0):  # torch's out[-1], time-major
            return "final", after.output[0], chain + [after]
        if all(user.op_type in RECURRENT_OPS and user.input[0] == merged for user in self.consumers.get(merged, [])) \
                and merged not in self.outputs:
            self.time_major[merged] = merged  # the next layer reads it; the IR holds it batch-first
            return "sequence", merged, chain
        return None

    def _final(self, value, directions: int):
        """('final', output, chain) for Y_h, or None."""
        width = directions * self._hidden(self.producer[value])
        wconv = self._chain(value, [("Transpose", [1, 0, 2]), ("Reshape", (0, width))])
        if wconv:
            return "final", wconv[-1].output[0], wconv
        if directions != 1:
            return None
        if value in self.layer_states.get("last", {}):
            concat, gather = self.layer_states["last"][value]
            return "final", gather.output[0], [concat, gather]
        one = self._chain(value, [("Squeeze", 0)]) or self._chain(value, [("Gather", 0)])
        return ("final", one[-1].output[0], one) if one else None

    def _layer_states(self, nodes) -> dict:
        """torch's h_n[-1] of stacked layers: Gather(axis 0, -1) of a Concat of one-direction layers' Y_h.
        'last': the last layer's Y_h -> (concat, gather); 'inner': the other layers' Y_h (used there only)."""
        found = {"last": {}, "inner": set()}
        for concat in nodes:
            if concat.op_type != "Concat" or not concat.input:
                continue
            gather = self.only_consumer(concat.output[0])
            producers = [self.producer.get(v) for v in concat.input]
            if gather is None or not self._is_last(gather) or any(
                    p is None or p.op_type not in RECURRENT_OPS or len(p.output) < 2 or p.output[1] != v
                    or self.only_consumer(v) is not concat for p, v in zip(producers, concat.input)):
                continue
            found["last"][concat.input[-1]] = (concat, gather)
            found["inner"] |= set(concat.input[:-1])
        return found

    def _is_last(self, gather, axis: int = 0) -> bool:
        """``Gather(x, -1, axis)``: the last entry along ``axis``."""
        if gather.op_type != "Gather":
            return False
        attrs = {a.name: a.i for a in gather.attribute}
        index = self.constants.get(gather.input[1])
        return attrs.get("axis", 0) == axis and index is not None and np.ndim(index) == 0 and int(index) == -1

    def _chain(self, value, steps):
        found, current = [], value
        for op_type, check in steps:
            node = self.only_consumer(current)
            if node is None or node.op_type != op_type or not self._fits(node, check):
                return None
            found.append(node)
            current = node.output[0]
        return found

    def _fits(self, node, check) -> bool:
        if node.op_type == "Transpose":
            return is_transpose(node, check)
        if node.op_type == "Reshape":  # (a, b, D, H) -> (a, b, D*H), or (N, D, H) -> (N, D*H)
            shape = self.constants.get(node.input[1]) if len(node.input) > 1 else None
            if shape is None or len(np.ravel(shape)) != len(check):
                return False
            shape = [int(d) for d in np.ravel(shape)]
            return shape[:-1] == list(check[:-1]) and shape[-1] in (-1, check[-1])
        if node.op_type == "Squeeze":
            return self.axes(node) == [check]
        if node.op_type == "Gather":
            attrs = {a.name: a.i for a in node.attribute}
            index = self.constants.get(node.input[1])
            return attrs.get("axis", 0) == 0 and index is not None and np.ndim(index) == 0 and int(index) in (0, -1)
        return False

    @staticmethod
    def _hidden(node) -> int:
        return next(a.i for a in node.attribute if a.name == "hidden_size")
