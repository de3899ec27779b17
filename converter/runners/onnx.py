"""Run an ONNX file with onnxruntime on the CPU."""

from __future__ import annotations

from ..errors import BadInput, about, first_line
from ..frameworks import require
from ..layouts import to_channels_first, to_channels_last
from . import Runner

SAFETY = "onnxruntime InferenceSession (CPU)"


def load(path, layout=None) -> Runner:
    ort = require("onnxruntime")
    from ..adapters.onnx.reader import load_model

    with about(path):
        model = load_model(path)  # refuses external data before onnxruntime would follow it
    session = _session(ort, path, model.SerializeToString())
    recorded = session.get_modelmeta().custom_metadata_map.get("wconv_interface")
    channels_last = (layout or recorded) == "channels_last"

    def run(runtime, inputs, names=None):
        """Canonical (channels-first) in and out, whatever interface the model has."""
        feeds = [to_channels_last(x) for x in inputs] if channels_last else inputs
        outputs = runtime.run(names, {i.name: x for i, x in zip(runtime.get_inputs(), feeds)})
        return [to_channels_first(o) if channels_last and name in declared else o
                for name, o in zip(names or declared, outputs)]

    declared = [o.name for o in session.get_outputs()]

    def capture(inputs):
        """Every node output, made a graph output of a copy of the model."""
        probe = _with_every_output(model)
        names = [o.name for o in probe.graph.output]
        return dict(zip(names, run(_session(ort, path, probe.SerializeToString()), inputs, names)))

    return Runner(lambda inputs: run(session, inputs), capture,
                  SAFETY + ("; channels-last interface" if channels_last else ""))


def _session(ort, path, serialized: bytes):
    try:
        return ort.InferenceSession(serialized, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types
        raise BadInput(f"{path}: onnxruntime could not load it ({first_line(error)})") from None


def _with_every_output(model):
    from onnx import ValueInfoProto

    probe = type(model)()
    probe.CopyFrom(model)
    declared = {o.name for o in probe.graph.output}
    for node in probe.graph.node:
        for name in node.output:
            if name and name not in declared:
                probe.graph.output.append(ValueInfoProto(name=name))
                declared.add(name)
    return probe
