"""state_dict + nn.Module -> IR: the module is read through torch.export (exported.py), the weights come from the
file."""

from __future__ import annotations

import numpy as np

from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from os import PathLike
from typing import Sequence

from ... import rewrite, untrusted
from ...errors import BadInput, ShapeMismatch, Unsupported, WeightMismatch, about
from ...ir import Graph, Value, tie
from ...ops import TORCH_FUNCTIONS, TORCH_MODULES
from ...ops.activations import Activation
from ...progress import steps
from ...rewrite import Lifted
from ...shapes import Shapes, finish
from . import (computed_weights, exported, functional_layers, ops_view, padding_masks, patterns, pretrained,
               rms_norm_rule, sdpa_attention, stacked_mean, static_shapes, tanh_gelu, token_positions, unpacked_calls)
from .module import load_module
from .state_dict import load_state_dict


def rules(traced) -> list:
    """The rules lifting what a model spells out op by op into one op, in the order rewrite.py applies them."""
    names = module_call_names(traced)
    return [unpacked_calls.multihead_attention(names), unpacked_calls.recurrent(names), stacked_mean.RULE,
            padding_masks.RULE, token_positions.RULE, sdpa_attention.RULE, tanh_gelu.RULE, rms_norm_rule.RULE]


@dataclass
class TorchLayer:
    """One ``nn`` module call: the module (for attrs) and its weights from the state_dict."""

    class_name: str
    name: str
    module: object
    weights: dict
    inputs: list[str]
    outputs: list[str]
    input_shapes: list
    options: dict = field(default_factory=dict)  # what the reader saw around the call (how its outputs are used)


@dataclass
class TorchCall:
    """One traced function call such as ``F.relu(x)`` or ``x.softmax(dim=-1)``."""

    function: str
    name: str
    args: tuple
    kwargs: dict
    inputs: list[str]
    outputs: list[str] | dict  # index -> name for a call giving a tuple (patterns.item_names)
    input_shapes: list

    def argument(self, keyword: str, position: int, default):
        if keyword in self.kwargs:
            return self.kwargs[keyword]
        return self.args[position] if len(self.args) > position else default


def read(path: str | PathLike, module: str | None, module_args: str | dict | None = None,
         input_shape: Sequence[int] | None = None) -> Graph:
    """Read ``path`` (a state_dict) with the architecture of ``module`` (``pkg.mod:Class``); without one, a
    save_pretrained folder with the transformers class its config.json names."""
    untrusted.open_input(path)  # parsed once in a limited child first
    with about(path):
        if module:
            state, model = load_state_dict(path), load_module(module, module_args)
        else:
            model, state = pretrained.source(path)
        graph = from_module(model, state, input_shape, source=str(path))
        graph.source["notes"] = list(getattr(state, "notes", []))
        return graph


def _tied_twins(model, state: dict, used: set) -> set:
    """The state_dict keys naming a tensor of the module that a used key names too (T5EncoderModel's
    ``shared.weight`` is its ``encoder.embed_tokens.weight``: one Embedding, two names). The file must hold the same
    values under both, else which one the module runs with is the file's accident."""
    names = {}
    for name, tensor in [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]:
        names.setdefault(id(tensor), []).append(name)
    twins = set()
    for group in names.values():
        held = [name for name in group if name in state]
        if len(held) < 2 or not used & set(held):
            continue
        first = state[held[0]]
        differing = [name for name in held[1:] if np.shape(state[name]) != np.shape(first) or
                     not np.array_equal(state[name], first)]
        if differing:
            raise WeightMismatch(f"state_dict entries {held[0]!r} and {differing[0]!r} name one tensor of the module "
                                 "but hold different values")
        twins |= set(held)
    return twins


