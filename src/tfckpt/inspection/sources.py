"""Tensors from any file tfckpt converts between: checkpoints, safetensors and ``.npz``.

A :class:`Source` lists the values of one file (as :class:`tfckpt.inspection.selection.ValueName`,
under their checkpoint keys) and reads them as NumPy arrays; :class:`NamedTensors` is a
source seen through a :class:`tfckpt.inspection.selection.Selection`, under the names it gives.
Comparing (:mod:`tfckpt.inspection.compare`), converting (:mod:`tfckpt.convert`) and the framework
bridge (:mod:`tfckpt.bridges`) all read through it.

Values are always arrays (0-d for scalars; object arrays of ``bytes`` for strings), in
native byte order.  A NumpyState value is stored as the ``.npy`` bytes of its array:
``decode=True`` reads the array itself, ``decode=False`` the bytes as stored.
"""

from __future__ import annotations

import io
import json
import mmap
import os
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from tfckpt import dtypes
from tfckpt.errors import (
    CheckpointNotFoundError,
    DataLossError,
    TensorNotFoundError,
    UnsupportedError,
)
from tfckpt.inspection.extras import require
from tfckpt.inspection.selection import (
    Kind,
    Selected,
    Selection,
    ValueName,
    describe_checkpoint,
    is_tf1_optimizer_name,
    key_for_path,
    path_from_key,
)

CHECKPOINT_FORMATS = ("v1", "v2")
SAFETENSORS = "safetensors"
NPZ = "npz"

# safetensors' dtype codes and the TensorFlow dtypes they are.
SAFETENSORS_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U64": "uint64",
    "U32": "uint32",
    "U16": "uint16",
    "U8": "uint8",
    "BOOL": "bool",
    "C64": "complex64",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
    "F8_E4M3FNUZ": "float8_e4m3fnuz",
    "F8_E5M2FNUZ": "float8_e5m2fnuz",
}
_ML_DTYPES_CODES = frozenset({"BF16", "F8_E4M3", "F8_E5M2", "F8_E4M3FNUZ", "F8_E5M2FNUZ"})
# Metadata that tfckpt writes into the safetensors files it makes.
META_NAMES = "tfckpt.names"
META_NUMPY_STATE = "tfckpt.numpy_state"
META_OPTIMIZER = "tfckpt.optimizer"
_NPY_MAGIC = b"\x93NUMPY"


@dataclass(frozen=True)
class Spec:
    """A value's dtype (TensorFlow's name, e.g. ``'float32'`` or ``'string'``; for NumPy
    dtypes TensorFlow has no name for, ``'numpy:<dtype>'``) and shape."""

    dtype: str
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        """Number of elements."""
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int | None:
        """Bytes of the values in memory (None for strings and dtypes without a size)."""
        try:
            return self.size * dtypes.as_dtype(self.dtype).size
        except (TypeError, ValueError):
            return None


class Source(Protocol):
    """The values of one file."""

    path: str
    format: str  # "v1", "v2", "safetensors" or "npz"

    def values(self) -> list[ValueName]: ...

    def spec(self, key: str, *, decode: bool = False) -> Spec: ...

    def read(self, key: str, *, decode: bool = False, copy: bool = False) -> np.ndarray:
        """The value of ``key``; ``copy=False`` may return a read-only view."""
        ...

    def read_region(self, key: str, index: Any, *, decode: bool = False) -> np.ndarray:
        """``value[index]`` (basic indexing), reading as little as the format allows."""
        ...

    def metadata(self) -> dict[str, str]: ...

    def close(self) -> None: ...


def as_array(value: Any) -> np.ndarray:
    """A value as :class:`tfckpt.CheckpointReader` returns it, as an array (bytes as a 0-d
    object array, not NumPy's fixed-width bytes, which would drop trailing NULs)."""
    if isinstance(value, bytes):
        out = np.empty((), object)
        out[()] = value
        return out
    return np.asarray(value)


