"""Run an ONNX file with onnxruntime on the CPU."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from ..errors import BadInput, about, first_line
from ..frameworks import require
from ..views import from_framework, to_framework
from . import Interface, Runner, layer_outputs

SAFETY = "onnxruntime InferenceSession (CPU)"


def load(path, layout=None, interface: Interface | None = None) -> Runner:
    ort = require("onnxruntime")
    from ..adapters.onnx.reader import load_model
    from ..adapters.onnx.writer import too_big

    with about(path):
        model = load_model(path)  # refuses external data before onnxruntime would follow it
        structure = _structure_if_external(path) if too_big(model) else None
    # A model past 2 GiB (its weights external data) runs from its file, onnxruntime following the locations
    # load_model checked: inlined, it would not serialize. Smaller ones run from their bytes.
    session = _session(ort, path, model.SerializeToString() if structure is None else None)
    recorded = session.get_modelmeta().custom_metadata_map.get("wconv_interface")
    channels_last = (layout or recorded) == "channels_last"
    view = "keras" if channels_last else "onnx"
    interface = interface or Interface()

    def run(runtime, inputs, names=None):
        """IR order in and out, whatever interface the model has."""
        feeds = [to_framework(x, interface.input(i, x.ndim), view) for i, x in enumerate(inputs)]
        outputs = runtime.run(names, {i.name: x for i, x in zip(runtime.get_inputs(), feeds)})
        return [from_framework(o, interface.output(declared.index(name), o.ndim), view) if name in declared else o
                for name, o in zip(names or declared, outputs)]

    declared = [o.name for o in session.get_outputs()]

    layers = _layer_outputs(path)

    def capture(inputs):
        """Each layer's output in node order, named as every runner names it (``layer_outputs``); every node's
        output under its value name where wconv cannot read the file into layers."""
        values = [name for node in model.graph.node for name in node.output if name]
        if layers is not None:  # a layer whose reading renamed its output (a fused attention) keeps its own name
            named = set(layers.values())
            values = [name for name in values if name in layers or name in named and name not in layers]
        if structure is None:
            found = run(_session(ort, path, _with_every_output(model).SerializeToString()), inputs, values)
        else:
            with _beside(path, _with_every_output(structure)) as probe:
                found = run(_session(ort, path, None, probe), inputs, values)
        return {(layers or {}).get(name, name): array for name, array in zip(values, found)}

    return Runner(lambda inputs: run(session, inputs), capture,
                  SAFETY + ("; channels-last interface" if channels_last else ""), view)


def _layer_outputs(path) -> dict | None:
    """wconv's reading of the file as ``layer_outputs``; None where it cannot read it."""
    from ..adapters.onnx.reader import read
    from ..errors import WconvError

    try:
        return layer_outputs(read(path))
    except WconvError:
        return None


def _structure_if_external(path):
    """The file's ModelProto without its external data read (what references it), where it has external data;
    else None."""
    import onnx

    structure = onnx.load(str(path), load_external_data=False)
    external = any(t.data_location == onnx.TensorProto.EXTERNAL for t in structure.graph.initializer)
    return structure if external else None


@contextmanager
def _beside(path, model):
    """``model`` saved in a temp file beside ``path`` (its external data found by the same relative locations),
    removed afterwards."""
    import onnx

    from ..outputs import temp_name

    temp = temp_name(Path(path))
    try:
        onnx.save(model, temp)
        yield temp
    finally:
        temp.unlink(missing_ok=True)


def _session(ort, path, serialized: bytes | None, file=None):
    """A session of the model's bytes, or (external data) of its file (``file``: a probe saved beside it)."""
    try:
        return ort.InferenceSession(serialized if serialized is not None else str(file or path),
                                    providers=["CPUExecutionProvider"])
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
