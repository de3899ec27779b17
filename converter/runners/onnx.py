"""Run an ONNX file with onnxruntime on the CPU."""

from __future__ import annotations

from ..errors import BadInput, about, first_line
from ..frameworks import require

SAFETY = "onnxruntime InferenceSession (CPU)"


def load(path):
    ort = require("onnxruntime")
    from ..adapters.onnx.reader import load_model

    with about(path):
        load_model(path)  # refuses external data before onnxruntime would follow it
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types
        raise BadInput(f"{path}: onnxruntime could not load it ({first_line(error)})") from None
    names = [i.name for i in session.get_inputs()]

    def predict(inputs):
        return list(session.run(None, dict(zip(names, inputs))))

    return predict, SAFETY
