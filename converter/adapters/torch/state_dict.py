"""Load a state_dict as data: ``torch.load(weights_only=True)`` or safetensors, never pickle code."""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping

import numpy as np

from ...errors import BadInput, first_line
from ...frameworks import require
from .checkpoint import find_state_dict
from .peek import SAVE_HINT, describe

SAFETENSORS_SUFFIXES = (".safetensors",)


class StateDict(dict):
    """Parameter name -> numpy array, plus what wconv recorded in the file (``port``) when it wrote it."""

    port: dict = {}
    notes: list = []  # what was unwrapped or stripped to find it (a training checkpoint, DDP prefixes)


def load_state_dict(path) -> StateDict:
    """Parameter name -> numpy array. Refuses anything that is not a flat mapping of tensors. A save_pretrained
    folder: every tensor of its weight files (pretrained.py)."""
    from . import pretrained

    if pretrained.is_folder(path):
        return pretrained.load_weights(path)
    if str(path).endswith(SAFETENSORS_SUFFIXES):
        return _load_safetensors(path)
    if zipfile.is_zipfile(path):
        describe(path)  # declared sizes checked against the stored bytes before torch allocates them
    torch = require("torch")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise BadInput(f"{path}: not a plain state_dict; torch.load(weights_only=True) refused it "
                       f"({_refusal(error)}). wconv never falls back to unsafe loading{SAVE_HINT}") from None
    except (RuntimeError, EOFError, OSError, ValueError, AttributeError) as error:
        raise BadInput(f"{path}: not a readable torch file ({first_line(error)})") from None
    return _tensors_only(path, loaded, torch)


def _refusal(error: Exception) -> str:
    """torch's reason (e.g. 'Unsupported global: GLOBAL __main__.Net'), not its advice to load unsafely."""
    reasons = [line.strip() for line in str(error).splitlines() if "global" in line.lower()]
    return reasons[0].split(". Please")[0][:200] if reasons else first_line(error)


def _tensors_only(path, loaded, torch) -> StateDict:
    found, notes = find_state_dict(path, loaded, lambda v: isinstance(v, torch.Tensor))
    others = [key for key, value in found.items() if not isinstance(value, torch.Tensor)]
    if others:
        raise BadInput(f"{path}: entries {others[:5]} are not tensors; expected a state_dict")
    state = StateDict((key, _to_numpy(path, key, value)) for key, value in found.items())
    state.port = _port_record(getattr(loaded, "_metadata", None) or {})
    state.notes = notes
    return state


def _port_record(metadata) -> dict:
    from .writer import PORT_METADATA

    record = metadata.get(PORT_METADATA) if isinstance(metadata, Mapping) else None
    return {k: v for k, v in record.items() if isinstance(k, str) and isinstance(v, str)} \
        if isinstance(record, Mapping) else {}


def _to_numpy(path, key, tensor) -> np.ndarray:
    try:
        return tensor.detach().cpu().numpy()
    except TypeError as error:  # bfloat16 and friends have no numpy dtype
        raise BadInput(f"{path}: tensor '{key}' has dtype {tensor.dtype}, which numpy cannot hold ({error})") from None


def _load_safetensors(path) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError
    from safetensors import safe_open
    from safetensors.numpy import load_file

    from .writer import PORT_METADATA

    try:
        state = StateDict(load_file(str(path)))
        with safe_open(str(path), "np") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as error:
        raise BadInput(f"{path}: not a readable safetensors file ({first_line(error)})") from None
    prefix = f"{PORT_METADATA}:"
    state.port = {k[len(prefix):]: v for k, v in metadata.items() if k.startswith(prefix)}
    return state
