"""torch.export as wconv reads a module: the graph of the module calls and functions a model's forward() makes.

torch.export runs forward() on example inputs and records every tensor op, so Python written for eager mode
(slices by a traced length, ``if`` on a shape, loops over time steps) runs as it does for the user; torch.fx,
which reads forward() symbolically, cannot trace such code. The batch axis is left free.

The recorded graph is ATen ops. It is regrouped into what the layer readers read:
- each call of a leaf module (a ``torch.nn`` layer, wconv's helper classes, the library classes read whole) is
  one ``call_module`` node, its arguments and results where torch.export preserved the call's signature;
- the ATen ops between them are spelled as the torch functions they are (``aten_calls.py``);
- parameters and buffers read outside leaf modules are ``get_attr`` nodes named by their state_dict keys.
"""

from __future__ import annotations

import contextlib
import io
import logging
import operator
import traceback
import warnings
from pathlib import Path

from ...errors import BadInput, Unsupported
from ...frameworks import require
from . import aten_calls
from .cells import is_helper_class
from .patterns import is_library_module

BATCH = 2  # the example batch; torch.export specializes sizes 0 and 1
FREE = 13  # the example size of an axis the input leaves free (a sequence length)


def module_graph(model, input_shapes, input_dtypes):
    """``model`` as a ``torch.fx.GraphModule`` of module calls and torch functions, recorded by torch.export on
    zeros of ``(BATCH, *shape)`` per input (``input_dtypes``: 'float32', 'int64', 'bool'; None in a shape: a free
    size)."""
    torch = require("torch")
    free = [[axis + 1 for axis, size in enumerate(shape) if size is None] for shape in input_shapes]
    try:
        program = export(model, _zeros(torch, input_shapes, input_dtypes), free)
    except Unsupported:  # the model's own failure on these inputs is bad input, or a mask wants bools
        program = export(model, _runnable(torch, model, input_shapes, input_dtypes), free)
    return _Regrouping(torch, model, program).graph_module()


def _zeros(torch, input_shapes, dtypes) -> tuple:
    return tuple(torch.zeros((BATCH, *[FREE if size is None else size for size in shape]),
                             dtype=getattr(torch, dtype or "float32"))
                 for shape, dtype in zip(input_shapes, dtypes))


def _runnable(torch, model, input_shapes, input_dtypes) -> tuple:
    """Zeros the model runs on eagerly: of each input's dtype, else with the float inputs after the first as bool
    masks (``~mask``, ``attn_mask=mask``); BadInput when it runs on neither."""
    examples = _zeros(torch, input_shapes, input_dtypes)
    masks = [dtype if index == 0 or dtype != "float32" else "bool" for index, dtype in enumerate(input_dtypes)]
    if masks != list(input_dtypes):
        try:
            run_eagerly(model, examples)
            return examples
        except BadInput:
            examples = _zeros(torch, input_shapes, masks)
    run_eagerly(model, examples)
    return examples


def export(model, examples, free_axes=None):
    """torch.export's program of ``model`` on ``examples``, every input's batch axis free, and ``free_axes`` (per
    input). Where export fails, the error names the line of the user's code it failed at."""
    torch = require("torch")
    free_axes = free_axes or [[] for _ in examples]
    # Dim.AUTO: free where the code allows it (a mask's first axis may be batch x heads)
    dynamic = tuple({axis: torch.export.Dim.AUTO for axis in (0, *axes)} for axes in free_axes)
    try:
        with torch.no_grad(), warnings.catch_warnings(), _quiet("torch"):
            warnings.simplefilter("ignore")  # e.g. an LSTM's "_flat_weights were assigned during export"
            return torch.export.export(model, examples, dynamic_shapes=dynamic, strict=False,
                                       preserve_module_call_signature=tuple(leaf_paths(model)))
    except Exception as error:  # torch.export raises many types for code it cannot run symbolically
        raise Unsupported(f"{type(model).__name__} cannot be exported by torch.export{_where(error)}: "
                          f"{_first_line(error)}") from None


