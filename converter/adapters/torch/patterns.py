"""How a traced model calls a library module and unpacks what it gives: what the rules of unpacked_calls.py lift
with the call, and what the reader says when they cannot.

A recurrent module returns a tuple, unpacked by indexing: ``out, _ = self.lstm(x)`` is the sequence,
``out[:, -1]`` and ``h_n[-1]`` the final state (of a one-direction layer). Those calls are read with
the module call; any other step of the sequence (``out[:, -1]`` of two directions too) is a ``select`` of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...errors import Unsupported
from ...ops.select import step_of
from .recurrent_states import final_states, handed_on, initial_states, is_item, only_user, state_kinds, state_name

RECURRENT_MODULES = {"LSTM", "GRU", "RNN", "ExplicitRecurrent"}  # the last: cells.py
ATTENTION_MODULES = {"MultiheadAttention"}
# Library classes traced whole and read by their weights and configuration: what they compute is known
# (ops/attention.py checks the rest of the attention's; timm's *Same layers pad as TensorFlow's 'SAME', which their
# forward() computes from the input's size in Python, where fx cannot trace). Self-attention: called with the one
# sequence.
LIBRARY_MODULES = {"timm.layers.attention.Attention", "timm.models.vision_transformer.Attention",
                   "timm.layers.conv2d_same.Conv2dSame", "timm.layers.pool2d_same.MaxPool2dSame",
                   "timm.layers.pool2d_same.AvgPool2dSame",
                   "transformers.pytorch_utils.Conv1D"}  # GPT-2's projections: a Linear with its weight (in, out)
SELF_ATTENTION_MODULES = {"Attention"}


def is_library_module(module) -> bool:
    return f"{type(module).__module__}.{type(module).__qualname__}" in LIBRARY_MODULES


def self_attention_call(fx_node) -> list[str]:
    """The query, key and value names of ``attn(x)`` (all ``x``); a mask or ``is_causal`` is refused."""
    options = [f"{key}={value!r}" for key, value in fx_node.kwargs.items() if value not in (None, False)]
    if len(fx_node.args) != 1 or options or not hasattr(fx_node.args[0], "name"):
        raise Unsupported(f"layer '{fx_node.target}' (Attention): called with "
                          f"{', '.join(options) or 'arguments other than one sequence'}; not converted")
    return [fx_node.args[0].name] * 3


@dataclass
class RecurrentUse:
    returns: str  # "sequence" or "final"
    output: object  # the fx node whose value that is (None: unused, the model takes the states only)
    absorbed: set  # the fx nodes between the module call and it
    input: object = None  # for a time-major module: the batch-first value transposed into it
    states: list | None = None  # final states taken out (fx node or None per state, Keras order), if any
    split: list | None = None  # each direction's output apart (Keras merge_mode=None): [forward, backward]
    initial: list = field(default_factory=list)  # initial states passed in (fx nodes, Keras order)


def recurrent_use(fx_node, module) -> RecurrentUse:
    """How the traced model uses a recurrent module's outputs: the whole sequence or the final state.

    A time-major module (``batch_first=False``) converts when the model transposes a batch-first value into
    it (``x.transpose(0, 1)``) and its sequence back (or takes its last step, ``out[-1]``)."""
    source = None
    if not module.batch_first:
        source = fx_node.args[0] if fx_node.args else None
        if not _swaps_batch_and_time(source) or len(source.users) != 1:
            raise _unsupported(fx_node, "is time-major (batch_first=False) and its input is not a batch-first value "
                                        "transposed with x.transpose(0, 1)")
    initial = initial_states(fx_node, module)
    if initial is None:
        raise _unsupported(fx_node, "takes initial states otherwise than stacked (N, H) values, torch.stack([h])")
    try:
        use = _recurrent_use(fx_node, module, time_major=source is not None)
    except Unsupported as error:
        taken_apart = final_states(fx_node, module) or _hands_on(fx_node) or _split_use(fx_node, module)
        if source is not None or not taken_apart:
            raise
        try:
            use = _with_states(fx_node, module)
        except Unsupported:
            raise error from None
    use.initial, use.absorbed = initial[0], use.absorbed | initial[1]
    use.absorbed |= _unused_items(fx_node) | {n for node in use.absorbed for n in _unused_items(node)}
    if source is not None:
        use.input, use.absorbed = source.args[0], use.absorbed | {source}
    return use


def _swaps_batch_and_time(fx_node) -> bool:
    """``x.transpose(0, 1)``, ``x.transpose(1, 0)`` or ``x.permute(1, 0, 2)`` of a rank-3 value."""
    if getattr(fx_node, "op", None) != "call_method" or len(fx_node.args) < 2:
        return False
    arguments = [a for a in fx_node.args[1:]]
    arguments = list(arguments[0]) if len(arguments) == 1 and isinstance(arguments[0], (list, tuple)) else arguments
    return (fx_node.target == "transpose" and sorted(arguments) == [0, 1]) or \
        (fx_node.target == "permute" and arguments == [1, 0, 2])


def _recurrent_use(fx_node, module, time_major: bool) -> RecurrentUse:
    used = _used_items(fx_node)
    one_direction = not module.bidirectional
    if set(used) == {0} and len(used[0]) == 1 and time_major:
        sequence = used[0][0]
        after = only_user(sequence)
        if _swaps_batch_and_time(after):
            return RecurrentUse("sequence", after, {sequence, after})
        if after is not None and is_item(after) and after.args[1] == -1 and one_direction:
            return RecurrentUse("final", after, {sequence, after})  # out[-1]: the last step, time-major
        raise _unsupported(fx_node, "is time-major and its sequence is used otherwise than transposed back "
                                    "(out.transpose(0, 1)) or at its last step (out[-1])")
    if set(used) == {0} and len(used[0]) == 1:
        sequence = used[0][0]
        step = only_user(sequence)
        if one_direction and step is not None and is_item(step) and _last_step(step.args[1]):
            return RecurrentUse("final", step, {sequence, step})
        # Any other step, and out[:, -1] of two directions (whose backward half is that direction's first step, not
        # its final state), is one step of the sequence: the getitem is read on its own (ops/select.py).
        return RecurrentUse("sequence", sequence, {sequence})
    if set(used) == {1} and len(used[1]) == 1:
        state, absorbed = used[1][0], set(used[1])
        if state_kinds(module) == 2:  # an LSTM's (h_n, c_n)
            inner = _used_items(state, fx_node)
            if set(inner) != {0} or len(inner[0]) != 1:
                raise _unsupported(fx_node, "uses c_n")
            state = inner[0][0]
            absorbed.add(state)
        found = _last_layer_state(state, module) if one_direction else _both_directions(state, module)
        if found is not None:
            return RecurrentUse("final", found[0], absorbed | found[1])
    raise _unsupported(fx_node, "uses its outputs otherwise")


def _with_states(fx_node, module) -> RecurrentUse:
    """A call whose final states are taken out (``result[1][0][0]``, see recurrent_states.py), beside the sequence,
    the final state, or alone."""
    chains = final_states(fx_node, module)
    whole = _hands_on(fx_node)
    if module.num_layers != 1:
        raise _unsupported(fx_node, "uses its outputs otherwise")
    in_chains = {n for entries in chains.values() for _, chain in entries for n in chain} | set(whole)
    dead = _dead_items(fx_node)  # unpacked and never used: the ``_`` of Keras' ``_, h, c = encoder(x)``
    uses = [user for user in fx_node.users if is_item(user) and user not in dead and user not in in_chains]
    one_direction, returns, primary, absorbed, split = not module.bidirectional, "final", None, set(), None
    sequence = [user for user in uses if user.args[1] == 0]
    halves = _halves(sequence, module) if not one_direction and len(sequence) == 2 else None
    kinds = state_kinds(module)
    if halves is not None:  # out[:, :, :H], out[:, :, H:]: each direction's sequence apart
        returns, split, absorbed = "sequence", halves[0], halves[1]
        uses = [user for user in uses if user not in sequence]
    elif not one_direction and not uses and not sequence and chains.get(0) and chains.get(kinds):
        split = []  # h_n[0], h_n[1]: each direction's final state apart
        for position in (0, kinds):
            node, chain = chains[position].pop(0)
            split.append(node)
            absorbed |= set(chain)
    if split is not None:
        if uses:
            raise _unsupported(fx_node, "uses its outputs otherwise")
    elif len(sequence) == 1:
        returns, primary, absorbed = "sequence", sequence[0], {sequence[0]}
        step = only_user(primary)
        if one_direction and step is not None and is_item(step) and _last_step(step.args[1]):
            returns, primary, absorbed = "final", step, absorbed | {step}
    elif len(uses) == 1 and uses[0].args[1] == 1 and not one_direction:  # wconv's h_n.permute(1, 0, 2).reshape
        h_n = only_user(uses[0]) if kinds == 2 else uses[0]
        found = _both_directions(h_n, module) if h_n is not None else None
        if found is None:
            raise _unsupported(fx_node, "uses its outputs otherwise")
        primary, absorbed = found[0], {uses[0], h_n} | found[1]
    elif uses:
        raise _unsupported(fx_node, "uses its outputs otherwise")
    elif one_direction and chains.get(0):  # the last step's h: the final state, then the states
        primary, chain = chains[0].pop(0)
        absorbed |= set(chain)
    states = []
    for position in range(kinds * (1 if one_direction else 2)):
        entries = chains.get(position, [])
        if len(entries) > 1 or entries and whole:
            raise _unsupported(fx_node, "takes one of its final states twice")
        states.append(state_name(fx_node, position) if whole else entries[0][0] if entries else None)
        absorbed |= set(entries[0][1]) if entries else set()
    if split is not None and not any(states):
        states = None
    return RecurrentUse(returns, primary, absorbed | dead | set(whole), states=states, split=split)


def _split_use(fx_node, module) -> bool:
    """Whether the model takes a two-direction layer's sequence apart by direction (``out[:, :, :H]``, ...)."""
    items = [user for user in fx_node.users if is_item(user) and user.args[1] == 0 and user.users]
    return module.bidirectional and len(items) == 2 and _halves(items, module) is not None


