"""A lint over converter/: every loader of a file is called only in its safe form.

Reads the package's source with ``ast`` (nothing is imported). A new call site that forgets
``weights_only=True``, ``safe_mode=True``, ``load_external_data=False`` or ``allow_pickle=False``,
a plain pickle load, an h5py file opened without the link/storage check, or eval/exec fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[2] / "converter"
# callee (last two dotted parts) -> keyword arguments it must be given, with these constant values
REQUIRED = {
    ("torch", "load"): {"weights_only": True},
    ("saving", "load_model"): {"safe_mode": True},
    ("keras", "load_model"): {"safe_mode": True},
    ("onnx", "load"): {"load_external_data": False},
    ("onnx", "load_model"): {"load_external_data": False},
    ("np", "load"): {"allow_pickle": False},
    ("numpy", "load"): {"allow_pickle": False},
}
FORBIDDEN = {("pickle", "load"), ("pickle", "loads"), ("torch", "jit"), ("", "eval"), ("", "exec"),
             ("", "__import__"), ("marshal", "loads"), ("dill", "load"), ("joblib", "load")}


def dotted(node) -> tuple[str, str]:
    if isinstance(node, ast.Attribute):
        owner = node.value
        return (owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else "",
                node.attr)
    return ("", node.id) if isinstance(node, ast.Name) else ("", "")


def calls():
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                yield path.relative_to(PACKAGE.parent), node, tree


def test_the_lint_sees_the_package():
    names = {dotted(node.func) for _, node, _ in calls()}
    assert ("torch", "load") in names and ("onnx", "load") in names and ("h5py", "File") in names


@pytest.mark.parametrize("callee", sorted(REQUIRED), ids=lambda c: ".".join(c))
def test_loaders_are_called_only_in_their_safe_form(callee):
    wanted = REQUIRED[callee]
    for path, node, _ in calls():
        if dotted(node.func) == callee:
            given = {k.arg: k.value.value for k in node.keywords if isinstance(k.value, ast.Constant)}
            for key, value in wanted.items():
                assert given.get(key) is value, f"{path}:{node.lineno}: {'.'.join(callee)} without {key}={value}"


def test_no_forbidden_calls():
    found = [f"{path}:{node.lineno}: {'.'.join(p for p in dotted(node.func) if p)}"
             for path, node, _ in calls() if dotted(node.func) in FORBIDDEN]
    assert not found, found


def test_unpicklers_restrict_their_globals():
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any("Unpickler" in ast.unparse(b) for b in node.bases):
                methods = {item.name for item in node.body if isinstance(item, ast.FunctionDef)}
                assert "find_class" in methods, f"{path}: {node.name} does not restrict find_class"


def read_only_hdf5_opens(function) -> list:
    """h5py.File calls that read (mode 'r' or none): an input. Writing modes open wconv's own outputs."""
    opens = [n for n in ast.walk(function) if isinstance(n, ast.Call) and dotted(n.func) == ("h5py", "File")]
    return [n for n in opens if len(n.args) < 2 or not isinstance(n.args[1], ast.Constant) or n.args[1].value == "r"]


def test_every_hdf5_input_opened_is_checked_before_use():
    """Each function that opens an HDF5 input also runs hdf5.check_file (links, external storage, sizes)."""
    for path in sorted(PACKAGE.rglob("*.py")):
        for function in ast.walk(ast.parse(path.read_text())):
            if not isinstance(function, ast.FunctionDef) or not read_only_hdf5_opens(function):
                continue
            called = {dotted(n.func) for n in ast.walk(function) if isinstance(n, ast.Call)}
            assert ("", "check_file") in called, f"{path}: {function.name} opens HDF5 without check_file"
