"""Run a model with its own framework, using that framework's safe loading options.

``load`` returns a Runner: ``predict(inputs)`` maps a list of canonical (channels-first) numpy
inputs to the model's outputs, ``capture(inputs)`` to every layer's output by layer name in
execution order, and ``safety`` says how the file was opened.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .. import untrusted


@dataclass
class Runner:
    predict: Callable
    capture: Callable
    safety: str


def load(path, format: str | None = None, *, module=None, module_args=None, layout: str | None = None) -> Runner:
    """``layout``: the feature-map layout a torch or ONNX model takes, when it is not the recorded one
    (a hand port, or tf2onnx's channels-last output); Keras models are channels-last."""
    kind = format or untrusted.open_input(path)
    if kind == "keras":
        from .keras import load as load_keras

        return load_keras(path)
    if kind == "torch":
        from .torch import load as load_torch

        return load_torch(path, module, module_args, layout)
    if kind == "onnx":
        from .onnx import load as load_onnx

        return load_onnx(path, layout)
    from ..errors import BadInput

    raise BadInput(f"{path}: cannot run a '{kind}' file; validate Keras, torch or ONNX models")
