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

STORAGE_DTYPES = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16", "BFloat16Storage": "bfloat16",
    "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16", "CharStorage": "int8",
    "ByteStorage": "uint8", "BoolStorage": "bool",
}


@dataclass(frozen=True)
class TensorInfo:
    shape: tuple
    dtype: str


def _rebuild_tensor(storage, offset, size, stride, *rest):
    return TensorInfo(tuple(size), storage)


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

    def persistent_load(self, pid):
        # ('storage', dtype, key, location, numel): the dtype is all a description needs.
        return pid[1]


def peek_state_dict(path) -> dict[str, TensorInfo]:
    try:
        with zipfile.ZipFile(path) as archive:
            pickled = next(n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl")
            data = archive.read(pickled)
    except (zipfile.BadZipFile, StopIteration, OSError) as error:
        raise BadInput(f"{path}: not a torch zip file ({error or 'no data.pkl'})") from None
    try:
        loaded = _DescribingUnpickler(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, TypeError, ValueError, IndexError) as error:
        raise BadInput(f"{path}: not a plain state_dict ({error}); wconv never runs code from a file") from None
    if not isinstance(loaded, dict) or not all(isinstance(v, TensorInfo) for v in loaded.values()):
        raise BadInput(f"{path}: holds a {type(loaded).__name__} that is not a state_dict of tensors")
    return dict(loaded)