def _halves(items, module):
    """([forward, backward], the nodes read) for ``out[:, :, :H]`` and ``out[:, :, H:]`` of a two-direction
    layer's sequence ``out``; else None."""
    hidden, everything = module.hidden_size, slice(None)
    found = {}
    for item in items:
        half = only_user(item)
        index = half.args[1] if half is not None and is_item(half) else None
        if not isinstance(index, tuple) or len(index) != 3 or index[:2] != (everything, everything):
            return None
        if index[2] == slice(None, hidden):
            found[0] = half
        elif index[2] == slice(hidden, None):
            found[1] = half
    if set(found) != {0, 1}:
        return None
    return [found[0], found[1]], set(items) | set(found.values())


def _hands_on(fx_node) -> list:
    """The ``state`` items of ``_, state = rnn(x)`` that go, whole, only into other modules' calls as their
    initial states."""
    items = [user for user in fx_node.users if handed_on(user) is fx_node and user.users]
    return items if items and all(consumer.op == "call_module" and consumer.args[1:2] == (item,)
                                  for item in items for consumer in item.users) else []


def _dead_items(fx_node) -> set:
    """The getitem nodes under ``fx_node`` whose values reach nothing but other such nodes."""
    dead = set()

    def visit(node) -> bool:
        results = [visit(user) for user in list(node.users) if is_item(user)]
        is_dead = is_item(node) and all(results) and all(is_item(user) for user in node.users)
        if is_dead:
            dead.add(node)
        return is_dead

    visit(fx_node)
    return dead


