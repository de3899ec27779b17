"""IR -> ``out.pt`` (a plain state_dict) and ``out.py`` (the generated ``Model`` class).

The weights file records the sha256 of the source generated with it (``PORT_METADATA``), so that
``validate`` runs a ``.py`` found beside a ``.pt`` only if it is the one wconv wrote.
"""

from __future__ import annotations

from os import PathLike
import hashlib
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ...frameworks import require
from ...ir import Graph
from ...outputs import atomic_path
from .codegen import source, state_dict_arrays

# Key of wconv's record in a state_dict's ``_metadata`` (which torch keeps through weights_only loading and
# consults only under module paths; a ':' is in no module path) and in safetensors' header metadata.
PORT_METADATA = "wconv:port"
MODULE_HASH = "module_sha256"


def generated_source_path(weights_path) -> Path:
    """``out.pt`` -> ``out.py``: where the generated module goes."""
    return Path(weights_path).with_suffix(".py")


def source_hash(code: str | bytes) -> str:
    return hashlib.sha256(code.encode() if isinstance(code, str) else code).hexdigest()


def write(graph: Graph, path: str | PathLike) -> list[Path]:
    """Write the state_dict to ``path`` and the module source beside it; return both paths."""
    code = source(graph, weights_file=Path(path).name)
    save_state_dict(state_dict_arrays(graph), path, {MODULE_HASH: source_hash(code)})
    module_path = generated_source_path(path)
    with atomic_path(module_path) as temp:
        Path(temp).write_text(code)
    return [Path(path), module_path]


def save_state_dict(arrays: dict, path, record: dict | None = None) -> None:
    """``arrays`` (key -> numpy) as a torch state_dict (``.pt``) or safetensors file, atomically, with wconv's
    ``record`` in its metadata."""
    with atomic_path(path) as temp:
        if str(path).endswith(".safetensors"):
            from safetensors.numpy import save_file

            save_file({k: np.require(v, requirements="C") for k, v in arrays.items()}, temp,  # keeps 0-d 0-d
                      metadata={f"{PORT_METADATA}:{key}": value for key, value in (record or {}).items()})
        else:
            torch = require("torch")
            state = OrderedDict((k, torch.from_numpy(np.array(v))) for k, v in arrays.items())  # copies: onnx arrays are read-only
            if record:
                state._metadata = OrderedDict({PORT_METADATA: dict(record)})
            torch.save(state, temp)
