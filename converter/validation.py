"""Run source and target on the same inputs; compare their outputs and, layer by layer, where they differ.

A tensor matches when ``max |source - target| <= atol + rtol * max |source|``: relative to the
tensor's own scale, since float32 noise grows with depth and activation size (TensorFlow alone
differs by ~3e-5 of the largest logit between eager and graph execution of a ResNet50), while a
layout mistake shows as percents.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import api, formats, runners
from .errors import BadInput, WconvError, about, first_line
from .progress import stage, steps
from .views import from_framework
from .runners import ACTIVATED

INPUT_BYTES = 1 << 30  # random inputs are made up to this size; a file declaring more is refused
DEFAULT_ATOL = 1e-5  # float32
DEFAULT_RTOL = 1e-4  # float32
TOLERANCES = {"float16": (1e-3, 1e-2), "bfloat16": (1e-2, 1e-1), "float32": (DEFAULT_ATOL, DEFAULT_RTOL),
              "float64": (1e-9, 1e-8)}  # (atol, rtol) by the source outputs' dtype


def tolerances(dtype, atol: float | None, rtol: float | None) -> tuple[float, float]:
    """The given tolerances, or the defaults for ``dtype`` (float32's for anything unlisted)."""
    default_atol, default_rtol = TOLERANCES.get(str(dtype), TOLERANCES["float32"])
    return (default_atol if atol is None else atol), (default_rtol if rtol is None else rtol)


@dataclass
class Diff:
    """One tensor of the source compared with its counterpart in the target."""

    name: str
    shape: tuple
    max_abs: float
    max_rel: float  # max_abs relative to the source tensor's largest magnitude
    cosine: float
    ok: bool
    nonfinite: int = 0  # NaN/Inf elements of the source tensor, compared by place rather than by value


@dataclass
class Report:
    source: str
    target: str
    input_shapes: list
    seed: int
    atol: float
    rtol: float
    outputs: list[Diff] = field(default_factory=list)
    layers: list[Diff] = field(default_factory=list)  # matched layers, in the source's execution order
    matching: str = ""  # how layers were paired: by name, or by execution order and shape
    loading: dict = field(default_factory=dict)
    inputs: str = "seeded random"  # where the inputs came from, and the layout they were given in

    @property
    def ok(self) -> bool:
        """Every compared output and layer within tolerance: one answer for the exit code, the text, --json and
        --junit (a layer beyond tolerance under matching outputs is a port that is right by luck, or a pairing
        that is wrong: either needs a look)."""
        return all(o.ok for o in self.outputs) and self.first_mismatch is None

    @property
    def verdict(self) -> str:
        """The one-line verdict people read."""
        tolerance = f"{self.atol:g} + {self.rtol:g} x each tensor's largest value"
        where = f"; first layer beyond tolerance: {self.first_mismatch}" if self.first_mismatch else ""
        if self.ok:
            return f"predictions match (every max abs diff within {tolerance})"
        if all(o.ok for o in self.outputs):
            return f"outputs match but layers DIFFER (max abs diff beyond {tolerance}){where}"
        return f"predictions DIFFER (max abs diff beyond {tolerance}){where}"

    @property
    def first_mismatch(self) -> str | None:
        """The first layer (source order) beyond tolerance: where the port goes wrong."""
        return next((layer.name for layer in self.layers if not layer.ok), None)

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok, "first_mismatch": self.first_mismatch, "verdict": self.verdict}


def random_inputs(shapes, batch: int, seed: int, limits=None, dtypes=None) -> list[np.ndarray]:
    """Seeded normal inputs: never all ones, which would hide transposition bugs. An input with a limit takes
    integer ids (int64, uniform below the limit: the rows of the table they index); a bool input is a mask,
    three quarters True; an int64 input that indexes no table is a padding mask (1 for each token, 0 after the
    last: each row's length drawn from 1 to all steps)."""
    elements = sum(batch * math.prod(int(d) for d in shape[1:]) for shape in shapes)
    if elements * 4 > INPUT_BYTES:
        raise BadInput(f"inputs of shapes {[list(s[1:]) for s in shapes]} with batch {batch} need "
                       f"{elements * 4 / 2**30:.1f} GB; pass a smaller --input-shape or --batch")
    rng = np.random.default_rng(seed)
    limits, dtypes = limits or [None] * len(shapes), dtypes or [None] * len(shapes)
    return [rng.random((batch, *shape[1:])) < 0.75 if dtype == "bool" else
            rng.integers(0, limit, (batch, *shape[1:]), dtype=np.int64) if limit else
            _padding_mask(rng, batch, shape[-1]) if dtype == "int64" else
            rng.standard_normal((batch, *shape[1:])).astype(np.float32)
            for shape, limit, dtype in zip(shapes, limits, dtypes)]


