"""A transformers ``save_pretrained`` folder as a torch source.

``config.json`` names the architecture (``architectures[0]``, one of transformers' own classes, built with its
config: no download, and never code from the folder: a config naming its own code through ``auto_map`` is refused).
The weights are ``model.safetensors``, or shards listed by ``model.safetensors.index.json`` (``pytorch_model.bin``
and its index likewise, read with ``weights_only=True``). Every file read is inside the folder, named plainly.

Weights transformers ties (GPT-2's ``lm_head.weight`` is ``wte.weight``) are saved once; the tied copy is filled
from the saved one, as ``from_pretrained`` does, and the note says so.
"""

from __future__ import annotations

import json
from pathlib import Path

from ...errors import BadInput, MissingFramework, Unsupported, first_line, quoted
from ...frameworks import require

CONFIG = "config.json"
# What save_pretrained writes, in the order from_pretrained looks for it
WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
JSON_LIMIT = 64 << 20  # a config or a shard index; a 70 B model's index is about 100 KB


def is_folder(path) -> bool:
    path = Path(path)
    return path.is_dir() and (path / CONFIG).is_file()


def weight_files(folder) -> list[Path]:
    """The weight files of ``folder``: one, or the shards its index names (each once, in order)."""
    found = _entry(folder)
    if not found.name.endswith(".index.json"):
        return [found]
    return sorted({_shard(found.parent, found, name) for name in _index(found).values()})


def _entry(folder) -> Path:
    """The weights file, or the shard index, from_pretrained would read first."""
    found = next((Path(folder) / name for name in WEIGHTS if (Path(folder) / name).is_file()), None)
    if found is None:
        raise BadInput(f"{folder}: a save_pretrained folder holds its weights as {' or '.join(WEIGHTS)}; "
                       "none is there")
    return found


def _index(path: Path) -> dict:
    """The weight map of a shard index: parameter name -> shard file name."""
    index = read_json(path)
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map or \
            not all(isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()):
        raise BadInput(f"{path}: 'weight_map' is not an object of parameter names to shard file names")
    return weight_map


def _shard(folder: Path, index: Path, name: str) -> Path:
    """A shard an index names: a plain file name in the folder (nothing outside the folder is read)."""
    if Path(name).name != name or name.startswith(".") or not (folder / name).is_file():
        raise BadInput(f"{index}: names shard {quoted(name)}, which is not a file in {folder}")
    return folder / name


