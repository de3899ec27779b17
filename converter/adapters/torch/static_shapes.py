"""Shape arithmetic folded into constants: ``x.size(1) // groups``, ``x.ndim == 4``, ``_assert(...)``.

The graph wconv reads (exported.py) records a model's reads of its input's shape as graph nodes. For the declared
input shape these are constants, except where they depend on the batch size (or a size the input leaves free).
The module is run twice, with two batch sizes (and two free sizes): a
value equal in both runs is a constant and replaces its node; a ``view``/``reshape`` whose input and output keep
the batch first becomes ``reshape(-1, *the sizes it gave)``. What still depends on the batch stays a node, and
the reader refuses it by name. A model that fails on the declared shape (its own assertion) is bad input.
"""

from __future__ import annotations

from ...errors import BadInput
from ...frameworks import require

BATCHES = (2, 3)
FREE_SIZES = (13, 17)  # a size the input leaves free (a sequence length), in the two runs: what varies is not folded
SHAPE_READS = {("call_method", "size"), ("call_method", "dim"), ("call_function", getattr),
               ("call_function", "torch._assert")}
SDPA = "aten.scaled_dot_product_attention.default"
RESHAPES = {("call_method", "view"), ("call_method", "reshape"), ("call_function", "torch.reshape")}


def fold(traced, input_shapes, input_dtypes) -> None:
    """Fold ``traced`` in place for inputs of ``input_shapes`` (no batch axis) and ``input_dtypes``."""
    if not any(_kind(node) in SHAPE_READS for node in traced.graph.nodes):
        return
    runs = [_values(traced, input_shapes, input_dtypes, batch, free) for batch, free in zip(BATCHES, FREE_SIZES)]
    torch = require("torch")
    for node in list(traced.graph.nodes):
        first, second = runs[0].get(node), runs[1].get(node)
        if _kind(node) in RESHAPES and _gives_its_input(node, runs, torch):
            node.replace_all_uses_with(node.args[0])  # GPT-2's input_ids.view(-1, T): no layer of its own
        elif _kind(node) in RESHAPES and _keeps_batch(node, runs, torch) and first.shape[1:] == second.shape[1:]:
            node.args, node.kwargs = (node.args[0], -1, *first.shape[1:]), {}
        elif node.op in ("call_function", "call_method") and _is_constant(first) and first == second:
            _replace(node, tuple(first) if isinstance(first, torch.Size) else first)
    for node in traced.graph.nodes:
        _fold_mask_built_from_sizes(node, runs, torch)
        _fold_kept_everywhere(node, runs, torch)
    for node in reversed(list(traced.graph.nodes)):
        if _kind(node) == ("call_function", "torch._assert") and _constant_condition(node):
            traced.graph.erase_node(node)
        elif node.op in ("call_function", "call_method") and not node.users and _is_value(runs[0].get(node), torch):
            traced.graph.erase_node(node)
    traced.recompile()


def _kind(node):
    target = node.target if node.op == "call_method" or node.target is getattr else \
        f"{getattr(node.target, '__module__', '')}.{getattr(node.target, '__name__', '')}"
    return node.op, target


def _values(traced, input_shapes, input_dtypes, batch: int, free: int) -> dict:
    """Every node's result when the model runs on zeros of ``(batch, *shape)``, ``free`` for a free size."""
    torch = require("torch")
    inputs = [torch.zeros((batch, *[free if size is None else size for size in shape]),
                          dtype=getattr(torch, dtype or "float32"))
              for shape, dtype in zip(input_shapes, input_dtypes)]
    try:
        return recorded_run(traced, inputs)
    except Exception as error:  # the user's forward() on the declared shape
        shapes = [tuple(i.shape) for i in inputs]
        raise BadInput(f"the module fails on inputs of shape {shapes} ({type(error).__name__}: "
                       f"{str(error).splitlines()[0] if str(error) else ''}); check --input-shape") from None


def recorded_run(traced, inputs, only: set | None = None) -> dict:
    """Every node's value when ``traced`` runs on ``inputs`` (what the module's code raises, it raises); with
    ``only``, those nodes' alone (they must not read any other)."""
    torch = require("torch")
    recorded = {}

    class Recorder(torch.fx.Interpreter):
        def run_node(self, node):
            if only is not None and node not in only and node.op != "placeholder":  # each takes its input in turn
                return None
            recorded[node] = result = super().run_node(node)
            return result

    with torch.no_grad():
        Recorder(traced).run(*inputs)
    return recorded


