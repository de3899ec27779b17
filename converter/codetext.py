"""Everything that turns data from a model file into generated Python source, in one place.

Model files are data; the generated ``Model`` is code that users import. So every string from a
file reaches the source only through this module: names become ASCII identifiers
(``identifier``), free text becomes escaped docstring text (``docstring_text``), values become
plain literals (``literal``). And ``verify`` checks the finished module against the one shape wconv
writes (a docstring, three imports, wconv's fixed helper classes where a layer needs one, and one
``Model`` class whose methods call only ``nn`` modules, those helpers, ``torch``/``F`` functions and
tensor methods), so a value that slipped through an op's template
is refused before a file is written, whichever op wrote it.
"""

from __future__ import annotations

import ast
import keyword
import math
import re

from .errors import BadInput

# Names the generated module uses itself; a layer must not shadow them.
RESERVED = {"self", "torch", "nn", "F", "x", "float", "super"}

# The callables generated code may reach through torch, F and tensors (what the op table writes).
TORCH_FUNCTIONS = {"flatten", "stack", "cat", "amax", "mean", "maximum", "minimum", "relu", "sigmoid", "tanh",
                   "selu", "softmax", "log_softmax", "flip", "split", "clamp"}
FUNCTIONAL = {"relu", "sigmoid", "tanh", "softmax", "log_softmax", "gelu", "elu", "selu", "softplus", "leaky_relu",
              "relu6", "silu", "hardswish", "hardsigmoid", "mish", "pad", "interpolate", "scaled_dot_product_attention"}
TENSOR_METHODS = {"permute", "reshape", "mean", "flatten", "unflatten", "transpose", "sum", "prod", "ne", "unsqueeze",
                  "expand", "cumsum", "mul", "add"}
NAMESPACES = {"torch": TORCH_FUNCTIONS.__contains__, "F": FUNCTIONAL.__contains__,
              "nn": lambda name: name[:1].isupper() and name.isidentifier()}  # nn.<Module class>
GLOBAL_NAMES = {"torch", "nn", "F", "float", "super"}


def identifier(name: str, taken: set) -> str:
    """A valid, unused ASCII identifier close to ``name`` (torch paths keep their words)."""
    base = re.sub(r"[^0-9A-Za-z_]", "_", str(name)).strip("_")[:80] or "layer"
    if base[0].isdigit() or keyword.iskeyword(base) or base in RESERVED or base.startswith("__"):
        base = f"l_{base}"
    candidate, suffix = base, 1
    while candidate in taken:
        suffix += 1
        candidate = f"{base}_{suffix}"
    taken.add(candidate)
    return candidate


def docstring_text(text, limit: int = 300) -> str:
    """``text`` as it may stand inside a triple-quoted docstring: one line, no quote can close it.

    Backslashes, control and non-ASCII characters become escapes (``unicode_escape``), and every
    double quote is escaped, so the text can neither end the docstring nor start a new line.
    """
    text = str(text)
    if len(text) > limit:
        text = text[:limit] + "..."
    return text.encode("unicode_escape").decode("ascii").replace('"', '\\"')