def npy_spec(data: Any) -> tuple[np.dtype[Any], tuple[int, ...]] | None:
    """The dtype and shape in the header of ``numpy.save`` bytes, or None if they are not
    ``.npy`` bytes (only the header is parsed)."""
    view = memoryview(data).cast("B")
    if bytes(view[:6]) != _NPY_MAGIC or len(view) < 10:
        return None
    from numpy.lib import format as npy_format

    major = view[6]
    length_end = 10 if major == 1 else 12
    if len(view) < length_end:
        return None
    header_length = int.from_bytes(view[8:length_end], "little")
    head = io.BytesIO(bytes(view[: length_end + header_length]))
    try:
        version = npy_format.read_magic(head)
        if version == (1, 0):
            shape, _, dtype = npy_format.read_array_header_1_0(head)
        else:
            shape, _, dtype = npy_format.read_array_header_2_0(head)
    except Exception:  # ValueError and friends for a corrupt header
        return None
    return dtype, tuple(int(d) for d in shape)


def dtype_name(np_dtype: np.dtype[Any]) -> str:
    """TensorFlow's name for a NumPy dtype, or ``'numpy:<dtype>'``."""
    try:
        return dtypes.from_numpy(np_dtype).name
    except TypeError:
        return f"numpy:{np_dtype}"


def native(array: np.ndarray) -> np.ndarray:
    """``array`` in native byte order and C order (itself when it already is)."""
    if array.dtype.byteorder == (">" if np.little_endian else "<"):
        array = array.astype(array.dtype.newbyteorder("="))
    return c_order(array)


def c_order(array: np.ndarray) -> np.ndarray:
    """``array`` in C order, itself when it is (unlike ``numpy.ascontiguousarray``, which
    makes 0-d arrays 1-d)."""
    return array if array.flags.c_contiguous else array.copy(order="C")


def decode_numpy_state(data: Any, key: str, path: str) -> np.ndarray:
    """The array in a NumpyState value's ``.npy`` bytes (native byte order, C order).

    Raises:
        DataLossError: the bytes are not an array saved without pickle.
    """
    from tfckpt.objects.numpy_state import deserialize_array

    return native(deserialize_array(data, key, path))


# -- checkpoints ---------------------------------------------------------------------------


class CheckpointSource:
    """A checkpoint (any path :func:`tfckpt.load_checkpoint` takes) as a :class:`Source`."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        from tfckpt.reader import load_checkpoint

        self.reader = load_checkpoint(path)
        self.path = self.reader.prefix
        self.format = self.reader.format
        try:
            self._values = describe_checkpoint(self.reader)
        except BaseException:
            self.reader.close()
            raise
        self._kinds = {v.key: v.kind for v in self._values}
        self._shapes = self.reader.get_variable_to_shape_map()

    def values(self) -> list[ValueName]:
        return list(self._values)

    def _decoded(self, key: str, decode: bool) -> bool:
        return decode and self._kinds.get(key) == "numpy"

    def _require(self, key: str) -> None:
        if key not in self._kinds:
            raise TensorNotFoundError("not found in the checkpoint", path=self.path, tensor=key)

    def spec(self, key: str, *, decode: bool = False) -> Spec:
        self._require(key)
        if self._decoded(key, decode):
            found = npy_spec(self.reader.get_bytes_view(key))
            if found is not None:
                return Spec(dtype_name(found[0]), found[1])
        return Spec(self.reader.get_dtype(key).name, tuple(self._shapes[key]))

    def read(self, key: str, *, decode: bool = False, copy: bool = False) -> np.ndarray:
        self._require(key)
        if self._decoded(key, decode):
            data = self.reader.get_bytes_view(key)
            if npy_spec(data) is not None:
                return decode_numpy_state(data, key, self.path)
        return as_array(self.reader.get_tensor(key, copy=copy))

    def read_region(self, key: str, index: Any, *, decode: bool = False) -> np.ndarray:
        self._require(key)
        if self._decoded(key, decode):
            return as_array(self.read(key, decode=True)[index])
        return as_array(self.reader.get_slice(key)[index])

    def metadata(self) -> dict[str, str]:
        return {"format": "tensorflow", "checkpoint_format": self.format}

    def close(self) -> None:
        self.reader.close()


# -- files of tensors: safetensors and npz -------------------------------------------------


def _file_values(
    names: list[str], metadata: dict[str, str]
) -> tuple[list[ValueName], dict[str, str]]:
    """ValueNames for the tensors of a safetensors or npz file, and key -> stored name.

    A file that tfckpt wrote with object paths (``tfckpt.names: paths``) gets its keys back;
    names that are checkpoint keys are described from the key.  Optimizer state is what
    the file's ``tfckpt.optimizer`` metadata lists, else what the names suggest (slots, the
    root's ``optimizer``, TF1 slot names)."""
    as_paths = metadata.get(META_NAMES) == "paths"
    numpy_state = set(_json_list(metadata, META_NUMPY_STATE))
    listed = metadata.get(META_OPTIMIZER)
    optimizer = set(_json_list(metadata, META_OPTIMIZER))
    key_set = set(names)
    values = []
    stored = {}
    for name in names:
        kind: Kind
        if as_paths:
            kind = "numpy" if name in numpy_state else _path_kind(name)
            key, path = key_for_path(name, kind), name
        else:
            path, kind = path_from_key(name)
            key = name
        if listed is not None:
            is_optimizer = name in optimizer
        elif kind == "tensor":
            is_optimizer = is_tf1_optimizer_name(name, key_set)
        else:
            is_optimizer = kind == "slot" or path.split("/")[0] == "optimizer"
        value = ValueName(key, path, kind, is_optimizer)
        values.append(value)
        stored[value.key] = name
    return values, stored


