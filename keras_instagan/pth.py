"""Read a PyTorch `.pth` state dict into NumPy arrays without PyTorch, and without running its code.

A `.pth` file is a pickle whose tensors point at raw storages kept beside it: in a zip archive
(`<name>/data.pkl`, `<name>/data/<key>`; PyTorch ≥ 1.6) or, in the legacy format of PyTorch ≤ 1.5
(which wrote the official checkpoints), in the same stream after the pickle. The unpickler here
resolves only what a state dict of plain tensors needs: `collections.OrderedDict`, the storage types
(`torch.FloatStorage`, ...) and `torch._utils._rebuild_tensor_v2`. Any other global (a function to
call, a class to build) is refused before it is looked up, as `torch.load(weights_only=True)` does.

    state = read_state_dict("200_net_G_A.pth")   # {key: np.ndarray}
"""

import io
import pickle
import struct
import zipfile

import numpy as np

STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}  # fmt: skip
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class UnsafeCheckpointError(ValueError):
    """The file asks for something other than plain tensors, or is not a checkpoint at all."""


class _StorageType:
    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)


class _Storage:
    """One raw storage: its elements once read (`array`), else None until the legacy stream gets there."""

    def __init__(self, dtype, numel):
        self.dtype, self.numel, self.array = dtype, numel, None


class _Tensor:
    """A tensor to build from a storage once every storage has been read."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def build(self):
        data = self.storage.array
        if not self.size:
            return np.array(data[self.offset])
        needed = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride)) + 1
        if min(self.size) > 0 and needed > len(data):
            raise UnsafeCheckpointError(f"a tensor of shape {self.size} reaches past its storage")
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :], shape=self.size, strides=[s * data.itemsize for s in self.stride]
        )
        return np.array(view)


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    if not isinstance(storage, _Storage):
        raise UnsafeCheckpointError("a tensor built from something other than a storage")
    return _Tensor(storage, offset, size, stride)


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, load_storage):
        super().__init__(file)
        self.load_storage = load_storage

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            import collections

            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(STORAGE_DTYPES[name])
        raise UnsafeCheckpointError(f"the pickle asks for {module}.{name}, which a state dict of plain "
                                    "tensors never needs")  # fmt: skip

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise UnsafeCheckpointError(f"an unknown persistent id {pid!r:.80}")
        return self.load_storage(pid[1].dtype, str(pid[2]), int(pid[4]), pid[5] if len(pid) > 5 else None)


def _materialise(obj):
    if isinstance(obj, _Tensor):
        return obj.build()
    if isinstance(obj, dict):
        return {key: _materialise(value) for key, value in obj.items()}
    raise UnsafeCheckpointError(f"expected a state dict of tensors, found a {type(obj).__name__}")


def _read_zip(path):
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise UnsafeCheckpointError("a zip archive without one data.pkl: not a PyTorch checkpoint")
        prefix = pickles[0][: -len("data.pkl")]
        storages = {}

        def load_storage(dtype, key, numel, view):
            if key not in storages:
                raw = archive.read(f"{prefix}data/{key}")
                if len(raw) < numel * dtype.itemsize:
                    raise UnsafeCheckpointError(
                        f"storage {key} holds {len(raw)} bytes, {numel} elements expected"
                    )
                storage = _Storage(dtype, numel)
                storage.array = np.frombuffer(raw, dtype.newbyteorder("<"), numel).astype(dtype)
                storages[key] = storage
            return storages[key]

        return _Unpickler(io.BytesIO(archive.read(pickles[0])), load_storage).load()


def _read_legacy(path):
    with open(path, "rb") as f:
        try:
            magic = _Unpickler(f, None).load()
        except (pickle.UnpicklingError, EOFError, ValueError, IndexError, UnsafeCheckpointError):
            magic = None
        if not isinstance(magic, int) or magic != LEGACY_MAGIC:
            raise UnsafeCheckpointError("neither a zip archive nor a legacy PyTorch file")
        _protocol, sys_info = _Unpickler(f, None).load(), _Unpickler(f, None).load()
        if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
            raise UnsafeCheckpointError("a big-endian checkpoint")
        storages, views = {}, []

        def load_storage(dtype, key, numel, view):
            if key not in storages:
                storages[key] = _Storage(dtype, numel)
            if view is None:
                return storages[key]
            view_key, offset, view_numel = view
            storage = _Storage(dtype, view_numel)
            views.append((storage, key, offset))
            return storage

        state = _Unpickler(f, load_storage).load()
        keys = _Unpickler(f, None).load()
        for key in keys:
            storage = storages[str(key)]
            (numel,) = struct.unpack("<q", f.read(8))
            raw = f.read(numel * storage.dtype.itemsize)
            if numel != storage.numel or len(raw) != numel * storage.dtype.itemsize:
                raise UnsafeCheckpointError(f"storage {key} is truncated or misnumbered")
            storage.array = np.frombuffer(raw, storage.dtype.newbyteorder("<")).astype(storage.dtype)
        for storage, key, offset in views:
            storage.array = storages[key].array[offset : offset + storage.numel]
        return state


def read_state_dict(path):
    """`{key: np.ndarray}` of the `.pth` state dict at `path`; `UnsafeCheckpointError` (a ValueError)
    for anything else, before any of it is executed."""
    try:
        state = _read_zip(path) if zipfile.is_zipfile(path) else _read_legacy(path)
    except UnsafeCheckpointError as error:
        raise UnsafeCheckpointError(f"{path}: refused: {error}") from None
    except (
        pickle.UnpicklingError,
        EOFError,
        KeyError,
        ValueError,
        TypeError,
        IndexError,
        struct.error,
    ) as error:
        raise UnsafeCheckpointError(
            f"{path}: refused: not a readable state dict ({type(error).__name__})"
        ) from None
    try:
        return _materialise(state)
    except UnsafeCheckpointError as error:
        raise UnsafeCheckpointError(f"{path}: refused: {error}") from None
