"""Weights a module computes in forward() from its parameters alone, evaluated once from the file's tensors.

timm's ``ScaledStdConv2d`` (NF-ResNet, NFNet) standardizes its weight on every call:
``F.batch_norm(self.weight.reshape(1, out, -1), None, None, weight=self.gain * scale, training=True)``. That value
depends on no input, so it is a weight like any other, only spelled as arithmetic. Here every traced value computed
from parameters, buffers and constants alone, and read by a computation on the input, is evaluated with the
state_dict's tensors (the model's own code, on the file's data), and the traced module reads it as a tensor of its
own. The layer that takes it then reads as the plain layer it is.

The computed tensor takes the key of the parameter it is computed from when nothing else reads that parameter
(``stem.conv.weight``: so the layer keeps its name and validate its pairing), else a top-level key of its own. Every key it is
computed from counts as used once it is.
"""

from __future__ import annotations

import numpy as np

from ...errors import Unsupported
from ...frameworks import require
from .functional_layers import parameter
from .static_shapes import inputs_read

COMPUTED = "__computed"  # the suffix of a computed tensor's key when its source parameter has other readers
# ATen ops making a tensor from their arguments alone, always the same one (GPT-2's positions, torch.arange(T)):
# constants like a buffer. Not torch.empty (uninitialized), not the random ones.
FACTORIES = ("aten.arange.", "aten.zeros.", "aten.ones.", "aten.full.", "aten.eye.", "aten.linspace.",
             "aten.scalar_tensor.")


def fold(traced, state: dict) -> dict:
    """Fold ``traced`` in place; ``state`` (a dict of numpy arrays, changed in place) gets the computed tensors.
    Returns computed key -> the state keys it was computed from."""
    _embedded_over_the_batch(traced)
    _gathered_from_one_value(traced, state)
    constant = _parameter_only(traced)
    computed = {}
    for node in list(traced.graph.nodes):
        if node not in constant or node.op == "get_attr" or parameter(node) is not None or \
                all(user in constant for user in node.users):
            continue  # not a frontier: a plain parameter, a reshape the layers read themselves, or read further on
        sources = _sources(node)
        if not all(key in state for key in sources):
            continue  # computed from tensors the file does not hold: the layer refuses it by name
        value = _evaluate(node, traced, state)
        if value is None:
            continue  # a size or a flag, which shape folding reads; not a weight
        key = _key(node, sources, tuple(value.shape), state)
        state[key] = value.detach().numpy().copy()
        _read_as_attribute(traced, node, key, value)
        computed[key] = sources
    traced.graph.eliminate_dead_code()
    traced.recompile()
    return computed


def _embedded_over_the_batch(traced) -> None:
    """transformers' ``token_type_ids`` buffer, ``buffer.expand(batch, T)``, embedded and added to the input's
    embedding: the same rows for every example, so the expand is left out and the addition broadcasts them (then
    the embedding of the buffer is a weight like any other). Only where every use is an Embedding whose every use is
    an addition: anything else may depend on the batch axis being there."""
    for node in list(traced.graph.nodes):
        if node.op != "call_method" or node.target != "expand" or not _batch_size(node.args[1] if len(node.args) > 1
                                                                                  else None):
            continue
        if _embedded_and_added(traced, node):
            node.replace_all_uses_with(node.args[0])
            traced.graph.erase_node(node)


def _gathered_from_one_value(traced, state: dict) -> None:
    """RoBERTa's token types, ``gather(zeros buffer expanded over the batch, 1, positions)``: every element of what is
    gathered from is one value, so the gather gives that value wherever it reads, whatever the positions. Where it
    is embedded and added (as ``_embedded_over_the_batch`` requires), it is that value in one row of the index's
    shape, which the addition broadcasts: a constant, whose embedding is a weight like any other."""
    torch = require("torch")
    for node in list(traced.graph.nodes):
        if str(node.target) != "aten.gather.default" or not _embedded_and_added(traced, node):
            continue
        source, shape = node.args[0], getattr(node.meta.get("val"), "shape", None)
        if not hasattr(source, "op") or inputs_read(source) or shape is None or len(shape) < 2 or \
                not all(isinstance(size, int) for size in shape[1:]):
            continue
        keys = _sources(source)  # one buffer, whose expanded copies are gathered from
        value = state.get(keys[0]) if len(keys) == 1 else None
        if value is None or value.size == 0 or not (value == value.flat[0]).all():
            continue
        name = _unique(f"{_own_key(keys[0])}_gathered", state)
        state[name] = np.full((1, *shape[1:]), value.flat[0], dtype=value.dtype)
        traced.register_buffer(name, torch.from_numpy(state[name]), persistent=False)
        with traced.graph.inserting_before(node):
            getter = traced.graph.get_attr(name)
        node.replace_all_uses_with(getter)


def _embedded_and_added(traced, node) -> bool:
    return bool(node.users) and all(is_embedding(traced, user) and user.users and
                                    all(_is_addition(reader) for reader in user.users) for user in node.users)


def _batch_size(node) -> bool:
    return getattr(node, "op", None) == "call_method" and node.target == "size" and node.args[1:] == (0,)


