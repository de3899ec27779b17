"""Rules lifting a library module's call together with the ops around it that only unpack what it gives.

- ``nn.MultiheadAttention`` returns (output, weights): ``attn(q, k, v)[0]`` or ``out, _ = attn(q, k, v)`` is one
  attention reading q, k and v whose output is the item taken.
- A recurrent module (``nn.LSTM``, ``nn.GRU``, ``nn.RNN``, wconv's ``ExplicitRecurrent``) returns its sequence and
  final states, which the model unpacks by indexing, transposes (a time-major module between ``transpose(0, 1)``),
  stacks as initial states and hands on (patterns.py reads how): the call with all of that is one recurrent layer
  giving what the model takes.

Each is named after its module (``path#k`` for its k-th call) and says which module it calls, so that a later call
shares the first's weights. What these rules do not lift (a mask, the attention weights used, a state used
otherwise, weights the file lacks) the reader refuses by name, saying why.
"""

from __future__ import annotations

from ...errors import Unsupported
from ...ops import TORCH_MODULES
from ...rewrite import Lifted, Match, Rule
from . import patterns

RECURRENT = tuple(f"module:{name}" for name in sorted(patterns.RECURRENT_MODULES))


def multihead_attention(names: dict) -> Rule:
    """The rule, for a graph whose calls are named ``names`` (reader.module_call_names)."""

    def match(view, op):
        try:
            inputs, output, unpacking = patterns.attention_call(op.node)
        except Unsupported:
            return None
        return _lifted(view, op, names, inputs, [output.name], {}, unpacking)

    return Rule("nn.MultiheadAttention call", ("module:MultiheadAttention",), match)


def recurrent(names: dict) -> Rule:
    """The rule, for a graph whose calls are named ``names`` (reader.module_call_names)."""

    def match(view, op):
        try:
            use = patterns.recurrent_use(op.node, op.module)
        except Unsupported:
            return None
        name = names[op.node]
        inputs = [use.input.name] if use.input is not None else \
            [op.node.args[0].name] + [getattr(state, "name", state) for state in use.initial]
        options = {"returns": use.returns, "merge": "concat" if use.split is None else None}
        if use.input is not None:  # a time-major module between transposes: read batch-first
            options["time_major"] = True
        return _lifted(view, op, names, inputs, outputs(name, use), options, use.absorbed)

    return Rule("recurrent module call", RECURRENT, match)


def outputs(name: str, use) -> list[str]:
    """The fx names of what the model takes from a recurrent call: its output, then any final states (values it
    does not use named after the layer)."""
    if use.split is not None:
        given = [node.name for node in use.split]
    else:
        given = [use.output.name if use.output is not None else f"{name}/unused_output"]
    return given + [getattr(node, "name", node) if node is not None else f"{name}/unused_state{index}"
                    for index, node in enumerate(use.states or [])]


def _lifted(view, op, names, inputs, outputs_, options, unpacking) -> Match | None:
    """The module's reader on the call as the rule reads it, with the ops unpacking it; None where the file lacks
    one of the module's weights (the reader says which)."""
    from .reader import TorchLayer  # the reader imports this module

    module, prefix = op.module, f"{op.node.target}."
    keys = [name for name, _ in (*module.named_parameters(), *module.named_buffers())]
    if any(f"{prefix}{key}" not in view.constants for key in keys):
        return None
    weights = {key: view.constants[f"{prefix}{key}"] for key in keys}
    layer = TorchLayer(type(module).__name__, names[op.node], module, weights, inputs, outputs_, [], options)
    try:
        nodes = TORCH_MODULES[layer.class_name](layer)
    except Unsupported:
        return None
    made = {value for node in nodes for value in node.outputs}
    given = [value for node in nodes for value in node.inputs if value not in made]
    lifted = Lifted(nodes, list(dict.fromkeys(given)), [value for node in nodes for value in node.outputs],
                    nodes[0].name, calls=op.node.target)
    unpacked = [view.op(node) for node in unpacking]
    return Match([op, *(each for each in unpacked if each is not None)], [lifted])
