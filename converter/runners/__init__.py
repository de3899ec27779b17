"""Run a model with its own framework, using that framework's safe loading options.

Each runner returns ``(predict, safety)``: a function from a list of numpy inputs to a
list of numpy outputs, and a sentence saying how the file was opened.
"""

from __future__ import annotations

from .. import formats


def load(path, format: str | None = None, *, module=None, module_args=None):
    kind = format or formats.detect(path)
    if kind == "keras":
        from .keras import load as load_keras

        return load_keras(path)
    if kind == "torch":
        from .torch import load as load_torch

        return load_torch(path, module, module_args)
    if kind == "onnx":
        from .onnx import load as load_onnx

        return load_onnx(path)
    from ..errors import BadInput

    raise BadInput(f"{path}: cannot run a '{kind}' file; validate Keras, torch or ONNX models")
