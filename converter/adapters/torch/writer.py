"""IR -> ``out.pt`` (a plain state_dict) and ``out.py`` (the generated ``Model`` class)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...frameworks import require
from ...ir import Graph
from ...outputs import atomic_path
from .codegen import source, state_dict_arrays


def generated_source_path(weights_path) -> Path:
    """``out.pt`` -> ``out.py``: where the generated module goes."""
    return Path(weights_path).with_suffix(".py")


def write(graph: Graph, path) -> list[Path]:
    """Write the state_dict to ``path`` and the module source beside it; return both paths."""
    arrays = state_dict_arrays(graph)
    code = source(graph, weights_file=Path(path).name)
    compile(code, str(generated_source_path(path)), "exec")  # a syntax error here is a wconv bug
    with atomic_path(path) as temp:
        if str(path).endswith(".safetensors"):
            from safetensors.numpy import save_file

            save_file({k: np.require(v, requirements="C") for k, v in arrays.items()}, temp)  # keeps 0-d 0-d
        else:
            torch = require("torch")
            torch.save({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()}, temp)  # copies: onnx arrays are read-only
    module_path = generated_source_path(path)
    with atomic_path(module_path) as temp:
        Path(temp).write_text(code)
    return [Path(path), module_path]
