"""Run an ONNX file with onnxruntime on the CPU."""

from __future__ import annotations

from ..errors import BadInput, about, first_line
from ..frameworks import require
from ..layouts import to_channels_first, to_channels_last

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
    channels_last = session.get_modelmeta().custom_metadata_map.get("wconv_interface") == "channels_last"

    def predict(inputs):
        """Canonical (channels-first) in and out, whatever interface the model has."""
        if channels_last:
            inputs = [to_channels_last(x) for x in inputs]
        outputs = list(session.run(None, dict(zip(names, inputs))))
        return [to_channels_first(o) for o in outputs] if channels_last else outputs

    return predict, SAFETY + ("; channels-last interface" if channels_last else "")