def _last_layer_state(state, module):
    """``h_n[-1]``: the final state of the last layer."""
    last = only_user(state)
    if last is not None and is_item(last) and last.args[1] in (-1, module.num_layers - 1):
        return last, {last}
    return None


def _both_directions(state, module):
    """The last layer's two final states side by side, forward first: ``torch.cat([h_n[-2], h_n[-1]], dim=1)``,
    or ``h_n.permute(1, 0, 2).reshape(-1, 2 * H)`` (one layer; what wconv writes)."""
    users = list(state.users)
    if len(users) == 1 and getattr(users[0], "target", None) == "permute" and list(users[0].args[1:]) == [1, 0, 2]:
        merged = only_user(users[0])
        width = 2 * module.hidden_size
        if module.num_layers == 1 and merged is not None and getattr(merged, "target", None) == "reshape" \
                and list(merged.args[1:]) == [-1, width]:
            return merged, {users[0], merged}
        return None
    items = {user.args[1]: user for user in users if is_item(user)}
    cat = only_user(items[-1]) if set(items) == {-2, -1} else None
    if cat is None or only_user(items[-2]) is not cat or getattr(cat, "op", None) != "call_function" or \
            getattr(cat.target, "__name__", "") not in ("cat", "concat"):
        return None
    dim = cat.kwargs.get("dim", cat.args[1] if len(cat.args) > 1 else 0)
    if list(cat.args[0]) == [items[-2], items[-1]] and dim in (1, -1):
        return cat, {items[-2], items[-1], cat}
    return None


