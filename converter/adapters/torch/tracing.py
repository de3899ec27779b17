"""torch.fx tracing as wconv reads and runs modules: ``torch.nn`` layers and wconv's helper classes stay whole."""

from __future__ import annotations

from ...errors import Unsupported
from ...frameworks import require
from .cells import is_helper_class


def trace(model):
    """``model`` as a ``torch.fx.GraphModule`` whose calls are ``nn`` layers, functions and tensor methods.

    fx keeps ``torch.nn`` modules whole by default; a generated module's ``ExplicitRecurrent`` (a loop over time
    steps, which fx cannot trace) is kept whole too, when its class is exactly wconv's text.
    """
    torch = require("torch")

    class Tracer(torch.fx.Tracer):
        def is_leaf_module(self, module, qualified_name):
            return is_helper_class(type(module)) or super().is_leaf_module(module, qualified_name)

    try:
        graph = Tracer().trace(model)
    except Exception as error:  # fx raises many types for untraceable control flow
        raise Unsupported(f"{type(model).__name__} cannot be traced by torch.fx: {error}") from None
    return torch.fx.GraphModule(model, graph, type(model).__name__)