@contextlib.contextmanager
def _quiet(logger: str):
    """torch.export logs what it cannot trace and prints the graph so far before raising: the error says it once."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield  # and prints the graph it stopped in
    finally:
        log.setLevel(level)


def run_eagerly(model, examples) -> None:
    """Run ``model`` as its author does: a model failing on the example shapes (its own assertion) is bad input,
    the shapes are wrong, not the export."""
    torch = require("torch")
    try:
        with torch.no_grad():
            model(*examples)
    except Exception as error:  # the user's forward() on the declared shape
        shapes = [tuple(example.shape) for example in examples]
        raise BadInput(f"the module fails on inputs of shape {shapes} ({type(error).__name__}: "
                       f"{_first_line(error) if str(error) else ''}); check --input-shape") from None


def is_leaf(module) -> bool:
    """A module read as one call: torch.fx's leaves (``torch.nn`` layers, not containers), wconv's helper classes
    and the library classes read by their weights (timm's Attention: patterns.LIBRARY_MODULES)."""
    torch = require("torch")
    kind = type(module).__module__
    in_torch_nn = kind.startswith("torch.nn") or kind.startswith("torch.ao.nn")
    return is_helper_class(type(module)) or is_library_module(module) or \
        (in_torch_nn and not isinstance(module, (torch.nn.Sequential, torch.nn.ModuleList, torch.nn.ModuleDict)))


def leaf_paths(model) -> list[str]:
    """The paths of the leaf modules under ``model`` (not descending into a leaf)."""
    found = []

    def visit(module, prefix):
        for name, child in module.named_children():
            path = f"{prefix}{name}"
            if is_leaf(child):
                found.append(path)
            else:
                visit(child, f"{path}.")
    visit(model, "")
    return found


def first_leaf(model):
    """The first leaf module ``model`` registers (most models register layers in the order they run)."""
    paths = leaf_paths(model)
    return model.get_submodule(paths[0]) if paths else None


class _Regrouping:
    """The ATen graph of ``program`` rewritten as module calls and torch functions over ``model``."""

    def __init__(self, torch, model, program):
        self.torch, self.model, self.program = torch, model, program
        self.graph = torch.fx.Graph()
        self.env = {}  # ATen node -> its value in the new graph (a node, or a Python value)
        self.attributes = {}  # placeholder name -> state_dict key (parameters and buffers), or constant's name
        self.constants = {}  # attribute name -> tensor created by forward() itself
        self.calls = {}  # ATen node -> the leaf call it belongs to
        self.emit_at = {}  # ATen node -> the leaf call to emit in its place (the call's last node)
        self.items = {}  # (a call's node, route) -> the getitem node taking that item
        self.parts = {}  # new getitem node -> (the call's node, its result's structure, the route it takes)

    def graph_module(self):
        self.nodes = nodes = {node.name: node for node in self.program.graph.nodes}
        self.position = {node: index for index, node in enumerate(self.program.graph.nodes)}
        self._inputs(nodes)
        self._group(nodes)
        outputs = []
        for node in self.program.graph.nodes:
            if node.op == "placeholder":
                continue
            if node.op == "output":
                outputs = [self._value(v) for v in node.args[0]]
            elif node in self.emit_at:
                self._emit_call(self.emit_at[node])
            elif node not in self.calls and (node.users or _in_place(node)):  # not a value nothing reads
                self._emit_op(node)
        spec = self.program.call_spec.out_spec
        user_outputs = outputs[len(outputs) - spec.num_leaves:] if spec is not None else outputs
        result = self.torch.utils._pytree.tree_unflatten(user_outputs, spec) if spec is not None else user_outputs
        self.graph.output(result)
        for name, tensor in self.constants.items():  # on the model while the GraphModule copies what it reads
            self.model.register_buffer(name, tensor, persistent=False)
        try:
            module = self.torch.fx.GraphModule(self.model, self.graph, type(self.model).__name__)
        finally:
            for name in self.constants:
                del self.model._buffers[name]
        module.graph.eliminate_dead_code()  # the parts of a result the model does not read, unused shape reads
        module.recompile()
        module.wconv_constants = {name: tensor.detach().numpy().copy() for name, tensor in self.constants.items()}
        return module

    def _inputs(self, nodes):
        kinds = self.torch.export.graph_signature.InputKind
        for spec in self.program.graph_signature.input_specs:
            node = nodes[spec.arg.name]
            if spec.kind == kinds.USER_INPUT:
                self.env[node] = self.graph.placeholder(node.name)
            elif spec.kind in (kinds.PARAMETER, kinds.BUFFER):
                self.attributes[node.name] = spec.target
            elif spec.kind == kinds.CONSTANT_TENSOR:
                name = f"wconv_constant_{len(self.constants)}"
                self.constants[name] = self.program.constants[spec.target]
                self.attributes[node.name] = name
            else:
                raise Unsupported(f"torch.export input '{node.name}' of kind {spec.kind.name} is not read")

    def _group(self, nodes):
        """Each leaf call's nodes: what its outputs compute from its inputs, within the module."""
        for entry in self.program.module_call_graph:
            signature = entry.signature
            if not entry.fqn or signature is None or not signature.outputs:
                continue
            path = entry.fqn.split("@")[0]
            call = _LeafCall(path, signature, nodes)
            stack = [nodes[name] for name in call.output_names if name in nodes]
            while stack:
                node = stack.pop()
                if node in call.members or node.name in call.input_names or node.op == "placeholder" \
                        or not _inside(node, path):
                    continue
                call.members.add(node)
                stack.extend(node.all_input_nodes)
            if not call.members:
                continue
            for node in call.members:
                self.calls[node] = call
            last = max(call.members, key=self.position.__getitem__)
            self.emit_at[last] = call

    def _emit_call(self, call):
        args, kwargs = self.torch.utils._pytree.tree_unflatten(
            [self._argument(argument) for argument in call.signature.inputs], call.signature.in_spec)
        args, kwargs = self._whole(args), self._whole(kwargs)
        created = self.graph.call_module(call.path, tuple(args), dict(kwargs))
        spec = call.signature.out_spec
        if spec.is_leaf():
            self.env[call.outputs[0]] = created
            return
        positions = self.torch.utils._pytree.tree_unflatten(list(range(spec.num_leaves)), spec)
        for index, route in _routes(positions):
            node = call.outputs[index]
            if node is not None and any(user not in call.members for user in node.users):
                self.env[node] = self._item(created, positions, route)

    def _item(self, result, positions, route):
        """``result[i][j]...`` along ``route``, each step made once."""
        value = result
        for depth, step in enumerate(route):
            key = (result, route[:depth + 1])
            if key not in self.items:
                self.items[key] = self.graph.call_function(operator.getitem, (value, step))
                self.parts[self.items[key]] = (result, positions, route[:depth + 1])
            value = self.items[key]
        return value

    def _whole(self, value):
        """``value`` with each tuple of all the items of one call's tuple result (an LSTM's ``(h_n, c_n)``) as
        that result: a state handed on whole, as the user's code hands it on."""
        if isinstance(value, dict):
            return {key: self._whole(item) for key, item in value.items()}
        if not isinstance(value, (tuple, list)):
            return value
        value = type(value)(self._whole(item) for item in value)
        parts = [self.parts.get(item) for item in value]
        if not value or not all(parts) or len({(part[0], part[2][:-1]) for part in parts}) != 1:
            return value
        result, positions, route = parts[0][0], parts[0][1], parts[0][2][:-1]
        if [part[2][-1] for part in parts] != list(range(_arity(positions, route))):
            return value
        return self._item(result, positions, route) if route else result

    def _emit_op(self, node):
        if node.op != "call_function":
            raise Unsupported(f"torch.export node '{node.name}' ({node.op}) is not read")
        spelled = aten_calls.spelling(node.target)
        args = self.torch.fx.node.map_aggregate(node.args, self._value)
        kwargs = self.torch.fx.node.map_aggregate(node.kwargs, self._value)
        if spelled is aten_calls.DROPPED:
            return
        if spelled is aten_calls.SAME or aten_calls.keeps_dtype(node):
            self.env[node] = args[0]
            return
        if node.target is operator.getitem and isinstance(args[0], aten_calls.FirstOfPair):
            if args[1] != 0:
                raise Unsupported(f"'{node.name}': the indices a max pool returns are not converted")
            self.env[node] = args[0].first
        elif spelled is None or (_in_place(node) and not _last_read(node, self.position)):  # the reader names what it cannot read
            self.env[node] = self.graph.call_function(node.target, args, kwargs)
        else:
            self.env[node] = spelled.emit(self.graph, args, kwargs)
        stack = node.meta.get("nn_module_stack")
        if hasattr(self.env[node], "meta") and stack:
            self.env[node].meta["module_path"] = list(stack.values())[-1][0]  # the module whose forward made it
        if hasattr(self.env[node], "meta"):  # the line that made it; its shape (the batch a symbol)
            self.env[node].meta.update({key: node.meta[key] for key in ("stack_trace", "val") if key in node.meta})

    def _value(self, value):
        if not hasattr(value, "op"):
            return value
        if value not in self.env and value.name in self.attributes:
            self.env[value] = self.graph.get_attr(self.attributes[value.name])
        if value not in self.env:
            raise Unsupported(f"torch.export value '{value.name}' is read outside the module call that makes it")
        return self.env[value]

    def _argument(self, argument):
        if type(argument).__name__ == "ConstantArgument":  # a None, flag or number passed to the call
            return argument.value
        return self._value(self.nodes[argument.name])


def _in_place(node) -> bool:
    name = str(node.target)
    return name.startswith("aten.") and name.split(".")[1].endswith("_")  # aten.add_.Tensor


def _last_read(node, position: dict) -> bool:
    """Whether an in-place op (``x += y``) is the last to read the tensor it writes, and no view of that tensor
    (``v = x[:, :2]``, which sees the write) is read after it: then it is the plain op."""
    def read_before(value) -> bool:
        return all(user is node or (position[user] < position[node] and
                                    (not aten_calls.is_view(user.target) or read_before(user)))
                   for user in value.users)
    return read_before(node.args[0])


class _LeafCall:
    def __init__(self, path, signature, nodes):
        self.path, self.signature = path, signature
        self.input_names = {getattr(argument, "name", None) for argument in signature.inputs} - {None}
        self.output_names = [getattr(argument, "name", None) for argument in signature.outputs]
        self.outputs = [nodes.get(name) for name in self.output_names]
        self.members = set()


def _inside(node, path: str) -> bool:
    stack = node.meta.get("nn_module_stack") or {}
    return any(entry[0] == path for entry in stack.values())



def _arity(structure, route) -> int:
    for step in route:
        structure = structure[step]
    return len(structure)


def _routes(structure, route=()):
    """(leaf index, the getitem steps reaching it) for a nested tuple/list of leaf indices."""
    if isinstance(structure, (tuple, list)):
        for step, item in enumerate(structure):
            yield from _routes(item, (*route, step))
    elif isinstance(structure, int):
        yield structure, route


def _first_line(error) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__


def _where(error) -> str:
    """' at file:line (function)' for the last frame of the user's code in ``error``'s traceback."""
    frames = traceback.extract_tb(error.__traceback__)
    library = ("/torch/", "/site-packages/torch", "/contextlib.py", "/converter/")
    user = [frame for frame in frames if not any(part in frame.filename for part in library)]
    if not user:
        return ""
    frame = user[-1]
    return f" at {Path(frame.filename).name}:{frame.lineno} ({frame.name}: {(frame.line or '').strip()[:80]})"