def is_embedding(traced, node) -> bool:
    return node.op == "call_module" and type(traced.get_submodule(node.target)).__name__ == "Embedding"


def _is_addition(node) -> bool:
    import operator

    return node.op == "call_function" and node.target is operator.add


def _parameter_only(traced) -> set:
    """The nodes whose value depends on parameters, buffers and constants alone (no input): computations, and
    module calls on such values (a position table's Embedding of a buffer of positions)."""
    found = set()
    for node in traced.graph.nodes:
        if node.op == "get_attr" or _is_factory(node) or node.op in ("call_function", "call_method", "call_module") \
                and node.all_input_nodes and all(source in found for source in node.all_input_nodes):
            found.add(node)
    return found


def _is_factory(node) -> bool:
    return node.op == "call_function" and not node.all_input_nodes and str(node.target).startswith(FACTORIES)


def _sources(node) -> list[str]:
    """The get_attr keys ``node`` is computed from, in graph order."""
    inside = ancestors(node) | {node}
    keys = []
    for n in node.graph.nodes:
        if n in inside and n.op == "get_attr":
            keys.append(n.target)
        elif n in inside and n.op == "call_module":
            module = n.graph.owning_module.get_submodule(n.target)
            keys += [f"{n.target}.{name}" for name, _ in module.named_parameters()]
    return sorted(set(keys), key=keys.index)


def _key(node, sources: list[str], shape: tuple, state: dict) -> str:
    """The first source's key when every reader of that parameter is part of this computation and the result has
    its shape, else a new key."""
    if node.op == "call_module":  # a module's output on constants (a position table): named after the module
        return _unique(_own_key(node.target), state)
    if not sources:  # made by factories alone (positions 0..T-1)
        return _unique(_own_key(node.name), state)
    first = sources[0]
    if tuple(state[first].shape) != shape:
        return _unique(_own_key(first), state)
    getters = [n for n in node.graph.nodes if n.op == "get_attr" and n.target == first]
    calls = [n for n in node.graph.nodes if n.op == "call_module" and first.startswith(f"{n.target}.")]
    inside = ancestors(node)
    if not calls and all(user in inside or user is node for getter in getters for user in getter.users):
        return first  # read nowhere else, by no module call of its owner either
    return _unique(_own_key(first), state)


def _unique(key: str, state: dict) -> str:
    """``key``, or ``key_2``, ``key_3``... where the state holds it already (two tensors computed from one)."""
    found, count = key, 1
    while found in state:
        count += 1
        found = f"{key}_{count}"
    return found


def _own_key(source: str) -> str:
    """A top-level key for a tensor computed from ``source``: not under the module that owns ``source``, whose own
    call would otherwise seem to share its weights (``head_weight__computed`` beside ``head``)."""
    return f"{source.replace('.', '_')}{COMPUTED}"


def ancestors(node) -> set:
    """Every node ``node``'s value is computed from."""
    found, stack = set(), list(node.all_input_nodes)
    while stack:
        current = stack.pop()
        if current not in found:
            found.add(current)
            stack.extend(current.all_input_nodes)
    return found


def _evaluate(node, traced, state: dict):
    """``node``'s value, its get_attr leaves taken from ``state``; None when it is not a tensor."""
    torch = require("torch")
    from torch.fx.node import map_arg

    values, needed = {}, ancestors(node) | {node}
    order = [n for n in traced.graph.nodes if n in needed]
    try:
        with torch.no_grad():
            for current in order:
                if current.op == "get_attr":
                    values[current] = torch.from_numpy(state[current.target].copy())
                    continue
                args = map_arg(current.args, values.__getitem__)
                kwargs = map_arg(current.kwargs, values.__getitem__)
                if current.op == "call_module":  # with the file's weights, not the module's own
                    module = traced.get_submodule(current.target)
                    weights = {name: torch.from_numpy(state[f"{current.target}.{name}"].copy())
                               for name, _ in module.named_parameters()}
                    values[current] = torch.func.functional_call(module, weights, tuple(args), kwargs)
                else:
                    values[current] = current.target(*args, **kwargs) if current.op == "call_function" else \
                        getattr(args[0], current.target)(*args[1:], **kwargs)
    except Exception as error:  # the module's own arithmetic on the file's tensors
        raise Unsupported(f"'{node.name}': a weight computed in forward() from {_sources(node)} could not be "
                          f"evaluated ({type(error).__name__}: {error})") from None
    return values[node] if isinstance(values[node], torch.Tensor) else None


def _read_as_attribute(traced, node, key: str, value) -> None:
    """Every use of ``node`` reads a get_attr of ``key`` instead (a buffer of the computed value on the traced
    module, where it has no such attribute; the reader takes the values from the state)."""
    owner, _, name = key.rpartition(".")
    module = traced.get_submodule(owner) if owner else traced
    if not hasattr(module, name):
        module.register_buffer(name, value, persistent=False)
    with traced.graph.inserting_before(node):
        getter = traced.graph.get_attr(key)
    node.replace_all_uses_with(getter)