def _json_list(metadata: dict[str, str], key: str) -> list[str]:
    try:
        found = json.loads(metadata.get(key, "[]"))
    except json.JSONDecodeError:
        return []
    return [str(item) for item in found] if isinstance(found, list) else []


def _path_kind(path: str) -> Kind:
    parts = path.split("/")
    if ".OPTIMIZER_SLOT" in parts:
        return "slot"
    if ".ATTRIBUTES" in parts:
        return "attribute"
    return "save_counter" if path == "save_counter" else "variable"


class SafetensorsSource:
    """A ``.safetensors`` file, read through the safetensors package (memory-mapped)."""

    format = SAFETENSORS

    def __init__(self, path: str | os.PathLike[str]) -> None:
        package = require("safetensors")
        self.path = os.fspath(path)
        try:
            self._file = package.safe_open(self.path, framework="np")
            self._handle = self._file.__enter__()
        except FileNotFoundError:
            raise CheckpointNotFoundError("the file does not exist", path=self.path) from None
        except Exception as exc:  # SafetensorError for a file that is not safetensors
            raise DataLossError(f"not a safetensors file ({exc})", path=self.path) from None
        self._metadata: dict[str, str] = dict(self._handle.metadata() or {})
        self._values, self._stored = _file_values(list(self._handle.keys()), self._metadata)
        self._kinds = {v.key: v.kind for v in self._values}
        self._raw: tuple[mmap.mmap, dict[str, Any], int] | None = None

    def values(self) -> list[ValueName]:
        return list(self._values)

    def _name(self, key: str) -> str:
        found = self._stored.get(key)
        if found is None:
            raise TensorNotFoundError("not found in the file", path=self.path, tensor=key)
        return found

    def _code(self, key: str) -> str:
        return str(self._handle.get_slice(self._name(key)).get_dtype())

    def spec(self, key: str, *, decode: bool = False) -> Spec:
        name = self._name(key)
        view = self._handle.get_slice(name)
        if self._kinds[key] == "numpy" and not decode:
            return Spec("string", ())
        code = str(view.get_dtype())
        return Spec(SAFETENSORS_DTYPES.get(code, f"safetensors:{code}"), tuple(view.get_shape()))

    def _check_readable(self, key: str, code: str) -> None:
        if code not in SAFETENSORS_DTYPES:
            raise UnsupportedError(
                f"safetensors dtype {code} has no TensorFlow equivalent", path=self.path, tensor=key
            )

    def read(self, key: str, *, decode: bool = False, copy: bool = False) -> np.ndarray:
        name = self._name(key)
        code = self._code(key)
        self._check_readable(key, code)
        if code in _ML_DTYPES_CODES:
            # (safetensors' NumPy path lacks float8 types, and needs ml_dtypes imported first
            # for bfloat16)
            array = self._read_raw(name, code)
        else:
            array = self._handle.get_tensor(name)
        if copy:
            array = np.array(array)
        if self._kinds[key] == "numpy" and not decode:
            from tfckpt.objects.numpy_state import serialize_array

            return as_array(serialize_array(array, key))
        return array

    def read_region(self, key: str, index: Any, *, decode: bool = False) -> np.ndarray:
        name = self._name(key)
        code = self._code(key)
        self._check_readable(key, code)
        if code not in _ML_DTYPES_CODES and (decode or self._kinds[key] != "numpy"):
            try:
                return np.asarray(self._handle.get_slice(name)[index])
            except Exception:  # steps and other indexing safetensors' slices do not take
                pass
        return as_array(self.read(key, decode=decode)[index])

    def _read_raw(self, name: str, code: str) -> np.ndarray:
        """A tensor straight from the memory map, at the offsets in the file's header."""
        if self._raw is None:
            with open(self.path, "rb") as f:
                (length,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(length))
                mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            self._raw = (mapped, header, 8 + length)
        mapped, header, base = self._raw
        begin, end = header[name]["data_offsets"]
        storage = dtypes.as_dtype(SAFETENSORS_DTYPES[code]).storage_dtype
        shape = tuple(header[name]["shape"])
        count = (end - begin) // storage.itemsize
        return np.frombuffer(mapped, storage, count, base + begin).reshape(shape)

    def metadata(self) -> dict[str, str]:
        return dict(self._metadata)

    def close(self) -> None:
        self._file.__exit__(None, None, None)
        self._raw = None  # the map closes when the last array over it goes


