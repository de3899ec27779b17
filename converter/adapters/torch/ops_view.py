"""The regrouped torch graph (exported.py) as the op-level node list the rewrite driver walks (rewrite.py).

Every fx node is one op: its ``op_type`` is ``module:<Class>`` for a leaf module call, the function's registered
name (``reshape``, ``torch.transpose``, ``aten.scaled_dot_product_attention.default``) for a call, and
``placeholder``, ``get_attr`` or ``output`` for the rest. A module call also reads its parameters and buffers by
their state_dict keys, which are the view's constants, and a ``get_attr`` its own: a rule that lifts the call (or
the get_attr) reads its weights there, and the driver reports them consumed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ... import rewrite

# The op types of a product and a sum, however the graph spells them (what the arithmetic rules match)
MULTIPLY = ("operator.mul", "mul", "torch.mul", "aten.mul.Tensor")
ADD = ("operator.add", "add", "torch.add", "aten.add.Tensor")


def sizes(op) -> list:
    """The sizes a reshape, view or expand op is given, spread (``x.view(n, t, h, d)``) or as one list."""
    given = list(op.node.args[1:])
    return list(given[0]) if len(given) == 1 and isinstance(given[0], (list, tuple)) else given


@dataclass(eq=False)
class FxOp:
    node: object  # the fx node
    op_type: str
    input: list
    output: list
    name: str
    module: object = None  # a module call's module
    domain: str = ""
    attribute: tuple = field(default=())


def ops_of(traced, function_name) -> list[FxOp]:
    """One FxOp per node of ``traced`` (``function_name``: the reader's name of a call)."""
    ops = []
    for node in traced.graph.nodes:
        reads = [source.name for source in node.all_input_nodes]
        if node.op == "call_module":
            module = traced.get_submodule(node.target)
            keys = [f"{node.target}.{name}" for name, _ in (*module.named_parameters(), *module.named_buffers())]
            ops.append(FxOp(node, f"module:{type(module).__name__}", reads + keys, [node.name], node.name, module))
        elif node.op in ("call_function", "call_method"):
            ops.append(FxOp(node, function_name(node), reads, [node.name], node.name))
        elif node.op == "output":
            ops.append(FxOp(node, "output", reads, [], node.name))
        elif node.op == "get_attr":  # reads its tensor by its key: a rule lifting it has used that weight
            ops.append(FxOp(node, "get_attr", [node.target], [node.name], node.name))
        else:
            ops.append(FxOp(node, node.op, [], [node.name], node.name))
    return ops


class FxView(rewrite.View):
    """What the torch rules read: an op by the value it makes, and a module call's weights."""

    def __init__(self, nodes, constants: dict, outputs: set):
        super().__init__(nodes, constants, outputs)
        self.by_node = {op.node: op for op in nodes if isinstance(op, FxOp)}

    def op(self, fx_node):
        """The op of an fx node (None for a value that is not a node, or one a rule has replaced)."""
        return self.by_node.get(fx_node) if hasattr(fx_node, "op") else None

    def only_user(self, op):
        """The one op reading ``op``'s value (not a graph output), else None."""
        return self.only_consumer(op.output[0]) if op.output else None

    def weights(self, op) -> dict:
        """A module call's parameters by their names within the module (``weight``, ``bias``), from the file."""
        prefix = f"{op.node.target}."
        return {name: self.constants[f"{prefix}{name}"] for name, _ in op.module.named_parameters()
                if f"{prefix}{name}" in self.constants}