def read_json(path: Path) -> dict:
    if path.stat().st_size > JSON_LIMIT:
        raise BadInput(f"{path}: {path.stat().st_size} bytes, more than the {JSON_LIMIT >> 20} MB a config or "
                       "index may have")
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise BadInput(f"{path}: not valid JSON ({type(error).__name__})") from None
    if not isinstance(data, dict):
        raise BadInput(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def load_weights(folder):
    """Every tensor of the folder's weight files, checked against the index: each key in the shard the index names,
    no key twice, no key the index does not list."""
    from .state_dict import StateDict, load_state_dict

    state, origin = StateDict(), {}
    for file in weight_files(folder):
        for key, value in load_state_dict(file).items():
            if key in origin:
                raise BadInput(f"{folder}: {quoted(key)} is in both {quoted(origin[key])} and {quoted(file.name)}")
            state[key], origin[key] = value, file.name
    if _entry(folder).name.endswith(".index.json"):
        _check_index(_entry(folder), origin)
    return state


def _check_index(index: Path, origin: dict) -> None:
    weight_map = _index(index)
    misplaced = [f"{quoted(key)} ({quoted(weight_map.get(key, 'not listed'))}, found in {quoted(file)})"
                 for key, file in origin.items() if weight_map.get(key) != file]
    absent = [f"{quoted(key)} ({quoted(file)})" for key, file in weight_map.items() if key not in origin]
    if misplaced or absent:
        raise BadInput(f"{index}: disagrees with its shards: " + "; ".join(
            part for part in (f"{len(misplaced)} tensor(s) not where it says: {', '.join(misplaced[:3])}"
                              if misplaced else "",
                              f"{len(absent)} it lists are in no shard: {', '.join(absent[:3])}" if absent else "")
            if part))


def config_of(folder) -> dict:
    """config.json, refused when it names code of its own (``auto_map``: remote code, never run here)."""
    path = Path(folder) / CONFIG
    config = read_json(path)
    if "auto_map" in config:
        named = config["auto_map"] if isinstance(config["auto_map"], (dict, list)) else [config["auto_map"]]
        raise Unsupported(f"{path}: names its own code (auto_map: {', '.join(quoted(n) for n in list(named)[:3])}); "
                          "wconv builds "
                          "transformers' own classes only and never runs code from a model folder. Build the "
                          "model in your own file and pass it with --module file.py:Class")
    architectures = config.get("architectures")
    if not isinstance(architectures, list) or not architectures or not isinstance(architectures[0], str):
        raise BadInput(f"{path}: no 'architectures' naming the model class (save_pretrained writes it)")
    if not isinstance(config.get("model_type"), str):
        raise BadInput(f"{path}: no 'model_type'")
    return config


def build(folder):
    """transformers' class named by config.json, built from that config in eval mode, without a cache (a port
    computes the whole sequence at once), its inputs declared for the reader: token ids (int64), or images."""
    config = config_of(folder)
    transformers = require("transformers")
    name = config["architectures"][0]
    cls = _class(transformers, name)
    if not isinstance(cls, type) or not issubclass(cls, transformers.PreTrainedModel):
        raise Unsupported(f"{Path(folder) / CONFIG}: architecture {quoted(name)} is not a model class of "
                          f"transformers {transformers.__version__}")
    if getattr(cls.config_class, "model_type", config["model_type"]) != config["model_type"]:
        raise BadInput(f"{Path(folder) / CONFIG}: model_type {quoted(config['model_type'])} does not match "
                       f"{name} (model_type '{cls.config_class.model_type}')")
    settings = cls.config_class.from_dict(config)
    settings.use_cache = False
    model = cls(settings)
    model.eval()
    model.wconv_input_dtypes = ["int64"] if model.main_input_name == "input_ids" else ["float32"]
    if model.main_input_name == "input_ids":
        _take_text_inputs(model, settings)
    if model.main_input_name == "pixel_values" and hasattr(settings, "image_size"):
        size = settings.image_size
        model.wconv_input_shapes = [(settings.num_channels, *(size if isinstance(size, (list, tuple))
                                                               else (size, size)))]
    return model


TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")  # the port's inputs, where forward() takes them


def _take_text_inputs(model, settings) -> None:
    """forward() takes the token ids, then transformers' attention_mask, then token_type_ids where the model has
    more than one token type, in that order (transformers' own orders differ: GPT-2 puts a cache first), all of one
    length (--input-shape T) and int64."""
    import inspect

    taken = inspect.signature(model.forward).parameters
    names = [name for name in TEXT_INPUTS if name in taken and
             (name != "token_type_ids" or getattr(settings, "type_vocab_size", 1) > 1)]
    original = model.forward

    def forward(*inputs):
        return original(**dict(zip(names, inputs)))

    forward.__signature__ = inspect.Signature(
        [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in names])
    model.forward = forward
    model.wconv_input_dtypes = ["int64"] * len(names)
    model.wconv_one_length = True  # --input-shape T: every input (batch, T)


def _class(transformers, name: str):
    """transformers' class ``name`` (imported on first use: its import can fail where transformers' did not)."""
    if not name.isidentifier():
        return None
    try:
        return getattr(transformers, name, None)
    except Exception as error:  # transformers wraps the cause: say the cause
        cause = error.__cause__ or error
        raise MissingFramework(f"importing transformers' {name} failed ({type(cause).__name__}: "
                               f"{first_line(cause)})") from None


def fill_tied(model, state) -> list[str]:
    """Tied parameters saved once get their copy from the saved one; returns what was filled, for the notes."""
    groups: dict[int, list[str]] = {}
    for key, parameter in model.named_parameters(remove_duplicate=False):
        groups.setdefault(id(parameter), []).append(key)
    filled = []
    for keys in groups.values():
        saved = [key for key in keys if key in state]
        for key in keys:
            if saved and key not in state:
                state[key] = state[saved[0]]
                filled.append(f"{key} is {saved[0]} (tied)")
    return filled


def renamed(model, state, folder):
    """The checkpoint's keys as the module names them: transformers 5 saves some models under their earlier names
    (ViT's ``encoder.layer.0.attention.attention.query`` is ``layers.0.attention.q_proj``) and renames on load, by
    its own mapping, applied here. A weight it would also convert (split, merge, permute) is refused by name."""
    try:
        from transformers.conversion_mapping import get_model_conversion_mapping
        from transformers.core_model_loading import WeightConverter, WeightRenaming, rename_source_key
    except ImportError:  # transformers 4 saves the module's own names
        return state
    transforms = get_model_conversion_mapping(model)
    renamings = [t for t in transforms if isinstance(t, WeightRenaming)]
    converters = [t for t in transforms if isinstance(t, WeightConverter)]
    wanted = model.state_dict()
    result, converted = type(state)(), []
    for key, value in state.items():
        new, pattern = rename_source_key(key, renamings, converters, model.base_model_prefix, wanted)
        if pattern is not None:
            converted.append(key)
        if new in result:
            raise BadInput(f"{folder}: two weights are both {quoted(new)} once renamed as transformers loads them")
        result[new] = value
    if converted:
        raise Unsupported(f"{folder}: {len(converted)} weight(s) transformers converts on load, not only renames "
                          f"({', '.join(converted[:3])}); wconv does not convert them")
    result.notes, result.port = state.notes, state.port
    return result


def source(folder):
    """(the module, its weights by the module's names) of a save_pretrained folder: its files checked first,
    transformers' code run last."""
    config_of(folder)
    state = load_weights(folder)
    model = build(folder)
    state = renamed(model, state, folder)
    state.notes = [*state.notes, *fill_tied(model, state)]
    return model, state