def _padding_mask(rng, batch: int, steps: int) -> np.ndarray:
    lengths = rng.integers(1, steps + 1, (batch, 1))
    return (np.arange(steps) < lengths).astype(np.int64)


def load_inputs(path) -> list[np.ndarray]:
    """Inputs from ``.npy`` (one input) or ``.npz`` (one array per input, in file order); integer arrays
    (token ids) stay int64, boolean ones (masks) bool, everything else is float32."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise BadInput(f"{path}: not a readable .npy/.npz ({error})") from None
    arrays = [loaded[key] for key in loaded.files] if hasattr(loaded, "files") else [loaded]
    return [np.asarray(a, dtype=bool if np.asarray(a).dtype == bool else
                       np.int64 if np.issubdtype(np.asarray(a).dtype, np.integer) else np.float32) for a in arrays]


def interface_of(path, module=None, module_args=None, input_shape=None,
                 input_dtype=None) -> tuple[list[tuple], runners.Interface, object]:
    """The source's input shapes, the axis patterns of its inputs and outputs (unknown, so feature maps,
    when ``input_shape`` is given for a model wconv cannot read), and its IR (None for such a model)."""
    try:
        graph = api.read(path, module=module, module_args=module_args, input_shape=input_shape,
                         input_dtype=input_dtype)
    except WconvError:
        if not input_shape or input_dtype == "int64":  # ids need the table size, which only a reading gives
            raise
        return [(None, *input_shape)], runners.Interface(), None
    if input_shape and len(graph.inputs) == 1:
        return [(None, *input_shape)], runners.Interface.of(graph), graph  # one input: the shape given
    missing = [v.name for v in graph.inputs if v.shape is None or None in v.shape[1:]]
    if missing:
        raise BadInput(f"{path}: inputs {missing} have unknown sizes; pass --input-shape")
    return [v.shape for v in graph.inputs], runners.Interface.of(graph), graph


def compare(name: str, expected: np.ndarray, found: np.ndarray, atol: float, rtol: float) -> Diff:
    if expected.shape != found.shape:
        raise BadInput(f"{name}: shapes differ, source {expected.shape} vs target {found.shape}")
    expected, found = expected.astype(np.float64), found.astype(np.float64)
    finite = np.isfinite(expected)
    nonfinite = int(finite.size - np.count_nonzero(finite))
    if nonfinite:  # NaN/Inf weights: equal where both sides hold the same non-finite value at the same place
        same_places = np.array_equal(expected[~finite], found[~finite], equal_nan=True) and \
            bool(np.isfinite(found[finite]).all())
        if not same_places:
            return Diff(name, tuple(expected.shape), float("inf"), float("inf"), float("nan"), False, nonfinite)
        expected, found = np.where(finite, expected, 0.0), np.where(finite, found, 0.0)
    difference = float(np.abs(expected - found).max(initial=0.0))
    scale = float(np.abs(expected).max(initial=0.0))
    norms = np.linalg.norm(expected) * np.linalg.norm(found)
    cosine = float(np.sum(expected * found) / norms) if norms else float(np.array_equal(expected, found))
    return Diff(name, tuple(expected.shape), difference, difference / scale if scale else difference, cosine,
                difference <= atol + rtol * scale, nonfinite)


def match_layers(source: dict, target: dict, aligned=None) -> tuple[list[tuple[str, str]], str]:
    """((source name, target name) pairs in the source's order, how they were matched).

    By name first: wconv keeps layer names across frameworks, each spelling them its own way
    ('layer1.0.conv' in torch, 'layer1_0_conv' in Keras). A port made by hand names its layers
    otherwise; then its layers with weights are paired by ``alignment`` (what ``wconv port`` uses), given as
    ``aligned()`` -> (source layer, target layer) pairs, or None where either model cannot be read. Without it,
    layers are paired in execution order by shape.
    """
    pairs = [pair for pair in _by_name(source, target) if source[pair[0]].shape == target[pair[1]].shape]
    if len(pairs) * 2 >= len(source):
        return pairs, "by name"
    found = captured_pairs(aligned() or [], source, target) if aligned is not None else []
    if found:
        return found, "by alignment (names, topology, shapes)"
    return _by_order_and_shape(source, target), "by execution order and shape"


def captured_pairs(layer_pairs, source: dict, target: dict) -> list[tuple[str, str]]:
    """Aligned layers as the captured outputs they have on both sides (a layer's own, or after its fused
    activation), in the source's order; a pair whose outputs differ in shape is not compared. A layer is named,
    or given as the names it may be captured under (an ONNX layer by its output value)."""
    found = []
    for mine, yours in layer_pairs:
        names = [(a + suffix, b + suffix) for suffix in ("", ACTIVATED) for a in _names(mine) for b in _names(yours)]
        pair = next(((a, b) for a, b in names if a in source and b in target and source[a].shape == target[b].shape),
                    None)
        if pair is not None:
            found.append(pair)
    order = {name: index for index, name in enumerate(source)}
    return sorted(found, key=lambda pair: order[pair[0]])


def _names(layer) -> list[str]:
    return [layer] if isinstance(layer, str) else list(layer)


def _by_name(source: dict, target: dict) -> list[tuple[str, str]]:
    """Same-named layers, outputs of the same kind: a layer's own output, or its output after a fused
    activation (``<name>+activation``, recorded by Keras for ``activation=`` and by torch for
    ``F.relu(self.conv(x))``)."""
    target_names = {(_key(name), name.endswith(ACTIVATED)): name for name in target}
    return [(name, target_names[(_key(name), name.endswith(ACTIVATED))]) for name in source
            if (_key(name), name.endswith(ACTIVATED)) in target_names]


def _by_order_and_shape(source: dict, target: dict) -> list[tuple[str, str]]:
    """Each source layer with the next target layer of its shape and kind (own or activated output)."""
    names = list(target)
    position, pairs = 0, []
    for name, array in source.items():
        for index in range(position, len(names)):
            other = names[index]
            if target[other].shape == array.shape and other.endswith(ACTIVATED) == name.endswith(ACTIVATED):
                pairs.append((name, other))
                position = index + 1
                break
    return pairs


def _label(name: str, other: str) -> str:
    """How a matched pair shows in reports: the source layer, and the target's if it is named otherwise."""
    shown, other = name.removesuffix(ACTIVATED), other.removesuffix(ACTIVATED)
    return shown if _key(shown) == _key(other) else f"{shown} ~ {other}"


def _key(name: str) -> str:
    return re.sub(r"\W", "_", name.removesuffix(ACTIVATED)).strip("_")


def _run(path, function, inputs):
    """A framework that rejects the inputs (wrong shape, wrong count) is bad input, not a wconv bug."""
    try:
        return function(inputs)
    except WconvError:
        raise
    except Exception as error:  # each framework raises its own types
        shapes = [tuple(x.shape) for x in inputs]
        raise BadInput(f"{path}: running it on inputs of shape {shapes} failed ({first_line(error)})") from None


def validate(source, target, *, source_module=None, target_module=None, source_module_args=None,
             target_module_args=None, input_shape=None, input_dtype=None, inputs: list[np.ndarray] | None = None,
             batch: int = 4, seed: int = 0, atol: float | None = None, rtol: float | None = None, layers: bool = True,
             source_layout: str | None = None, target_layout: str | None = None, pairs=None) -> Report:
    """Compare ``source`` and ``target`` on seeded random inputs (or ``inputs``, arrays as the source takes them: a
    Keras model's images channels last), layer by layer too. Shapes in the report are in IR order (channels first).
    ``pairs``: (source layer, target layer) to compare, as ``wconv port`` aligned them."""
    for path in (source, target):  # both files exist and are models before any framework is imported
        formats.detect(path)
    try:
        shapes, interface, graph = interface_of(source, source_module or _generated_module(source),
                                                source_module_args, input_shape, input_dtype)
    except WconvError:
        if inputs is None:
            raise
        interface, graph = runners.Interface(), None  # given inputs: run a model wconv cannot read, as feature maps
    given = inputs is not None
    if not given:
        with about(source):
            inputs = random_inputs(shapes, batch, seed, interface.limits, interface.dtypes)
    with stage(f"loading {Path(source).name}"):
        source_runner = runners.load(source, module=source_module, module_args=source_module_args, layout=source_layout,
                                     interface=interface, module_option="--source-module", input_shape=input_shape)
    if given:  # as the source takes them: a Keras model's images channels last
        inputs = [from_framework(x, interface.input(i, x.ndim), source_runner.view) for i, x in enumerate(inputs)]
    with stage(f"loading {Path(target).name}"):
        target_runner = runners.load(target, module=target_module, module_args=target_module_args, layout=target_layout,
                                     interface=interface, module_option="--target-module")
    with stage("running both models"):
        expected, found = _run(source, source_runner.predict, inputs), _run(target, target_runner.predict, inputs)
    if len(expected) != len(found):
        raise BadInput(f"{source} has {len(expected)} outputs but {target} has {len(found)}")
    atol, rtol = tolerances(expected[0].dtype, atol, rtol)
    report = Report(str(source), str(target), [list(x.shape) for x in inputs], seed, atol, rtol,
                    loading={"source": source_runner.safety, "target": target_runner.safety},
                    inputs=f"given, as {Path(source).name} takes them "
                           f"({'channels last' if source_runner.view == 'keras' else 'channels first'})"
                    if given else "seeded random")
    report.outputs = [compare(f"output {i}", e, f, atol, rtol) for i, (e, f) in enumerate(zip(expected, found))]
    if layers:
        with stage("capturing every layer's output"):
            captured_source = _run(source, source_runner.capture, inputs)
            captured_target = _run(target, target_runner.capture, inputs)
        if pairs is not None:
            compared, report.matching = captured_pairs(pairs, captured_source, captured_target), "by the port's alignment"
        else:
            def aligned():
                return _aligned(graph, target, target_module, target_module_args)
            compared, report.matching = match_layers(captured_source, captured_target, aligned)
        report.layers = [compare(_label(name, other), captured_source[name], captured_target[other], atol, rtol)
                         for name, other in steps(compared, "comparing layers")]
    return report


def _generated_module(path) -> str | None:
    """For a torch state_dict given without --source-module: the module wconv generated beside it (sha256 checked,
    as the runner checks it), or a refusal naming --source-module; None for other formats."""
    if formats.detect(path) != "torch":
        return None
    from .adapters.torch import load_state_dict
    from .runners.torch import module_for

    return module_for(path, None, load_state_dict(path), "--source-module")[0]


def _aligned(mine, target, target_module, target_module_args):
    """The layers with weights of the source's IR ``mine`` and of ``target``, paired by ``alignment``; None where
    either cannot be read."""
    from .alignment import align

    if mine is None:
        return None
    try:
        shapes = [value.shape[1:] for value in mine.inputs if value.shape]
        module = target_module
        if formats.detect(target) == "torch":
            from .adapters.torch import load_state_dict
            from .runners.torch import module_for

            module, _ = module_for(target, target_module, load_state_dict(target), "--target-module")
        yours = api.read(target, module=module, module_args=target_module_args,
                         input_shape=list(shapes[0]) if len(shapes) == 1 else None)
    except Exception:  # the pairing is a refinement: a model wconv cannot read still validates, paired by order
        return None
    ours, theirs = ({node.name: [node.name, *node.outputs] for node in graph.nodes} for graph in (mine, yours))
    return [(ours[pair.source], theirs[pair.target]) for pair in align(mine, yours).pairs]
