"""The registry of ops and of the framework names that lead to them.

Registering a name twice is an error, so two op files cannot silently claim
the same Keras class, torch module or ONNX op type.
"""

from __future__ import annotations

from typing import Callable

from .base import OpDef

OPS: dict[str, OpDef] = {}
KERAS_CLASSES: dict[str, object] = {}  # layer class -> reader with keras_weight_names() and from_keras()
TORCH_MODULES: dict[str, Callable] = {}  # nn class -> fn(name, module, inputs, outputs) -> Node
TORCH_FUNCTIONS: dict[str, Callable] = {}  # traced function/method name -> fn(name, args, kwargs, inputs, outputs)
ONNX_TYPES: dict[str, Callable] = {}  # op_type -> fn(onnx_node, context) -> list[Node]


def _claim(table: dict, key: str, value, what: str) -> None:
    if key in table:
        raise RuntimeError(f"{what} '{key}' is registered twice")
    table[key] = value


def register_op(op: OpDef) -> OpDef:
    _claim(OPS, op.name, op, "op")
    return op


def register_keras(class_name: str, handler) -> None:
    _claim(KERAS_CLASSES, class_name, handler, "Keras class")


def register_torch_module(class_name: str, handler: Callable) -> None:
    _claim(TORCH_MODULES, class_name, handler, "torch module")


def register_torch_function(name: str, handler: Callable) -> None:
    _claim(TORCH_FUNCTIONS, name, handler, "torch function")


def register_onnx(op_type: str, handler: Callable) -> None:
    _claim(ONNX_TYPES, op_type, handler, "ONNX op type")