def _used_items(fx_node, layer=None) -> dict:
    """index -> the getitem nodes taking that item and used by something (``layer``: the call it came from)."""
    found = {}
    for user in fx_node.users:
        if not is_item(user) or not isinstance(user.args[1], int):
            raise _unsupported(layer or fx_node, "passes its output tuple on whole")
        if user.users:
            found.setdefault(user.args[1], []).append(user)
    return found


def _unused_items(fx_node) -> set:
    """Items unpacked and never used (the ``_`` of ``out, _ = rnn(x)``)."""
    return {user for user in fx_node.users if is_item(user) and not user.users}


def _last_step(index) -> bool:
    """``[:, -1]`` or ``[:, -1, :]`` on a (batch, time, features) value."""
    return step_of(index) == -1


def _unsupported(fx_node, what: str) -> Unsupported:
    return Unsupported(f"layer '{fx_node.target}' (recurrent): {what}; wconv converts `out, _ = rnn(x)` (the "
                       "sequence), `out[:, i]` (one step), `h_n[-1]` (the final state of a one-direction layer), and a "
                       "one-layer module's states as (N, H) values: `h_n[d]`, `c_n[d]` out and "
                       "`rnn(x, (torch.stack([h]), torch.stack([c])))` in, or `_, state = rnn(x)` handed on whole "
                       "into another module's call")


def absorbed(fx_node, function_name) -> bool:
    """A ``torch.stack`` read together with the module call it gives initial states (recurrent_states.py); an item of
    a split's parts, which the split names its output."""
    if is_item(fx_node) and getattr(fx_node.args[0], "op", None) in ("call_function", "call_method") and \
            function_name(fx_node.args[0]) in TUPLE_RESULTS:
        return True
    if fx_node.op != "call_function" or function_name(fx_node) != "torch.stack" or len(fx_node.users) != 1:
        return False
    user = next(iter(fx_node.users))
    return user.op == "call_module" and _is_hx(fx_node, user)


def _is_hx(fx_node, call) -> bool:
    """Whether ``fx_node`` is a module call's initial state: its second argument (``hx``), or in that tuple."""
    given = call.kwargs.get("hx", call.args[1] if len(call.args) > 1 else None)
    return given is fx_node or isinstance(given, (tuple, list)) and fx_node in given


def attention_call(fx_node) -> tuple[list[str], object, set]:
    """(query, key, value names; the fx node holding the attention output; the nodes read with the call) for
    ``attn(q, k, v, ...)[0]`` or ``out, _ = attn(q, k, v, ...)``. Masks are refused."""
    names = ("query", "key", "value")
    tensors = list(fx_node.args[:3]) + [fx_node.kwargs.get(n) for n in names[len(fx_node.args[:3]):]]
    masks = [key for key in ("key_padding_mask", "attn_mask") if fx_node.kwargs.get(key) is not None]
    masks += ["is_causal=True"] if fx_node.kwargs.get("is_causal") else []
    if masks or any(getattr(t, "op", None) is None for t in tensors):
        raise Unsupported(f"layer '{fx_node.target}' (MultiheadAttention): called with "
                          f"{', '.join(masks) or 'a non-tensor query, key or value'}; not converted")
    used = _used_items(fx_node)
    if set(used) != {0} or len(used[0]) != 1:
        raise Unsupported(f"layer '{fx_node.target}' (MultiheadAttention): uses its attention weights; "
                          "wconv converts the attention output (item 0)")
    output = used[0][0]
    return [t.name for t in tensors], output, {output} | _unused_items(fx_node)


TUPLE_RESULTS = {"torch.functional.split", "split", "chunk", "torch.chunk"}  # calls giving a tuple of tensors


def item_names(fx_node) -> dict:
    """index -> the fx name of the item a tuple-giving call's user takes (``parts[1]``, ``parts[-1]``: the op
    reader knows how many parts there are). Any other use of the tuple is refused."""
    items = {}
    for user in fx_node.users:
        if not is_item(user) or not isinstance(user.args[1], int):
            raise Unsupported(f"'{fx_node.name}': its parts are used as {user.name} ({user.op} {user.target}); only "
                              "taking them one by one (a, b = ... or parts[k]) converts")
        items[user.args[1]] = user.name
    return items