def literal(value) -> str:
    """Python source for a plain value (numbers, strings, booleans, None, and tuples/lists of them).

    Floats are written in their shortest form that keeps 15 significant digits (0.01, not
    0.010000000000000009); anything else is refused: values from a file never become code.
    """
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        return repr(int(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            return f"float({str(value)!r})"
        return repr(float(f"{value:.15g}"))
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, tuple):
        items = [literal(v) for v in value]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    if isinstance(value, list):
        return f"[{', '.join(literal(v) for v in value)}]"
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy scalars
        return literal(value.item())
    raise BadInput(f"a value of type {type(value).__name__} cannot be written into generated code")


def verify(code: str) -> str:
    """Return ``code`` if it has exactly the shape of a wconv-generated module, else refuse it."""
    try:
        tree = ast.parse(code)
    except SyntaxError as error:
        raise BadInput(f"refusing to write generated code that does not parse ({error.msg}, line {error.lineno}); "
                       "a value from the input did not fit") from None
    _Checker().module(tree)
    return code


class _Refused(Exception):
    pass


class _Checker:
    """Walks the generated module; any construct wconv does not write is refused."""

    def __init__(self):
        self.helpers = set()  # the helper classes the module defines, which __init__ may construct

    def module(self, tree: ast.Module) -> None:
        try:
            self._module(tree)
        except _Refused as refusal:
            raise BadInput(f"refusing to write generated code: {refusal}; a value from the input did not "
                           "become a plain literal") from None

    def _module(self, tree) -> None:
        from .adapters.torch import cells  # here, not above: the adapters import the op table, which imports this

        body = list(tree.body)
        expected = ["docstring", "import torch", "import torch.nn.functional as F", "from torch import nn", "class"]
        if len(body) < len(expected):
            raise _Refused(f"{len(body)} top-level statements instead of {len(expected)}")
        docstring, *imports, cls = body[:4] + body[-1:]
        for helper in body[4:-1]:  # helper classes: exactly wconv's own text, nothing from a file
            if not cells.is_helper(helper):
                raise _Refused(f"a top-level statement that is not one of wconv's helper classes: "
                               f"{ast.unparse(helper)[:80]}")
            self.helpers.add(helper.name)
        if not (isinstance(docstring, ast.Expr) and isinstance(docstring.value, ast.Constant)
                and isinstance(docstring.value.value, str)):
            raise _Refused("the module does not start with its docstring")
        if [ast.unparse(node) for node in imports] != expected[1:4]:
            raise _Refused("unexpected imports")
        self._class(cls)

    def _class(self, cls) -> None:
        if not (isinstance(cls, ast.ClassDef) and cls.name == "Model" and not cls.decorator_list
                and [ast.unparse(b) for b in cls.bases] == ["nn.Module"] and not cls.keywords):
            raise _Refused("the class is not 'class Model(nn.Module)'")
        methods = {}
        for statement in cls.body:
            if isinstance(statement, ast.Assign):
                self._constant_assignment(statement)
            elif isinstance(statement, ast.FunctionDef) and statement.name in ("__init__", "forward") \
                    and statement.name not in methods and not statement.decorator_list:
                methods[statement.name] = statement
            else:
                raise _Refused(f"unexpected statement in the class: {ast.unparse(statement)[:80]}")
        if set(methods) != {"__init__", "forward"}:
            raise _Refused("the class needs exactly __init__ and forward")
        self._init(methods["__init__"])
        self._forward(methods["forward"])

    @staticmethod
    def _constant_assignment(statement) -> None:
        if len(statement.targets) != 1 or not isinstance(statement.targets[0], ast.Name):
            raise _Refused("a class attribute that is not a plain name")
        try:
            ast.literal_eval(statement.value)
        except ValueError:
            raise _Refused(f"class attribute {statement.targets[0].id} is not a literal") from None

    def _arguments(self, function) -> list[str]:
        arguments = function.args
        if arguments.posonlyargs or arguments.vararg or arguments.kwonlyargs or arguments.kwarg or \
                arguments.defaults or not arguments.args or arguments.args[0].arg != "self":
            raise _Refused(f"{function.name} has unexpected arguments")
        return [a.arg for a in arguments.args]

    def _init(self, function) -> None:
        self._arguments(function)
        first, *rest = function.body
        if ast.unparse(first) != "super().__init__()":
            raise _Refused("__init__ does not start with super().__init__()")
        for statement in rest:
            if isinstance(statement, ast.Pass):
                continue
            if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                    and self._is_self_attribute(statement.targets[0])):
                raise _Refused(f"unexpected statement in __init__: {ast.unparse(statement)[:80]}")
            self._expression(statement.value, {"self"})

    def _forward(self, function) -> None:
        variables = set(self._arguments(function))
        *assignments, last = function.body
        for statement in assignments:
            if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1):
                raise _Refused(f"unexpected statement in forward: {ast.unparse(statement)[:80]}")
            self._expression(statement.value, variables)
            variables |= self._assigned_names(statement.targets[0])
        if not (isinstance(last, ast.Return) and last.value is not None):
            raise _Refused("forward does not end with a return")
        self._expression(last.value, variables)

    @staticmethod
    def _assigned_names(target) -> set[str]:
        targets = target.elts if isinstance(target, ast.Tuple) else [target]
        if not all(isinstance(t, ast.Name) for t in targets):
            raise _Refused("forward assigns to something other than variables")
        return {t.id for t in targets}

    @staticmethod
    def _is_self_attribute(node) -> bool:
        return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self" \
            and not node.attr.startswith("_")

    def _expression(self, node, variables: set) -> None:
        if isinstance(node, ast.Constant):
            return
        if isinstance(node, (ast.Tuple, ast.List)):
            for element in node.elts:
                self._expression(element, variables)
        elif isinstance(node, ast.Name):
            if node.id not in variables and node.id not in GLOBAL_NAMES:
                raise _Refused(f"unknown name '{node.id}'")
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            self._expression(node.operand, variables)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult)):
            self._expression(node.left, variables)
            self._expression(node.right, variables)
        elif isinstance(node, ast.Subscript):
            self._expression(node.value, variables)
            self._subscript(node.slice, variables)
        elif isinstance(node, ast.Call):
            self._call(node, variables)
        elif isinstance(node, ast.Attribute):
            raise _Refused(f"attribute access '{ast.unparse(node)[:80]}' outside a call")
        else:
            raise _Refused(f"unexpected expression '{ast.unparse(node)[:80]}'")

    def _subscript(self, node, variables) -> None:
        parts = node.elts if isinstance(node, ast.Tuple) else [node]
        for part in parts:
            if isinstance(part, ast.Slice):
                for bound in (part.lower, part.upper, part.step):
                    if bound is not None:
                        self._expression(bound, variables)
            else:
                self._expression(part, variables)

    def _call(self, node, variables) -> None:
        self._callee(node.func, variables)
        for argument in node.args:
            self._expression(argument, variables)
        for keyword_argument in node.keywords:
            if keyword_argument.arg is None:
                raise _Refused("a call with **arguments")
            self._expression(keyword_argument.value, variables)

    def _callee(self, func, variables) -> None:
        """``float``/``super``; ``nn.<Module>``, ``torch.<fn>``, ``F.<fn>`` from the allowlists;
        ``self.<layer>``; and a tensor method on an allowed expression (``x.permute``)."""
        if isinstance(func, ast.Name):
            if func.id not in ("float", "super") and func.id not in self.helpers:
                raise _Refused(f"a call of '{func.id}'")
            return
        if isinstance(func, ast.Subscript) and self._is_self_attribute(func.value) and \
                isinstance(func.slice, ast.Constant) and type(func.slice.value) is int:
            return  # one module of a submodule list: self.<layer>[k](...)
        if not isinstance(func, ast.Attribute) or func.attr.startswith("_"):
            raise _Refused(f"a call of '{ast.unparse(func)[:80]}'")
        owner = func.value
        if isinstance(owner, ast.Name) and owner.id in NAMESPACES:
            if not NAMESPACES[owner.id](func.attr):
                raise _Refused(f"a call of '{ast.unparse(func)}'")
        elif isinstance(owner, ast.Name) and owner.id == "self":
            return  # a submodule: self.<layer>(...)
        elif func.attr in TENSOR_METHODS:
            self._expression(owner, variables)
        else:
            raise _Refused(f"a call of '{ast.unparse(func)[:80]}'")
