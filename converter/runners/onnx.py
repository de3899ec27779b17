"""Run an ONNX file with onnxruntime on the CPU."""

from __future__ import annotations

from ..errors import BadInput
from ..frameworks import require

SAFETY = "onnxruntime InferenceSession (CPU)"


def load(path):
    ort = require("onnxruntime")
    from ..adapters.onnx.reader import load_model

    try:
        load_model(path)  # refuses external data before onnxruntime would follow it
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:
        if hasattr(error, "exit_code"):
            raise type(error)(f"{path}: {error}") from None
        raise BadInput(f"{path}: onnxruntime could not load it ({str(error).splitlines()[0][:200]})") from None
    names = [i.name for i in session.get_inputs()]

    def predict(inputs):
        return list(session.run(None, dict(zip(names, inputs))))

    return predict, SAFETY