def from_module(model, state: dict, input_shape=None, source: str = "", input_shapes=None) -> Graph:
    """Read ``model`` through torch.export and take its weights from ``state`` (name -> numpy array).
    ``input_shapes``: one shape per input, without the batch axis (``input_shape`` for the one input)."""
    model.eval()
    given = input_shapes or ([input_shape] if input_shape else getattr(model, "wconv_input_shapes", None))
    shapes, dtypes = example_inputs(model, given)
    traced = exported.module_graph(model, shapes, dtypes)
    placeholders = [n for n in traced.graph.nodes if n.op == "placeholder"]
    inputs = [Value(n.name, (None, *shape)) for n, shape in zip(placeholders, shapes)]
    refuse_other_shapes(model, state)
    state = dict(state)  # with the weights forward() computes from parameters alone
    own = _made_by_code(model, traced)
    state.update(own)
    computed, ops, lifted_weights = rewritten(traced, state, shapes, dtypes)
    kept = {op.node for op in ops if not isinstance(op, Lifted)}
    refuse_unsupported(traced, kept)
    used = set(lifted_weights)
    shapes = Shapes(inputs)
    outputs, nodes, first_calls = [], [], {}
    names = module_call_names(traced)
    for op in steps(ops, "reading torch layers"):
        if isinstance(op, Lifted):  # what a rule read whole (sdpa_attention.py)
            if op.calls is not None:  # a module called again: its weights are the first call's
                if op.calls in first_calls:
                    tie(op.nodes, first_calls[op.calls])
                first_calls.setdefault(op.calls, op.nodes)
            shapes.add(op.nodes)
            nodes.extend(op.nodes)
            continue
        fx_node = op.node
        if fx_node.op == "output":
            outputs = [n.name for n in flat_outputs(fx_node.args[0])]
        elif fx_node.op == "call_module":
            layer = _layer(traced, fx_node, names[fx_node], state, used, shapes)
            if layer.class_name in patterns.RECURRENT_MODULES:  # not lifted (unpacked_calls.py): say why
                patterns.recurrent_use(fx_node, layer.module)
            elif layer.class_name == "ExplicitAttention":  # wconv's helper (cells.py): query, key, value in
                layer.inputs = [getattr(a, "name", a) for a in fx_node.args[:4]]
                layer.input_shapes = shapes.of(layer.inputs)
            elif layer.class_name in patterns.SELF_ATTENTION_MODULES:
                layer.inputs = patterns.self_attention_call(fx_node)
                layer.input_shapes = shapes.of(layer.inputs)
            elif layer.class_name in patterns.ATTENTION_MODULES:  # not lifted (unpacked_calls.py): say why
                patterns.attention_call(fx_node)
            created = TORCH_MODULES[layer.class_name](layer)
            if fx_node.target in first_calls:  # the module called again: its weights are the first call's
                tie(created, first_calls[fx_node.target])
            first_calls.setdefault(fx_node.target, created)
        elif _only_weight(fx_node) or patterns.absorbed(fx_node, function_name):
            continue  # a weight read with the functional layer that takes it; a value read with the call using it
        elif (functional := _functional(fx_node)) is not None:
            layer = _functional_layer(fx_node, functional, names[fx_node], state, used, shapes)
            created = TORCH_MODULES[layer.class_name](layer)
        elif fx_node.op != "placeholder":
            sources = [n.name for n in fx_node.all_input_nodes]
            function = function_name(fx_node)
            outputs = patterns.item_names(fx_node) if function in patterns.TUPLE_RESULTS else [fx_node.name]
            call = TorchCall(function, names[fx_node], _plain(fx_node.args), _plain(fx_node.kwargs), sources,
                             outputs, shapes.of(sources))
            created = TORCH_FUNCTIONS[call.function](call)
            created[0].fused = fused_activation(fx_node)
        if fx_node.op in ("call_module", "call_function", "call_method"):
            shapes.add(created)
            nodes.extend(created)
    used |= {key for computed_key, keys in computed.items() if computed_key in used for key in keys}
    used |= _tied_twins(model, state, used)
    unused = sorted(set(state) - used - set(computed) - set(own))
    if unused:
        raise WeightMismatch(f"state_dict entries the module does not use: {unused}")
    graph = Graph(type(model).__name__, inputs, outputs, nodes, source={"format": "torch", "path": source})
    return finish(graph)


def rewritten(traced, state: dict, shapes, dtypes) -> tuple[dict, list, set]:
    """``traced`` with its shape reads folded, the weights it computes evaluated (``state`` gains them) and the rules
    applied: (computed key -> the keys it comes from, the ops with what rules lifted, the weights they took)."""
    static_shapes.fold(traced, shapes, dtypes)
    padding_masks.fold(traced, shapes, dtypes)
    token_positions.fold(traced, shapes, dtypes)
    computed = computed_weights.fold(traced, state)
    ops, lifted_weights = rewrite.apply(rules(traced), ops_view.ops_of(traced, function_name), state, set(), set(),
                                        ops_view.FxView)
    return computed, ops, lifted_weights