class NpzSource:
    """A NumPy ``.npz`` archive, read member by member without pickle."""

    format = NPZ

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        try:
            self._zip = zipfile.ZipFile(self.path)
        except FileNotFoundError:
            raise CheckpointNotFoundError("the file does not exist", path=self.path) from None
        except (zipfile.BadZipFile, OSError) as exc:
            raise DataLossError(f"not an .npz archive ({exc})", path=self.path) from None
        members = [m for m in self._zip.namelist() if m.endswith(".npy")]
        self._members = {m[: -len(".npy")]: m for m in members}
        self._values, self._stored = _file_values(list(self._members), {})
        self._specs: dict[str, Spec] = {}

    def values(self) -> list[ValueName]:
        return list(self._values)

    def _member(self, key: str) -> str:
        name = self._stored.get(key)
        if name is None:
            raise TensorNotFoundError("not found in the archive", path=self.path, tensor=key)
        return self._members[name]

    def spec(self, key: str, *, decode: bool = False) -> Spec:
        found = self._specs.get(key)
        if found is None:
            with self._zip.open(self._member(key)) as f:
                head = f.read(1 << 16)
            parsed = npy_spec(head)
            if parsed is None:
                raise DataLossError("not a .npy array", path=self.path, tensor=key)
            np_dtype, shape = parsed
            name = "string" if np_dtype.kind in "SU" else dtype_name(np_dtype)
            found = self._specs[key] = Spec(name, shape)
        return found

    def read(self, key: str, *, decode: bool = False, copy: bool = False) -> np.ndarray:
        from numpy.lib import format as npy_format

        with self._zip.open(self._member(key)) as f:
            try:
                array = npy_format.read_array(f, allow_pickle=False)
            except ValueError as exc:  # object arrays need pickle
                raise UnsupportedError(
                    f"cannot be read without pickle ({exc})", path=self.path, tensor=key
                ) from None
        if array.dtype.kind in "SU":
            return strings_from_fixed_width(array)
        return native(array)

    def read_region(self, key: str, index: Any, *, decode: bool = False) -> np.ndarray:
        return as_array(self.read(key)[index])

    def metadata(self) -> dict[str, str]:
        return {}

    def close(self) -> None:
        self._zip.close()


