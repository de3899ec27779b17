"""Keras operation nodes that together are one op of the IR, merged into one entry before the layers are read.

A padding mask (ops/padding_mask.py) is three nodes in Keras 3, ``ops.not_equal(mask, 0)``, ``ops.expand_dims(...,
1)`` and ``ops.repeat(..., T, axis=1)``, each read by the next alone: one ``padding_mask`` entry, named after the
middle node (wconv writes the op under that name).
"""

from __future__ import annotations

from ...ops.padding_mask import KERAS_CHAIN as PADDING_MASK
from .config import LayerEntry


def merge(layers: list[LayerEntry]) -> list[LayerEntry]:
    readers = {}
    for entry in layers:
        for value in entry.inputs:
            readers.setdefault(value, []).append(entry)

    def only_reader(entry, class_name):
        found = readers.get(entry.outputs[0], []) if len(entry.outputs) == 1 else []
        return found[0] if len(found) == 1 and found[0].class_name == class_name else None

    merged, dropped = {}, set()
    for entry in layers:
        if entry.class_name != "ops.NotEqual" or len(entry.inputs) != 1 or \
                entry.call_options.get("x2", entry.constants.get(1)) != 0:
            continue
        expand = only_reader(entry, "ops.ExpandDims")
        repeat = only_reader(expand, "ops.Repeat") if expand is not None and expand.config.get("axis") == 1 else None
        if repeat is None or repeat.config.get("axis") != 1 or not isinstance(repeat.config.get("repeats"), int):
            continue
        merged[id(entry)] = LayerEntry(PADDING_MASK, expand.name, {"steps": repeat.config["repeats"]}, entry.inputs,
                                       repeat.outputs)
        dropped |= {id(expand), id(repeat)}
    return [merged.get(id(entry), entry) for entry in layers if id(entry) not in dropped]
