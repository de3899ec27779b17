"""PyTorch adapter: ``read(state_dict_path, module=...)`` and ``write(graph, "out.pt")`` (+ ``out.py``)."""

from .module import load_module
from .reader import from_module, read
from .state_dict import load_state_dict
from .writer import generated_source_path, source, write

__all__ = ["read", "write", "source", "from_module", "load_module", "load_state_dict", "generated_source_path"]
