"""Names, shapes and dtypes of a torch.save'd state_dict, without torch and without reading tensors.

For ``wconv inspect``. The pickle is read by an unpickler that knows only the few names a
state_dict uses and builds plain descriptions from them; any other global is refused, so no
code from the file runs. Conversion still reads values through ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass

from ...errors import BadInput
from ...limits import Budget

STORAGE_DTYPES = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16", "BFloat16Storage": "bfloat16",
    "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16", "CharStorage": "int8",
    "ByteStorage": "uint8", "BoolStorage": "bool",
}


ITEMSIZE = {"float32": 4, "float64": 8, "float16": 2, "bfloat16": 2, "int64": 8, "int32": 4, "int16": 2,
            "int8": 1, "uint8": 1, "bool": 1}


SAVE_HINT = "; if it is a whole pickled model, save model.state_dict() instead"


@dataclass(frozen=True)
class TensorInfo:
    shape: tuple
    dtype: str


@dataclass(frozen=True)
class StorageInfo:
    key: str
    dtype: str
    numel: int


def _rebuild_tensor(storage, offset, size, stride, *rest):
    if not isinstance(storage, StorageInfo):
        raise pickle.UnpicklingError("a tensor without a storage")
    size, stride, offset = tuple(int(d) for d in size), tuple(int(s) for s in stride), int(offset)
    if len(size) != len(stride) or offset < 0 or any(d < 0 for d in size) or any(s < 0 for s in stride):
        raise pickle.UnpicklingError(f"tensor of size {size} with stride {stride} is malformed")
    last = offset + sum((d - 1) * s for d, s in zip(size, stride)) if all(size) else offset - 1
    if last >= storage.numel:
        raise pickle.UnpicklingError(f"tensor of size {size} reaches element {last} of a storage of {storage.numel}")
    return TensorInfo(size, storage.dtype)


def _rebuild_parameter(data, *rest):
    return data


class _DescribingUnpickler(pickle.Unpickler):
    ALLOWED = {
        ("collections", "OrderedDict"): OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    }

    def find_class(self, module, name):
        if module == "torch" and name in STORAGE_DTYPES:
            return STORAGE_DTYPES[name]
        if (module, name) in self.ALLOWED:
            return self.ALLOWED[(module, name)]
        raise pickle.UnpicklingError(f"refused global {module}.{name}")

    def __init__(self, data):
        super().__init__(data)
        self.storages: dict[str, StorageInfo] = {}

    def persistent_load(self, pid):
        # ('storage', dtype, key, location, numel)
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and pid[1] in ITEMSIZE):
            raise pickle.UnpicklingError(f"unknown persistent id {str(pid)[:80]}")
        storage = StorageInfo(str(pid[2]), pid[1], int(pid[4]))
        if self.storages.setdefault(storage.key, storage) != storage:
            raise pickle.UnpicklingError(f"storage {storage.key} is declared twice, differently")
        return storage


def describe(path):
    """What a torch zip file holds, tensors as TensorInfo, after checking every declared size against the
    bytes stored for it: the object, as the describing unpickler built it."""
    budget = Budget(path)
    try:
        with zipfile.ZipFile(path) as archive:
            entries = {info.filename: info for info in archive.infolist()}
            pickled = next(n for n in entries if n.endswith("/data.pkl") or n == "data.pkl")
            budget.declare(pickled, (entries[pickled].file_size,), 1)
            data = archive.read(pickled)
    except (zipfile.BadZipFile, StopIteration, OSError) as error:
        raise BadInput(f"{path}: not a torch zip file ({error or 'no data.pkl'})") from None
    unpickler = _DescribingUnpickler(io.BytesIO(data))
    try:
        loaded = unpickler.load()
    except (pickle.UnpicklingError, EOFError, TypeError, ValueError, IndexError, AttributeError,
            KeyError, RecursionError) as error:
        raise BadInput(f"{path}: not a plain state_dict ({str(error)[:200]}); wconv reads torch files as "
                       f"weights_only=True does and never falls back to unsafe loading{SAVE_HINT}") from None
    folder = pickled[: -len("data.pkl")]
    for storage in unpickler.storages.values():
        what = f"{path}: storage {storage.key}"
        budget.declare(what, (storage.numel,), ITEMSIZE[storage.dtype])
        entry = entries.get(f"{folder}data/{storage.key}")
        expected = storage.numel * ITEMSIZE[storage.dtype]
        if entry is None or entry.file_size != expected:
            found = "no data" if entry is None else f"{entry.file_size} bytes"
            raise BadInput(f"{what} declares {expected} bytes but the file has {found} for it")
    return loaded


def peek_state_dict(path) -> tuple[dict[str, TensorInfo], list[str]]:
    """(name -> TensorInfo, notes on what was unwrapped), found as conversion finds it."""
    from .checkpoint import find_state_dict

    state, notes = find_state_dict(path, describe(path), lambda v: isinstance(v, TensorInfo))
    others = [key for key, value in state.items() if not isinstance(value, TensorInfo)]
    if others:
        raise BadInput(f"{path}: entries {others[:5]} are not tensors; expected a state_dict")
    return state, notes
