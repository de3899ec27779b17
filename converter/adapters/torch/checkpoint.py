"""Find the state_dict in what a training script saved, and say how it was found.

Scripts save ``{'model': sd, 'epoch': 3, 'optimizer': ...}``, ``{'model_state_dict': sd}``,
``{'net': sd}``, ``{'ema': sd}`` or ``{'state_dict': sd}``; DataParallel/DDP prefix every key with
``module.`` and ``torch.compile`` with ``_orig_mod.``. The same rules serve conversion (tensors) and
``inspect`` (tensor descriptions), given what counts as a tensor.
"""

from __future__ import annotations

from collections.abc import Mapping

from ...errors import BadInput

WRAPPER_PREFIXES = {"module.": "DataParallel/DDP", "_orig_mod.": "torch.compile"}


def find_state_dict(path, loaded, is_tensor) -> tuple[dict, list[str]]:
    """(the state_dict, one-line notes on what was unwrapped or stripped)."""
    notes = []
    if not isinstance(loaded, Mapping):
        raise BadInput(f"{path}: holds a {type(loaded).__name__}, not a state_dict of tensors"
                       "; if it is a whole pickled model, save model.state_dict() instead")
    if loaded and not _all_tensors(loaded, is_tensor):  # an empty state_dict is one (no parameters)
        key = _single_candidate(path, loaded, is_tensor)
        others = [str(k) for k in loaded if k != key]
        notes.append(f"took the state_dict under '{key}' of a checkpoint"
                     + (f" (left out: {', '.join(others[:8])}{', ...' if len(others) > 8 else ''})" if others else ""))
        loaded = loaded[key]
    state = dict(loaded)
    state, stripped = _strip_prefixes(state)
    notes += [f"stripped the '{prefix}' prefix ({origin}) from all {len(state)} keys" for prefix, origin in stripped]
    return state, notes


def _all_tensors(mapping, is_tensor) -> bool:
    return bool(mapping) and all(isinstance(k, str) and is_tensor(v) for k, v in mapping.items())


def _single_candidate(path, loaded, is_tensor) -> str:
    candidates = [k for k, v in loaded.items() if isinstance(v, Mapping) and _all_tensors(v, is_tensor)]
    if len(candidates) == 1:
        return candidates[0]
    entries = ", ".join(f"'{k}'" for k in list(loaded)[:12])
    if not candidates:
        raise BadInput(f"{path}: no state_dict of tensors in it (entries: {entries}); save model.state_dict()")
    raise BadInput(f"{path}: holds several state_dicts ({', '.join(repr(c) for c in candidates)}); save the one "
                   "to convert on its own: torch.save(torch.load(path, weights_only=True)[KEY], 'weights.pt')")


def _strip_prefixes(state: dict) -> tuple[dict, list[tuple[str, str]]]:
    stripped = []
    while state:
        prefix = next((p for p in WRAPPER_PREFIXES if all(k.startswith(p) for k in state)), None)
        if prefix is None:
            break
        state = {k[len(prefix):]: v for k, v in state.items()}
        stripped.append((prefix, WRAPPER_PREFIXES[prefix]))
    return state, stripped
