"""``wconv inspect``: layers, parameter names and shapes, in the file's convention and canonically."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import api, untrusted
from .errors import UnsupportedLayers
from . import views
from .ops import OPS

FILE_CONVENTION = {"keras": "keras", "torch": "torch", "onnx": "onnx", "ir": None}


def inspect_file(path, *, module=None, module_args=None, input_shape=None, input_dtype=None) -> dict:
    """A description of the model as plain data (what ``--json`` prints). A model with layers wconv cannot convert
    is still described, by the reader's listing of its layers, with ``unsupported``: the refusal."""
    try:
        with untrusted.malformed_input(path):
            return _inspect(path, module, module_args, input_shape, input_dtype)
    except UnsupportedLayers as error:
        return _listing(path, error)


def _listing(path, error: UnsupportedLayers) -> dict:
    return {
        "file": str(path),
        "format": untrusted.open_input(path),
        "unsupported": str(error),
        "layers": [{"name": name, "type": kind, "supported": problem is None, "problem": problem}
                   for name, kind, problem in error.listing],
    }


def _inspect(path, module, module_args, input_shape, input_dtype) -> dict:
    from .adapters.torch import pretrained

    kind = untrusted.open_input(path)
    folder = pretrained.is_folder(path)
    if kind == "torch" and not module and not (folder and input_shape):
        return _state_dict_only(path)
    graph = api.read(path, kind, module=module, module_args=module_args, input_shape=input_shape,
                     input_dtype=input_dtype)
    framework = FILE_CONVENTION[kind]
    layout = graph.source.get("layout", "channels_first")
    layers = []
    for node in graph.nodes:
        op = OPS[node.op]
        file_params = op.params_to(framework, node) if framework and node.params else {}
        names = {canonical: op.file_param_name(framework, canonical) for canonical in node.params} if framework else {}
        layers.append({
            "name": node.name,
            "op": node.op,
            "inputs": node.inputs,
            "output_shape": _shape(graph.shape(node.outputs[0])),
            "attrs": node.attrs,
            "fused": node.fused,
            "params": [
                {"canonical": p, "canonical_shape": list(a.shape), "canonical_axes": op.param_axes(p),
                 "file_name": names.get(p, p), "file_shape": _file_shape(file_params, names.get(p), a, framework)}
                for p, a in node.params.items()
            ],
        })
    return {
        "file": str(path),
        "format": kind,
        "source": graph.source,
        "inputs": [_value(graph, v.name, layout) for v in graph.inputs],
        "outputs": [_value(graph, n, layout) for n in graph.outputs],
        "parameters": graph.parameter_count(),
        "interface_layout": layout,
        "notes": graph.source.get("notes", []),
        "layers": layers,
    }


def _state_dict_only(path) -> dict:
    """Tensor names and shapes; neither torch nor the tensors' values are needed. A save_pretrained folder: those of
    every weight file (its layers with --input-shape)."""
    from .adapters.torch import pretrained

    folder = pretrained.is_folder(path)
    files = pretrained.weight_files(path) if folder else [path]
    tensors, notes = {}, []
    for file in files:
        found, said = _describe_tensors(file)
        tensors.update(found)
        notes += said
    return {
        "file": str(Path(path)),
        "format": "torch",
        "notes": notes,
        "note": f"transformers' {pretrained.config_of(path)['architectures'][0]}; pass --input-shape to see layers"
        if folder else "a state_dict holds no architecture; pass --module to see layers",
        # what a model learns: BatchNorm's num_batches_tracked counts training steps, no parameter
        "parameters": int(sum(int(np.prod(shape)) for name, (shape, _) in tensors.items()
                              if not name.endswith("num_batches_tracked"))),
        "tensors": [{"name": k, "shape": list(shape), "dtype": dtype} for k, (shape, dtype) in tensors.items()],
    }


def _describe_tensors(path) -> dict:
    if str(path).endswith(".safetensors"):
        from safetensors import safe_open

        with safe_open(str(path), "np") as handle:
            slices = {k: handle.get_slice(k) for k in handle.keys()}
            return {k: (tuple(s.get_shape()), s.get_dtype()) for k, s in slices.items()}, []
    from .adapters.torch.peek import peek_state_dict

    state, notes = peek_state_dict(path)
    return {k: (info.shape, info.dtype) for k, info in state.items()}, notes


def _value(graph, name: str, layout: str) -> dict:
    """A model input or output: its shape as the file takes it, and in IR order with the IR's axis pattern."""
    shape, pattern = graph.shape(name), graph.layout(name)
    in_file = views.shape_to(shape, pattern, "keras" if layout == "channels_last" else "torch")
    return {"name": name, "shape": _shape(in_file), "canonical_shape": _shape(shape), "layout": pattern}


def _file_shape(file_params: dict, name, canonical, framework):
    """The param's shape in the file; the canonical one for a file of canonical layouts (.wconv); None where the
    file holds it inside another tensor (a recurrent layer's gates of both directions)."""
    if name in file_params:
        return list(file_params[name].shape)
    return list(canonical.shape) if not framework else None


def _shape(shape):
    return None if shape is None else [None if d is None else int(d) for d in shape]