def _fold_mask_built_from_sizes(node, runs, torch) -> None:
    """An attention's boolean mask built from sizes alone (transformers' mask builder when no attention_mask is
    given) is no mask where it is True everywhere, and ``is_causal`` where it is exactly the causal mask (query step
    i sees key steps 0..i) for every batch row and head, in both runs."""
    if str(node.target) != SDPA:
        return
    position = 3 if len(node.args) > 3 else None
    mask = node.args[3] if position else node.kwargs.get("attn_mask")
    values = [run.get(mask) for run in runs]
    if not hasattr(mask, "op") or not all(isinstance(v, torch.Tensor) and v.dtype == torch.bool and v.ndim >= 2
                                          for v in values) or not _from_sizes_alone(mask):
        return
    if all(bool(v.all()) for v in values):
        causal = False
    elif all(bool((v == torch.ones(v.shape[-2:], dtype=torch.bool).tril()).all()) for v in values):
        causal = True
    else:
        return
    if position:
        node.args = (*node.args[:3], None, *node.args[4:])
    else:
        node.kwargs = {**node.kwargs, "attn_mask": None}
    if causal:
        node.args, node.kwargs = node.args[:5], {**node.kwargs, "is_causal": True}


WHERE = ("aten.where.self", "aten.where.ScalarOther")
PASSES = ("aten.contiguous.default", "aten.clone.default")  # give their input as it is


def _fold_kept_everywhere(node, runs, torch) -> None:
    """``torch.where(keep, scores_bias, lowest)`` for an attention's float mask, ``keep`` built from sizes alone
    (T5's mask of ones when no attention_mask is given) and True everywhere in both runs, is ``scores_bias``: which
    the attention broadcasts over the batch as it did the where's. Only where every reader is an attention's mask."""
    if str(node.target) not in WHERE or not hasattr(node.args[0], "op") or not _from_sizes_alone(node.args[0]):
        return
    values = [run.get(node.args[0]) for run in runs]
    if all(isinstance(v, torch.Tensor) and v.dtype == torch.bool and bool(v.all()) for v in values) and \
            all(_reads_as_attention_mask(user, node) for user in node.users):
        node.replace_all_uses_with(node.args[1])


def _reads_as_attention_mask(user, value) -> bool:
    if str(user.target) in PASSES:
        return all(_reads_as_attention_mask(each, user) for each in user.users)
    return str(user.target) == SDPA and (user.args[3:4] == (value,) or user.kwargs.get("attn_mask") is value) and \
        value not in user.args[:3]


def _from_sizes_alone(node) -> bool:
    """Whether ``node`` reads the inputs only through their sizes (``x.size(0)``), never their values."""
    return not inputs_read(node)


def inputs_read(node) -> set:
    """The inputs (placeholders) whose values ``node`` reads, through anything but their sizes."""
    seen, stack, found = set(), [node], set()
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        if current.op == "placeholder":
            found.add(current)
        elif _kind(current) not in SHAPE_READS:
            stack.extend(current.all_input_nodes)
    return found


def _is_constant(value) -> bool:
    if isinstance(value, (tuple, list)):
        return all(_is_constant(v) for v in value)
    return isinstance(value, (bool, int, float)) and not hasattr(value, "node")


def _is_value(value, torch) -> bool:
    """A plain Python value (a size, a flag), not a tensor or a tuple holding one."""
    return value is None or _is_constant(value) or isinstance(value, torch.Size)


def _gives_its_input(node, runs, torch) -> bool:
    """A view/reshape to the shape its input has, in both runs."""
    given = [run.get(node.args[0]) for run in runs]
    results = [run.get(node) for run in runs]
    return all(isinstance(v, torch.Tensor) for v in given + results) and \
        all(a.shape == b.shape for a, b in zip(given, results))


def _keeps_batch(node, runs, torch) -> bool:
    """A view/reshape whose input and output have the batch as their first axis in both runs."""
    source = node.args[0]
    for batch, run in zip(BATCHES, runs):
        given, result = run.get(source), run.get(node)
        if not (isinstance(given, torch.Tensor) and isinstance(result, torch.Tensor)) or \
                given.shape[:1] != (batch,) or result.shape[:1] != (batch,):
            return False
    return runs[0][node].shape[1:] == runs[1][node].shape[1:]


def _replace(node, value) -> None:
    """Every use of ``node`` reads ``value`` instead."""
    from torch.fx.node import map_arg

    for user in list(node.users):
        user.args = map_arg(user.args, lambda n: value if n is node else n)
        user.kwargs = map_arg(user.kwargs, lambda n: value if n is node else n)


def _constant_condition(node) -> bool:
    """Whether ``torch._assert(condition, message)`` has a folded condition (a false one failed while running)."""
    condition = node.args[0] if node.args else node.kwargs.get("condition")
    return not hasattr(condition, "op")