def strings_from_fixed_width(array: np.ndarray) -> np.ndarray:
    """An object array of ``bytes`` from a NumPy ``S`` (or ``U``, as UTF-8) array."""
    out = np.empty(array.shape, object)
    flat = array.reshape(-1).tolist()
    if array.dtype.kind == "U":
        flat = [s.encode("utf-8") for s in flat]
    out.reshape(-1)[:] = flat if flat else []
    return out


def file_format(path: str | os.PathLike[str]) -> str | None:
    """``'safetensors'`` or ``'npz'`` for such a file (by extension, else by content),
    None for anything else (a checkpoint prefix, directory, or another file)."""
    path = os.fspath(path)
    lowered = path.lower()
    if lowered.endswith(".safetensors"):
        return SAFETENSORS
    if lowered.endswith(".npz"):
        return NPZ
    if not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return None
    if head[:4] == b"PK\x03\x04":
        return NPZ if zipfile.is_zipfile(path) else None
    if len(head) == 9 and head[8:9] == b"{":
        (length,) = struct.unpack("<Q", head[:8])
        if 1 < length < os.path.getsize(path):
            return SAFETENSORS
    return None


def open_source(path: str | os.PathLike[str]) -> Source:
    """The :class:`Source` for a checkpoint, ``.safetensors`` or ``.npz`` file.

    Raises:
        CheckpointNotFoundError: nothing there.
        DataLossError: the file is corrupt.
        MissingExtraError: safetensors is not installed (for ``.safetensors`` files).

    Example::

        with closing(open_source("model.safetensors")) as source:
            keys = [v.key for v in source.values()]
    """
    kind = file_format(path)
    if kind == SAFETENSORS:
        return SafetensorsSource(path)
    if kind == NPZ:
        return NpzSource(path)
    return CheckpointSource(path)


# -- a source under the names a selection gives --------------------------------------------


class NamedTensors:
    """A :class:`Source` seen through a :class:`Selection`: its values under their new names.

    ``decode`` reads NumpyState values as their arrays (default: when naming by object
    path).  Use as a context manager, or call :meth:`close`.

    Example::

        with NamedTensors(open_source(path), Selection(names="paths")) as tensors:
            kernel = tensors.read("model/dense/kernel")
    """

    def __init__(
        self, source: Source, selection: Selection | None = None, *, decode: bool | None = None
    ) -> None:
        self.source = source
        self.selection = selection if selection is not None else Selection()
        self.decode = self.selection.names == "paths" if decode is None else decode
        try:
            chosen = self.selection.apply(source.values())
        except BaseException:
            source.close()
            raise
        self._chosen: dict[str, Selected] = {item.name: item for item in chosen}

    @property
    def path(self) -> str:
        return self.source.path

    def names(self) -> list[str]:
        """The selected names, in the source's order."""
        return list(self._chosen)

    def __contains__(self, name: object) -> bool:
        return name in self._chosen

    def __len__(self) -> int:
        return len(self._chosen)

    def __iter__(self) -> Iterator[str]:
        return iter(self._chosen)

    def origin(self, name: str) -> ValueName:
        """Where the value called ``name`` comes from."""
        return self._selected(name).source

    def _selected(self, name: str) -> Selected:
        found = self._chosen.get(name)
        if found is None:
            raise TensorNotFoundError(
                f"not among the selected {self.selection.names}", path=self.path, tensor=name
            )
        return found

    def spec(self, name: str) -> Spec:
        return self.source.spec(self._selected(name).source.key, decode=self.decode)

    def read(self, name: str, *, copy: bool = False) -> np.ndarray:
        return self.source.read(self._selected(name).source.key, decode=self.decode, copy=copy)

    def read_region(self, name: str, index: Any) -> np.ndarray:
        key = self._selected(name).source.key
        return self.source.read_region(key, index, decode=self.decode)

    def close(self) -> None:
        self.source.close()

    def __enter__(self) -> NamedTensors:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_tensors(
    path: str | os.PathLike[str], selection: Selection | None = None, *, decode: bool | None = None
) -> NamedTensors:
    """:class:`NamedTensors` over the file at ``path`` (see :func:`open_source`)."""
    return NamedTensors(open_source(path), selection, decode=decode)
