"""torch.fx tracing as wconv reads and runs modules: ``torch.nn`` layers and wconv's helper classes stay whole."""

from __future__ import annotations

from ...errors import Unsupported
from ...frameworks import require
from .cells import is_helper_class
from .patterns import is_library_module


def trace(model):
    """``model`` as a ``torch.fx.GraphModule`` whose calls are ``nn`` layers, functions and tensor methods.

    fx keeps ``torch.nn`` modules whole by default; a generated module's ``ExplicitRecurrent`` (a loop over time
    steps, which fx cannot trace) is kept whole too, when its class is exactly wconv's text, and so are the
    library classes wconv reads by their weights (timm's Attention: patterns.LIBRARY_MODULES).
    """
    torch = require("torch")

    class Tracer(torch.fx.Tracer):
        def is_leaf_module(self, module, qualified_name):
            return is_helper_class(type(module)) or is_library_module(module) or \
                super().is_leaf_module(module, qualified_name)

    try:
        graph = Tracer().trace(model, concrete_args=_options(model))
    except Exception as error:  # fx raises many types for untraceable control flow
        raise Unsupported(f"{type(model).__name__} cannot be traced by torch.fx: {error}") from None
    return torch.fx.GraphModule(model, graph, type(model).__name__)


def _options(model) -> dict | None:
    """forward()'s parameters with a plain default (timm's ``attn_mask=None``, ``is_causal=False``): the model is
    read as it computes when called without them, so they are fixed to their defaults, not inputs."""
    import inspect

    try:
        parameters = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):
        return None
    plain = (type(None), bool, int, float, str)
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty
            and type(p.default) in plain and p.kind is not p.VAR_KEYWORD} or None
