"""Keras layers and operation nodes that together are one op of the IR, merged into one entry before the layers are
read. Each chain finds its nodes, each read by the next alone, and gives the one entry that replaces them.

- A padding mask (ops/padding_mask.py) is three nodes in Keras 3, ``ops.not_equal(mask, 0)``, ``ops.expand_dims(...,
  1)`` and ``ops.repeat(..., T, axis=1)``: one ``padding_mask`` entry, named after the middle node (wconv writes the
  op under that name), where the first was.
- keras-hub's ``PositionEmbedding`` gives its table broadcast to its input's shape, which its backbones add to that
  input at once: ``Add([x, PositionEmbedding(x), *rest])`` is one entry (ops/keras_hub.py), named after the
  PositionEmbedding (its weights are that layer's), reading ``[x, *rest]``, where the Add was (after all it reads).
"""

from __future__ import annotations

from ...ops.keras_hub import POSITIONS_ADDED
from ...ops.padding_mask import KERAS_CHAIN as PADDING_MASK
from .config import LayerEntry


def merge(layers: list[LayerEntry]) -> list[LayerEntry]:
    readers = {}
    for entry in layers:
        for value in entry.inputs:
            readers.setdefault(value, []).append(entry)

    def only_reader(entry, class_name):
        found = readers.get(entry.outputs[0], []) if entry is not None and len(entry.outputs) == 1 else []
        return found[0] if len(found) == 1 and found[0].class_name == class_name else None

    placed, dropped = {}, set()  # id(entry) -> the merged entry in its place; ids of entries merged away
    for entry in layers:
        for chain in CHAINS:
            found = chain(entry, only_reader)
            if found is not None:
                merged, place, nodes = found
                placed[id(place)] = merged
                dropped |= {id(node) for node in nodes if node is not place}
    return [placed.get(id(entry), entry) for entry in layers if id(entry) not in dropped]


def _padding_mask(entry, only_reader):
    if entry.class_name != "ops.NotEqual" or len(entry.inputs) != 1 or \
            entry.call_options.get("x2", entry.constants.get(1)) != 0:
        return None
    expand = only_reader(entry, "ops.ExpandDims")
    repeat = only_reader(expand, "ops.Repeat") if expand is not None and expand.config.get("axis") == 1 else None
    if repeat is None or repeat.config.get("axis") != 1 or not isinstance(repeat.config.get("repeats"), int):
        return None
    merged = LayerEntry(PADDING_MASK, expand.name, {"steps": repeat.config["repeats"]}, entry.inputs, repeat.outputs)
    return merged, entry, (entry, expand, repeat)


def _positions_added(entry, only_reader):
    if entry.class_name != "keras_hub>PositionEmbedding" or len(entry.inputs) != 1 or entry.call_problems:
        return None
    add = only_reader(entry, "Add")
    if add is None or entry.inputs[0] not in add.inputs or add.inputs.count(entry.outputs[0]) != 1:
        return None
    rest = list(add.inputs)
    rest.remove(entry.inputs[0])
    rest.remove(entry.outputs[0])
    merged = LayerEntry(POSITIONS_ADDED, entry.name, {**entry.config, "add": add.name}, entry.inputs + rest,
                        add.outputs)
    return merged, add, (entry, add)


CHAINS = (_padding_mask, _positions_added)
