"""Run source and target on the same inputs and compare their outputs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from . import api, runners
from .errors import BadInput

DEFAULT_ATOL = 1e-5
DEFAULT_RTOL = 1e-4


@dataclass
class OutputDiff:
    index: int
    shape: tuple
    max_abs: float
    max_rel: float
    cosine: float
    ok: bool


@dataclass
class Report:
    source: str
    target: str
    input_shapes: list
    seed: int
    atol: float
    rtol: float
    outputs: list[OutputDiff] = field(default_factory=list)
    loading: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outputs)

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def random_inputs(shapes, batch: int, seed: int) -> list[np.ndarray]:
    """Seeded normal inputs: never all ones, which would hide transposition bugs."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((batch, *shape[1:])).astype(np.float32) for shape in shapes]


def load_inputs(path) -> list[np.ndarray]:
    """Inputs from ``.npy`` (one input) or ``.npz`` (one array per input, in file order)."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise BadInput(f"{path}: not a readable .npy/.npz ({error})") from None
    arrays = [loaded[key] for key in loaded.files] if hasattr(loaded, "files") else [loaded]
    return [np.asarray(a, dtype=np.float32) for a in arrays]


def input_shapes_of(path, module=None, module_args=None, input_shape=None) -> list[tuple]:
    if input_shape:
        return [(None, *input_shape)]
    graph = api.read(path, module=module, module_args=module_args)
    missing = [v.name for v in graph.inputs if v.shape is None or None in v.shape[1:]]
    if missing:
        raise BadInput(f"{path}: inputs {missing} have unknown sizes; pass --input-shape")
    return [v.shape for v in graph.inputs]


def compare(index: int, expected: np.ndarray, found: np.ndarray, atol: float, rtol: float) -> OutputDiff:
    if expected.shape != found.shape:
        raise BadInput(f"output {index}: shapes differ, source {expected.shape} vs target {found.shape}")
    expected, found = expected.astype(np.float64), found.astype(np.float64)
    difference = np.abs(expected - found)
    scale = np.abs(expected)
    norms = np.linalg.norm(expected) * np.linalg.norm(found)
    cosine = float(np.sum(expected * found) / norms) if norms else float(np.array_equal(expected, found))
    return OutputDiff(
        index, tuple(expected.shape), float(difference.max(initial=0.0)),
        float((difference / np.maximum(scale, 1e-12)).max(initial=0.0)), cosine,
        bool(np.all(difference <= atol + rtol * scale)),
    )


def validate(source, target, *, source_module=None, target_module=None, source_module_args=None,
             target_module_args=None, input_shape=None,
             inputs: list[np.ndarray] | None = None, batch: int = 4, seed: int = 0,
             atol: float = DEFAULT_ATOL, rtol: float = DEFAULT_RTOL) -> Report:
    """Compare ``source`` and ``target`` on seeded random inputs (or ``inputs``)."""
    if inputs is None:
        shapes = input_shapes_of(source, source_module, source_module_args, input_shape)
        inputs = random_inputs(shapes, batch, seed)
    run_source, source_loading = runners.load(source, module=source_module, module_args=source_module_args)
    run_target, target_loading = runners.load(target, module=target_module, module_args=target_module_args)
    expected, found = run_source(inputs), run_target(inputs)
    if len(expected) != len(found):
        raise BadInput(f"{source} has {len(expected)} outputs but {target} has {len(found)}")
    report = Report(str(source), str(target), [list(x.shape) for x in inputs], seed, atol, rtol,
                    loading={"source": source_loading, "target": target_loading})
    report.outputs = [compare(i, e, f, atol, rtol) for i, (e, f) in enumerate(zip(expected, found))]
    return report
