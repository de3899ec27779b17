"""wconv: convert neural-network weights between Keras, PyTorch and ONNX, and prove the port.

    import converter
    graph = converter.read("model.h5")          # any format -> canonical IR (no TensorFlow import)
    converter.write(graph, "model.pt")          # IR -> torch state_dict + generated model.py
    converter.convert("model.h5", "model.onnx")  # both at once
    report = converter.validate("model.h5", "model.onnx")
"""

from __future__ import annotations

__version__ = "0.1.0"

from os import PathLike  # noqa: E402
from typing import TYPE_CHECKING, Sequence  # noqa: E402

from .api import Conversion, convert, read, write  # noqa: E402
from .errors import WconvError  # noqa: E402
from .ir import Graph, Node, Value  # noqa: E402

if TYPE_CHECKING:
    import numpy as np

    from .validation import Report


def validate(source: str | PathLike, target: str | PathLike, *, source_module: str | None = None,
             target_module: str | None = None, source_module_args: str | dict | None = None,
             target_module_args: str | dict | None = None, input_shape: Sequence[int] | None = None,
             inputs: list[np.ndarray] | None = None, batch: int = 4, seed: int = 0, atol: float | None = None,
             rtol: float | None = None, layers: bool = True, source_layout: str | None = None,
             target_layout: str | None = None) -> Report:
    """Run ``source`` and ``target`` on the same inputs and compare them, output by output and layer by layer.

    Inputs are seeded normal random batches (``batch``, ``seed``) of the source's input shapes, or
    ``input_shape`` (without the batch axis, channels first), or your own ``inputs``. A torch side needs
    its ``nn.Module`` (``source_module``/``target_module`` as ``pkg.mod:Class`` or ``file.py:Class``, with
    ``*_module_args``) unless it is a wconv port whose generated ``.py`` the weights file vouches for.
    A tensor matches when ``max|source - target| <= atol + rtol * max|source|`` (defaults by dtype:
    float32 1e-5 and 1e-4). ``*_layout`` (``channels_last``/``channels_first``) says what a torch or ONNX
    side takes when wconv did not record it. Returns a ``Report``; ``report.ok`` and
    ``report.first_mismatch`` answer "does it match" and "where does it go wrong".
    """
    from .validation import validate as run

    return run(source, target, source_module=source_module, target_module=target_module,
               source_module_args=source_module_args, target_module_args=target_module_args,
               input_shape=input_shape, inputs=inputs, batch=batch, seed=seed, atol=atol, rtol=rtol, layers=layers,
               source_layout=source_layout, target_layout=target_layout)


def port(source, into, *, module: str | None = None, module_args: str | dict | None = None,
         into_args: str | dict | None = None, overrides: dict | None = None, input_shape: Sequence[int] | None = None,
         input_dtype: str | None = None):
    """Fill a model you wrote with the weights of ``source``: ``weights, mapping = converter.port(src, into)``.

    ``into`` is your model: a live ``nn.Module`` or ``keras.Model``, a ``.keras``/``.h5`` file, or
    ``file.py:name``/``pkg.mod:name`` naming a module class or a function that builds either (``into_args``: its
    keyword arguments). Layers are paired by ``converter.alignment`` (names, then topology and shapes);
    ``overrides`` ({source layer: target layer}) settles pairs it cannot. ``weights`` is the target's own
    state_dict (key -> numpy array; load it with ``strict=True``), or for Keras the weights per layer name;
    ``mapping`` a row per pair (source, target, shapes, layout change, how it was paired). Raises
    ``WconvError`` (exit code 2) with the unpaired layers and their candidates, or (3) naming each pair the
    target cannot express. Prove the result with ``converter.validate``.
    """
    from .porting import port as run

    return run(source, into, module=module, module_args=module_args, into_args=into_args, overrides=overrides,
               input_shape=input_shape, input_dtype=input_dtype)


__all__ = ["Conversion", "Graph", "Node", "Value", "WconvError", "convert", "port", "read", "validate", "write"]