def lifted_layers(traced, model, shapes, dtypes) -> tuple[dict, set]:
    """(fx node name -> the name of the layer a rule lifted whose output it is (the attention whose output
    projection it is); the names of the other fx nodes rules lifted, inside those layers), for the module as it is
    (its own weights): validate records a lifted layer under its name, and not the ops inside it, which no port
    of it computes apart."""
    state = {key: value.detach().cpu().numpy() for key, value in model.state_dict().items()}
    state.update(_made_by_code(model, traced))
    _, ops, _ = rewritten(traced, state, shapes, dtypes)
    lifted = {op.output[0]: op.name for op in ops if isinstance(op, Lifted)}
    kept = {op.node.name for op in ops if not isinstance(op, Lifted)}
    return lifted, {node.name for node in traced.graph.nodes if node.name not in kept and node.name not in lifted}


def module_call_names(traced) -> dict:
    """fx node -> the IR name of its layer call: the module's path, and ``path#k`` for its k-th call.

    A parameter-free module may be called many times (torchvision's ResNets reuse ``self.relu``);
    each call is its own node. A functional layer (``F.batch_norm(x, self.running_mean, ...)``) is named after
    the module that owns its weights, or is its fx name. ``validate`` records torch layers under the same names.
    """
    seen, names = Counter(), {}
    for fx_node, path in _layer_calls(traced):
        seen[path] += 1
        names[fx_node] = path if seen[path] == 1 else f"{path}#{seen[path]}"
    taken = set(names.values())
    for fx_node in traced.graph.nodes:  # other calls keep their fx names, unless a module has that path
        if fx_node.op in ("call_function", "call_method") and fx_node not in names:
            name = fx_node.name
            while name in taken:  # F.hardtanh beside a module named 'hardtanh'
                name = f"{name}_call"
            names[fx_node] = name
            taken.add(name)
    return names


def module_calls(traced) -> Counter:
    """Module path (or a functional layer's weight owner) -> how many times forward() calls it."""
    return Counter(path for _, path in _layer_calls(traced))


def _layer_calls(traced):
    for fx_node in traced.graph.nodes:
        if fx_node.op == "call_module":
            yield fx_node, fx_node.target
        elif (functional := _functional(fx_node)) is not None:
            yield fx_node, _layer_path(fx_node, functional)


def _layer_path(fx_node, functional) -> str:
    """A functional layer's name: the module owning its weights, the key of a bare parameter it uses (a ViT's
    ``class_token``), else its fx name."""
    if functional.named_by_weight:
        try:
            keys = functional_layers.weight_keys(fx_node, functional)
        except Unsupported:
            keys = {}
        return next(iter(keys.values()), fx_node.name)
    return _weight_owner(fx_node, functional) or fx_node.name


def _functional(fx_node):
    """The functional layer an fx call is (``F.batch_norm``, ``torch.conv2d``, ``x * self.gamma``), else None."""
    if fx_node.op not in ("call_function", "call_method"):
        return None
    functional = functional_layers.FUNCTIONAL_LAYERS.get(function_name(fx_node))
    if functional is None or fx_node.op == "call_method" and functional.bind is None:
        return None  # of methods, only x.mul(parameter) is a layer
    try:
        return functional if functional_layers.bound(fx_node, functional) is not None else None
    except Unsupported:
        return functional  # its arguments are refused when it is read


def _weight_owner(fx_node, functional) -> str | None:
    """The module path owning a functional layer's weights (``stem.bn`` for ``stem.bn.weight``), if one does."""
    try:
        keys = functional_layers.weight_keys(fx_node, functional)
    except Unsupported:
        return None
    owners = {key.rpartition(".")[0] for key in keys.values()}
    return owners.pop() if len(owners) == 1 else None


def _only_weight(fx_node) -> bool:
    """Whether a parameter or buffer (or its reshape, ``self.gamma.reshape(1, -1, 1, 1)``) is used only as
    functional layers' weights, not in arithmetic of its own: it is read with them. So is the batch size read
    to expand a parameter over the batch (``x.shape[0]``)."""
    if functional_layers.sizes_an_expand(fx_node):
        return True
    if fx_node.op != "get_attr" and functional_layers.parameter(fx_node) is None:
        return False

    def takes(user):
        functional = _functional(user)
        if functional is None:
            return fx_node.op == "get_attr" and _only_weight(user)
        try:
            _, named = functional_layers.bound(user, functional)
        except Unsupported:
            return False  # the call itself is refused
        return any(named.get(key) is fx_node for key in functional.weights)
    return bool(fx_node.users) and all(takes(user) for user in fx_node.users)


