"""Build the user's ``nn.Module`` from ``pkg.mod:Class`` or ``path/file.py:Class`` plus JSON arguments (and find
the Keras model class a ``--module`` names, for a Keras file that saves only its constructor's arguments).

This runs the user's own code, which they named explicitly; model files are never code.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from pathlib import Path

from ...errors import BadInput, first_line


def load_module(spec: str, arguments: str | dict | None = None, option: str = "--module"):
    """Instantiate the module class named by ``spec`` with keyword ``arguments`` (``option``: the flag that gave
    ``spec``, for messages)."""
    cls = named(spec, option)
    kwargs = parse_module_args(arguments)
    try:
        return cls(**kwargs)
    except TypeError as error:
        raise BadInput(f"{option} '{spec}': cannot construct with {kwargs}: {error}") from None


def named(spec: str, option: str = "--module"):
    """The class (or factory) ``spec`` names, ``pkg.mod:Class`` or ``path/file.py:Class``, imported."""
    location, _, class_name = spec.rpartition(":")
    if not location or not class_name:
        raise BadInput(f"{option} '{spec}': expected 'package.module:Class' or 'path/file.py:Class'")
    namespace = _import(location, spec, option)
    cls = getattr(namespace, class_name, None)
    if cls is None:
        raise BadInput(f"{option} '{spec}': {location} defines no '{class_name}'")
    return cls


def parse_module_args(arguments: str | dict | None) -> dict:
    """``--module-args`` as keyword arguments: a JSON object (or a dict, from a script)."""
    if not isinstance(arguments, str):
        return dict(arguments or {})
    try:
        kwargs = json.loads(arguments)
    except json.JSONDecodeError as error:
        raise BadInput(f"--module-args is not valid JSON ({error.msg} at character {error.pos}): {arguments[:200]}") \
            from None
    if not isinstance(kwargs, dict):
        raise BadInput(f"--module-args must be a JSON object of keyword arguments, not a {type(kwargs).__name__}")
    return kwargs


def _import(location: str, spec: str, option: str):
    if location.endswith(".py"):
        path = Path(location)
        if not path.is_file():
            raise BadInput(f"{option} '{spec}': {path} does not exist")
        module_name = f"wconv_user_{abs(hash(path.resolve()))}"
        loader = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(loader)
        sys.modules[module_name] = module
        folder = str(path.resolve().parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)  # as `python file.py` does: the modules beside it are importable
        try:
            loader.loader.exec_module(module)
        except (Exception, SystemExit) as error:  # the user's file fails (or exits) as it is imported: theirs to fix
            sys.modules.pop(module_name, None)
            raise BadInput(f"{option} '{spec}': importing {path} failed ({type(error).__name__}: "
                           f"{first_line(error)})") from None
        return module
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")  # as `python -m` does: modules in the working folder are importable
    try:
        return importlib.import_module(location)
    except ImportError as error:
        raise BadInput(f"{option} '{spec}': cannot import {location} ({error})") from None
    except (Exception, SystemExit) as error:  # the user's module fails (or exits) as it is imported
        raise BadInput(f"{option} '{spec}': importing {location} failed ({type(error).__name__}: "
                       f"{first_line(error)})") from None
