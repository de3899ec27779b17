"""A recurrent module's states in a traced model: initial states passed in, final states taken out.

Keras' ``return_state=True`` / ``initial_state=[...]`` (an encoder handing its states to a decoder) become, in
a generated torch module, ``result = self.decoder(x, (torch.stack([h]), torch.stack([c])))`` and
``out, h, c = result[0], result[1][0][0], result[1][1][0]``: states are (N, H) values, stacked per direction
as torch takes them (one layer). These functions find both forms in an fx graph, in Keras' state order
(h, then an LSTM's c, per direction, forward first).
"""

from __future__ import annotations

import operator


def state_kinds(module) -> int:
    """States per direction: h, and an LSTM's c."""
    return 2 if type(module).__name__ == "LSTM" or getattr(module, "cell", None) == "lstm" else 1


def handed_on(fx_node) -> str | None:
    """The module call whose states ``fx_node`` holds whole: ``state`` of ``_, state = rnn(x)`` (an LSTM's
    (h_n, c_n), a GRU's h_n), or None."""
    if getattr(fx_node, "op", None) and is_item(fx_node) and fx_node.args[1] == 1 and \
            getattr(fx_node.args[0], "op", None) == "call_module":
        return fx_node.args[0]
    return None


def state_name(call, position: int) -> str:
    """The IR name of a state a call hands on whole (no fx node holds it as an (N, H) value)."""
    return f"{call.name}.state{position}"


def initial_states(fx_node, module) -> tuple[list, set] | None:
    """(the (N, H) values in Keras order: fx nodes, or names of states handed on whole; the nodes read with the
    call) for ``rnn(x, torch.stack([...]))``, an LSTM's ``(torch.stack([...]), torch.stack([...]))``, or another
    one-layer module's states handed on whole (``rnn(x, state)``); ([], set()) without; None for another form."""
    if len(fx_node.args) < 2 and "hx" not in fx_node.kwargs:
        return [], set()
    given = fx_node.kwargs.get("hx", fx_node.args[1] if len(fx_node.args) > 1 else None)
    if given is None:
        return [], set()
    directions = 2 if module.bidirectional else 1
    source = handed_on(given)
    if source is not None and module.num_layers == 1:
        return [state_name(source, p) for p in range(directions * state_kinds(module))], set()
    stacks = list(given) if isinstance(given, (tuple, list)) else [given]
    if module.num_layers != 1 or len(stacks) != state_kinds(module) or \
            not all(_stack_of(stack, directions) for stack in stacks):
        return None
    per_kind = [list(stack.args[0]) for stack in stacks]
    return [per_kind[kind][direction] for direction in range(directions) for kind in range(len(stacks))], set(stacks)


def _stack_of(fx_node, count: int) -> bool:
    """``torch.stack([a, b, ...])`` of ``count`` values on a new first axis, used only by the call."""
    return getattr(fx_node, "op", None) == "call_function" and getattr(fx_node.target, "__name__", "") == "stack" \
        and len(fx_node.users) == 1 and fx_node.kwargs.get("dim", fx_node.args[1] if len(fx_node.args) > 1 else 0) == 0 \
        and isinstance(fx_node.args[0], (list, tuple)) and len(fx_node.args[0]) == count


def final_states(fx_node, module) -> dict:
    """position (Keras order) -> [(the fx node holding that (N, H) state, the getitem chain to it)], in graph
    order, for ``result[1][d]`` (GRU, RNN) and ``result[1][k][d]`` (LSTM: k 0 for h, 1 for c) of a one-layer
    module."""
    if module.num_layers != 1:
        return {}
    kinds, directions = state_kinds(module), 2 if module.bidirectional else 1
    found = {}
    for first in fx_node.users:
        if not (is_item(first) and first.args[1] == 1):
            continue
        # result[1] and result[1][k] may be read once and indexed many times (``h_n[0]``, ``h_n[1]``)
        kinds_taken = [(0, [first], first)] if kinds == 1 else \
            [(user.args[1], [first, user], user) for user in first.users if is_item(user) and user.args[1] in (0, 1)]
        for kind, chain, current in kinds_taken:
            for last in current.users:
                if not is_item(last) or not isinstance(last.args[1], int) or not last.users or \
                        not -directions <= last.args[1] < directions:
                    continue
                position = (last.args[1] % directions) * kinds + kind
                found.setdefault(position, []).append((last, chain + [last]))
    return found


def is_item(fx_node) -> bool:
    """A getitem: ``x[k]`` of a traced value (the items of a module's output tuple, and slices)."""
    return fx_node.op == "call_function" and fx_node.target is operator.getitem


def only_user(fx_node):
    users = list(fx_node.users)
    return users[0] if len(users) == 1 else None