def _made_by_code(model, traced) -> dict:
    """The tensors the code makes, not the file: the module's non-persistent buffers (transformers'
    ``position_ids``, ``torch.arange`` in __init__: no state_dict holds them, loading one leaves them as the
    constructor made them) and those forward() creates (torch.export's constants)."""
    saved = set(model.state_dict())
    buffers = {name: buffer.detach().cpu().numpy().copy() for name, buffer in model.named_buffers()
               if name not in saved}
    return {**buffers, **traced.wconv_constants}


def refuse_other_shapes(model, state: dict) -> None:
    """A file whose tensors have other shapes than the module's own (a checkpoint of width=12 for a module built
    with width=16) is named at its first such tensor, in the module's order: a later layer's complaint would hide
    the cause. Integer buffers are counters (BatchNorm's num_batches_tracked), which no inference reads."""
    differing = [(key, tuple(state[key].shape), tuple(value.shape)) for key, value in model.state_dict().items()
                 if key in state and value.is_floating_point() and tuple(state[key].shape) != tuple(value.shape)]
    if differing:
        key, found, own = differing[0]
        others = f" (and {len(differing) - 1} more tensor(s))" if len(differing) > 1 else ""
        raise ShapeMismatch(f"'{key}' is {found} in the file but {own} in the module as constructed{others}: was "
                            "the checkpoint made with other constructor arguments? Pass them with --module-args")


def refuse_unsupported(traced, kept=None) -> None:
    """One error listing every module and call wconv cannot convert (of the ``kept`` nodes: what no rule lifted)."""
    problems = []
    calls = module_calls(traced)
    for fx_node in traced.graph.nodes:
        if kept is not None and fx_node not in kept:
            continue
        if (functional := _functional(fx_node)) is not None:
            try:
                keys = functional_layers.weight_keys(fx_node, functional)
            except Unsupported as error:
                problems.append(str(error))
                continue
            owner = _layer_path(fx_node, functional)
            if keys and calls.pop(owner, 1) > 1:
                problems.append(f"'{fx_node.name}' ({function_name(fx_node)} with the weights of '{owner}', called "
                                "more than once: shared weights are not supported)")
        elif fx_node.op == "call_module":
            module = traced.get_submodule(fx_node.target)
            class_name = type(module).__name__
            if class_name not in TORCH_MODULES:
                problems.append(f"'{fx_node.target}' ({class_name})")
        elif fx_node.op in ("call_function", "call_method") and function_name(fx_node) not in TORCH_FUNCTIONS \
                and not patterns.absorbed(fx_node, function_name) and not _only_weight(fx_node):
            problems.append(f"'{fx_node.name}' ({function_name(fx_node)})")
        elif fx_node.op == "get_attr" and not _only_weight(fx_node):
            problems.append(f"'{fx_node.name}' (direct use of the tensor '{fx_node.target}')")
    if problems:
        raise Unsupported(f"{len(problems)} unsupported layer(s): {', '.join(problems)}")


def _layer(traced, fx_node, name: str, state, used, shapes) -> TorchLayer:
    module = traced.get_submodule(fx_node.target)
    prefix = f"{fx_node.target}."
    expected = {f"{prefix}{name}" for name, _ in module.named_parameters()}
    expected |= {f"{prefix}{name}" for name, _ in module.named_buffers()}
    missing = sorted(expected - set(state))
    if missing:
        raise WeightMismatch(f"module '{fx_node.target}' ({type(module).__name__}) needs {missing}, "
                             "which the state_dict lacks")
    weights = {key[len(prefix):]: value for key, value in state.items() if key in expected}
    used.update(expected)
    inputs = [n.name for n in fx_node.all_input_nodes]
    return TorchLayer(type(module).__name__, name, module, weights, inputs, [fx_node.name], shapes.of(inputs))


def _functional_layer(fx_node, functional, name: str, state, used, shapes) -> TorchLayer:
    """A functional layer as the module it equals, with the weights it names (and the bookkeeping buffers of
    their owner, such as BatchNorm's ``num_batches_tracked``, which no inference reads)."""
    keys = functional_layers.weight_keys(fx_node, functional)
    missing = sorted(key for key in keys.values() if key not in state)
    if missing:
        raise WeightMismatch(f"'{fx_node.name}' ({function_name(fx_node)}) needs {missing}, which the state_dict "
                             "lacks")
    inputs = [functional_layers.bound(fx_node, functional)[0].name]
    input_shapes = shapes.of(inputs)
    weights = functional_layers.weight_arrays(fx_node, functional, state)
    module = functional_layers.build_module(fx_node, functional, weights, input_shapes[0])
    owner = _weight_owner(fx_node, functional)
    used.update(keys.values())
    used.update(f"{owner}.{counter}" for counter in functional.counters if f"{owner}.{counter}" in state)
    class_name = functional.helper or type(module).__name__
    return TorchLayer(class_name, name, module, weights, inputs, [fx_node.name], input_shapes)


