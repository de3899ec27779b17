"""Rules lifting a library module's call together with the ops around it that only unpack what it gives.

``nn.MultiheadAttention`` returns (output, weights): ``attn(q, k, v)[0]`` or ``out, _ = attn(q, k, v)`` is one
attention reading q, k and v, named after the module (``path#k`` for its k-th call), whose output is the item
taken. Masks, ``is_causal`` and a use of the weights are not lifted; the reader then says why, by name.
"""

from __future__ import annotations

from ...errors import Unsupported
from ...ops import TORCH_MODULES
from ...rewrite import Lifted, Match, Rule
from . import patterns


def multihead_attention(names: dict) -> Rule:
    """The rule, for a graph whose calls are named ``names`` (reader.module_call_names)."""

    def match(view, op):
        from .reader import TorchLayer  # the reader imports this module

        try:
            inputs, output, unpacking = patterns.attention_call(op.node)
        except Unsupported:
            return None
        layer = TorchLayer("MultiheadAttention", names[op.node], op.module, view.weights(op), inputs, [output.name],
                           [])
        try:
            nodes = TORCH_MODULES["MultiheadAttention"](layer)
        except Unsupported:
            return None
        lifted = Lifted(nodes, list(nodes[0].inputs), list(nodes[-1].outputs), nodes[0].name, calls=op.node.target)
        return Match([op, *(view.op(node) for node in unpacking)], [lifted])

    return Rule("nn.MultiheadAttention call", ("module:MultiheadAttention",), match)
