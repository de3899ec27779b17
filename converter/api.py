"""The library face of wconv: read any format into the IR, write the IR to any format, convert."""

from __future__ import annotations

from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Sequence

from . import formats, ir_file, untrusted
from .errors import BadInput, about
from .ir import Graph
from .shapes import declare_input_dtype
from .outputs import check_outputs, transaction


@dataclass
class Conversion:
    graph: Graph
    outputs: list[Path] = field(default_factory=list)


def read(path: str | PathLike, format: str | None = None, *, module: str | None = None,
         module_args: str | dict | None = None, input_shape: Sequence[int] | None = None,
         input_dtype: str | None = None) -> Graph:
    """Read a model file into the canonical IR.

    ``format``: keras, torch, onnx or ir (detected from the content when omitted).
    A torch state_dict holds no architecture: give ``module`` as ``pkg.mod:Class`` or ``file.py:Class``.
    ``input_dtype`` (float32, or int64 for token ids) declares what the inputs take; it is inferred from the
    layers that read them, and a declaration that contradicts them is an error.
    """
    with untrusted.malformed_input(path):
        graph = _read(path, format, module, module_args, input_shape)
    with about(path):
        declare_input_dtype(graph, input_dtype)
    return graph


def _read(path, format, module, module_args, input_shape) -> Graph:
    kind = untrusted.open_input(path)
    if format and format != kind:
        raise BadInput(f"{path}: is a {kind} file, not {format}")
    if kind == "keras":
        from .adapters import keras

        return keras.read(path, module, input_shape)
    if kind == "torch":
        from .adapters.torch import pretrained

        if not module and not pretrained.is_folder(path):
            from .adapters.torch.state_dict import load_state_dict

            load_state_dict(path)  # a file that is not a state_dict is the first thing to report
            raise BadInput(f"{path}: a state_dict holds no architecture; pass --module pkg.mod:Class "
                           "(or file.py:Class) naming its nn.Module")
        from .adapters import torch

        return torch.read(path, module, module_args, input_shape)
    if kind == "onnx":
        from .adapters import onnx

        return onnx.read(path)
    if kind == "ir":
        return ir_file.load(path)
    raise BadInput(f"{path}: unknown format '{kind}' (use one of {', '.join(formats.FORMATS)})")


def output_paths(path, format: str | None = None, external_data: bool = False) -> list[Path]:
    """Every file a write to ``path`` creates (torch adds the generated module source; ONNX with ``external_data``
    its weights' file; past 2 GiB the ONNX writer adds that file itself)."""
    kind = format or formats.for_output(path)
    if kind == "torch":
        from .adapters.torch.writer import generated_source_path

        return [Path(path), generated_source_path(path)]
    if kind == "onnx" and external_data:
        return [Path(path), Path(path).with_name(f"{Path(path).name}.data")]
    return [Path(path)]


def write(graph: Graph, path: str | PathLike, format: str | None = None, *, force: bool = False,
          sources: Sequence[str | PathLike] = (), external_data: bool = False) -> list[Path]:
    """Write the IR; refuses to overwrite without ``force`` and never leaves a partial file. ``external_data``: an
    ONNX model's weights in ``<name>.data`` beside it (automatic past 2 GiB)."""
    kind = format or formats.for_output(path)
    if external_data and kind != "onnx":
        raise BadInput(f"{path}: --external-data applies to ONNX outputs, not {kind}")
    outputs = output_paths(path, kind, external_data)
    check_outputs(sources, outputs, force)
    with about(path), transaction(force):
        if kind == "onnx":
            written = _writer(kind, path)(graph, path, external_data=external_data)
            outputs += [p for p in written if p not in outputs]
        else:
            _writer(kind, path)(graph, path)
    return outputs


def check_output_format(target, target_format: str | None) -> None:
    """An output name whose extension says another format than the command is refused before any work."""
    implied = formats.for_output(target)
    if target_format and implied != target_format:
        suffixes = ", ".join(k for k, v in formats.OUTPUT_SUFFIXES.items() if v == target_format)
        raise BadInput(f"{target}: a '{Path(target).suffix}' name is a {implied} file, but this command writes "
                       f"{target_format} ({suffixes}); use `wconv convert` to go by the extension")


def _kept_interface(graph: Graph, target_kind: str, source) -> str | None:
    source_layout = graph.source.get("layout", "channels_first")
    if target_kind not in ("torch", "onnx"):
        raise BadInput(f"{source}: --keep-input-layout applies to torch and ONNX outputs (Keras models are "
                       "channels-last already)")
    return "channels_last" if source_layout == "channels_last" else None


def _writer(kind: str, path):
    if kind == "keras":
        from .adapters import keras

        return keras.write
    if kind == "torch":
        from .adapters import torch

        return torch.write
    if kind == "onnx":
        from .adapters import onnx

        return onnx.write
    if kind == "ir":
        return ir_file.save
    raise BadInput(f"{path}: unknown format '{kind}'")


def convert(source: str | PathLike, target: str | PathLike, *, source_format: str | None = None,
            target_format: str | None = None, module: str | None = None, module_args: str | dict | None = None,
            input_shape: Sequence[int] | None = None, input_dtype: str | None = None, force: bool = False,
            keep_input_layout: bool = False, external_data: bool = False) -> Conversion:
    """Read ``source``, write ``target``. Output problems are found before any reading.

    ``keep_input_layout``: a Keras source's torch or ONNX port takes and gives channels-last
    feature maps (one permute at entry and exit) instead of the target's channels-first.
    ``external_data``: an ONNX target's weights in ``<target>.data`` beside it (automatic past 2 GiB).
    """
    formats.detect(source)  # a missing or unknown source is the first thing to say, before any output problem
    check_output_format(target, target_format)
    if external_data and (target_format or formats.for_output(target)) != "onnx":
        raise BadInput(f"{target}: --external-data applies to ONNX outputs")
    check_outputs([source], output_paths(target, target_format, external_data), force)
    graph = read(source, source_format, module=module, module_args=module_args, input_shape=input_shape,
                 input_dtype=input_dtype)
    if keep_input_layout:
        graph.interface = _kept_interface(graph, target_format or formats.for_output(target), source)
    with about(source):  # a layer that cannot be written is the source's layer
        return Conversion(graph, write(graph, target, target_format, force=force, sources=[source],
                                       external_data=external_data))
