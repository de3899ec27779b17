"""torch's adaptive pooling (``nn.AdaptiveAvgPool2d((7, 7))``, ``F.adaptive_avg_pool2d(x, 1)``) as the pooling it
is for the input it gets: output 1 is the global pool; an output that divides the input, a pool whose window and
stride are their ratio; an output the input divides, nearest upsampling (each bin holds one input value); the
same size, the identity. Other ratios give windows of varying size, which no other framework has: refused.
"""

from __future__ import annotations

from ..errors import Unsupported
from . import padding
from .activations import ACTIVATIONS
from .pool import GLOBAL_POOLS, POOLS
from .registry import register_torch_function, register_torch_module
from .upsample import UPSAMPLE


def adaptive(kind: str, name: str, inputs, outputs, shape, output_size) -> list:
    rank = len(shape) - 2 if shape else None
    if rank is None or rank < 1:
        raise Unsupported(f"layer '{name}': adaptive pooling needs the input's shape")
    wanted = [output_size] * rank if isinstance(output_size, int) else list(output_size)
    if len(wanted) != rank:
        raise Unsupported(f"layer '{name}': output size {output_size} for {rank} spatial axes")
    sizes = [size if out is None else int(out) for size, out in zip(shape[2:], wanted)]  # None keeps the size
    if all(out == 1 for out in sizes):
        return [GLOBAL_POOLS[kind].node(name, inputs, outputs, True)]
    known = padding.spatial(shape)
    if None in known:
        raise Unsupported(f"layer '{name}': adaptive pooling to {sizes} needs the input's spatial sizes; pass "
                          "--input-shape")
    if sizes == known:
        return [ACTIVATIONS["identity"].node(name, inputs, outputs)]
    if all(size % out == 0 for size, out in zip(known, sizes)):
        window = [size // out for size, out in zip(known, sizes)]
        return [POOLS[(kind, rank)].node(name, inputs, outputs, shape, window, window, "valid", False)]
    if all(out % size == 0 for size, out in zip(known, sizes)):
        return [UPSAMPLE.node(name, inputs, outputs, [out // size for size, out in zip(known, sizes)], "nearest")]
    raise Unsupported(f"layer '{name}': adaptive pooling of {tuple(known)} to {tuple(sizes)} has windows of "
                      "varying size; only outputs that divide the input, or that it divides, convert")


def _from_module(kind: str):
    def read(layer):
        if getattr(layer.module, "return_indices", False):
            raise Unsupported(f"layer '{layer.name}' ({layer.class_name}): return_indices is not converted")
        shape = layer.input_shapes[0] if layer.input_shapes else None
        return adaptive(kind, layer.name, layer.inputs, layer.outputs, shape, layer.module.output_size)
    return read


def _from_function(kind: str):
    def read(call):
        if call.argument("return_indices", 2, False):
            raise Unsupported(f"'{call.name}': return_indices is not converted")
        shape = call.input_shapes[0] if call.input_shapes else None
        return adaptive(kind, call.name, call.inputs[:1], call.outputs, shape, call.argument("output_size", 1, None))
    return read


for _kind, _spelled in (("avg", "Avg"), ("max", "Max")):
    for _rank in (1, 2, 3):
        register_torch_module(f"Adaptive{_spelled}Pool{_rank}d", _from_module(_kind))
        register_torch_function(f"torch.nn.functional.adaptive_{_kind}_pool{_rank}d", _from_function(_kind))