def function_name(fx_node) -> str:
    """The registered name of a traced call: ``x.relu()`` -> 'relu', ``F.gelu`` -> 'torch.nn.functional.gelu'."""
    if fx_node.op == "call_method":
        return fx_node.target
    target = fx_node.target
    known = _registered_functions().get(id(target))
    if known:
        return known
    if str(target).startswith("aten."):  # an ATen op with no torch spelling (exported.py): aten.gather.default
        return str(target)
    return f"{getattr(target, '__module__', None) or '?'}.{getattr(target, '__name__', target)}"


@lru_cache(maxsize=1)
def _registered_functions() -> dict:
    """id(function object) -> registered name; builtins do not know their own module path."""
    import sys

    found = {}
    for name in TORCH_FUNCTIONS:
        module, _, attribute = name.rpartition(".")
        if module in sys.modules:  # a library the model has not imported (torchvision) has no calls in it
            function = getattr(sys.modules[module], attribute, None)
            if function is not None:
                found.setdefault(id(function), name)
    return found


def fused_activation(fx_node) -> bool:
    """True for ``F.relu(self.linear(x))``: an activation call on a module output used only there."""
    sources = fx_node.all_input_nodes
    if fx_node.op not in ("call_function", "call_method") or len(sources) != 1:
        return False
    reader = TORCH_FUNCTIONS.get(function_name(fx_node))
    is_activation = isinstance(getattr(reader, "__self__", None), Activation)
    is_layer = sources[0].op == "call_module" or _functional(sources[0]) is not None
    return is_activation and is_layer and len(sources[0].users) == 1


def _plain(value):
    """fx arguments with graph nodes replaced by their names."""
    if hasattr(value, "op") and hasattr(value, "name"):
        return value.name
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def flat_outputs(value) -> list:
    """The tensors (or graph nodes) of an output, in order: tuples and lists unnested, a dict by its values."""
    if isinstance(value, dict):  # transformers' ModelOutput: last_hidden_state, pooler_output, ...
        return flat_outputs(list(value.values()))
    if isinstance(value, (list, tuple)):
        return [item for v in value for item in flat_outputs(v)]
    return [value]


def example_inputs(model, given) -> tuple[list, list]:
    """The shape (no batch axis) and dtype of each input forward() requires: ``given`` (--input-shape, or a
    wconv-generated module's ``wconv_input_shapes``); without it, a net whose first layer is a Linear reveals its
    input width. Dtypes: a generated module's ``wconv_input_dtypes``, else int64 token ids for a first layer that
    is an Embedding and float32 for the rest (exported.py tries bool for later inputs a float does not fit)."""
    # forward()'s arguments without a default; where all have one (transformers' input_ids=None, ...), its first
    # ones, as many as shapes are given
    count = _required_inputs(model) or (len(given) if given else 1)
    first = exported.first_leaf(model)
    kind = type(first).__name__
    dtypes = list(getattr(model, "wconv_input_dtypes", None) or
                  ["int64" if kind == "Embedding" and index == 0 else "float32" for index in range(count)])
    if given and len(given) == 1 and count > 1 and getattr(model, "wconv_one_length", False):
        given = list(given) * count  # a save_pretrained folder's text inputs, one --input-shape for all
    if given:
        if len(given) != count:
            raise BadInput(f"{type(model).__name__}.forward() takes {count} input(s), but {len(given)} input "
                           "shape(s) were given")
        return [tuple(shape) for shape in given], dtypes
    if count == 1 and kind == "Linear":
        return [(int(first.in_features),)], dtypes
    example = "a sequence length such as 128 (token ids)" if kind == "Embedding" else \
        "e.g. 3,224,224 (channels first, no batch axis)"
    raise BadInput(f"cannot infer the shape of the input(s) of {type(model).__name__} (its first layer is "
                   f"{kind if first is not None else 'not a module'}); pass --input-shape, {example}")


def _required_inputs(model) -> int:
    """How many arguments forward() takes without a default (those with one keep it: timm's ``attn_mask=None``)."""
    import inspect

    try:
        parameters = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):
        return 1
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in parameters if p.kind in kinds and p.default is inspect.Parameter.empty)
