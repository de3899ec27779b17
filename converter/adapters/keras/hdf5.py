"""HDF5 as data: only what is stored inside the file itself, with sizes checked before reading.

HDF5 can point outside the file: external links to other files, datasets whose raw data lives in
another file (external storage), virtual datasets mapping other files, and soft links (which can
also make cycles). Keras writes none of these, so any of them is refused, for the whole file,
before a single tensor is read. A dataset's declared size is held to the file's budget
(``limits.Budget``), and an uncompressed one must actually store the bytes it declares.
"""

from __future__ import annotations

import h5py
import numpy as np

from ...errors import BadInput
from ...limits import Budget, check_config_size

MAX_OBJECTS = 200_000
MAX_DEPTH = 64


def check_file(handle: h5py.File, budget: Budget) -> None:
    """Walk every link and object; refuse anything that leaves the file or declares more than it holds."""
    count = 0
    pending = [(handle, "/", 0)]
    while pending:
        group, where, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise BadInput(f"HDF5 groups nested deeper than {MAX_DEPTH} at {where}")
        for name in group:
            count += 1
            if count > MAX_OBJECTS:
                raise BadInput(f"HDF5 file with more than {MAX_OBJECTS} objects")
            path = f"{where.rstrip('/')}/{name}"
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise BadInput(f"HDF5 external link {path} -> {link.filename}:{link.path}; wconv reads nothing "
                               "outside the file")
            if not isinstance(link, h5py.HardLink):
                raise BadInput(f"HDF5 {type(link).__name__} at {path}; Keras files hold only hard links")
            item = group[name]
            if isinstance(item, h5py.Group):
                pending.append((item, path, depth + 1))
            elif isinstance(item, h5py.Dataset):
                _check_dataset(item, path, budget)


def _check_dataset(dataset: h5py.Dataset, path: str, budget: Budget) -> None:
    if dataset.is_virtual:
        raise BadInput(f"HDF5 dataset {path} is virtual (maps other files); wconv reads nothing outside the file")
    plist = dataset.id.get_create_plist()
    if plist.get_external_count():
        raise BadInput(f"HDF5 dataset {path} keeps its data in an external file; wconv reads nothing "
                       "outside the file")
    if dataset.dtype.hasobject:
        raise BadInput(f"HDF5 dataset {path} has variable-length or object data, which weights never have")
    shape = dataset.shape or ()
    budget.declare(f"HDF5 dataset {path}", shape, dataset.dtype.itemsize)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dataset.dtype.itemsize
    stored = dataset.id.get_storage_size()
    if plist.get_nfilters() == 0 and nbytes and stored < nbytes and plist.get_layout() != h5py.h5d.COMPACT:
        raise BadInput(f"HDF5 dataset {path} declares {nbytes} bytes but stores {stored}")


def read_text_attribute(obj, name: str, what: str) -> str:
    """A string attribute (a model config), its stored size checked before it is read."""
    attribute = obj.attrs.get_id(name)
    check_config_size(what, attribute.get_storage_size())
    value = obj.attrs[name]
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, str):
        return value
    raise BadInput(f"{what} is not a string ({type(value).__name__})")
