"""NumpyState: a trackable whose NumPy array attributes are saved and restored.

Mirrors ``tf.contrib.checkpoint.NumpyState`` as TF-Agents carries it today
(tf_agents/replay_buffers/numpy_storage.py): each array attribute is a child object whose
``py_state`` attribute holds ``numpy.save`` bytes written with ``allow_pickle=False``;
restoring re-creates attributes that do not exist yet and replaces those that do.  Nothing
is ever unpickled.  The earliest contrib release stored the bytes under the attribute name
``array``; both names are read.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from tfckpt.bundle.writer import StringPieces
from tfckpt.errors import DataLossError, InvalidArgumentError
from tfckpt.objects.keys import LEGACY_NUMPY_ATTRIBUTE, PY_STATE


def serialize_array(value: np.ndarray | np.generic, name: str = "") -> bytes:
    """``numpy.save`` bytes of ``value``, never pickled."""
    buffer = io.BytesIO()
    try:
        np.save(buffer, value, allow_pickle=False)
    except ValueError as exc:
        raise InvalidArgumentError(
            f"cannot save a NumpyState array of dtype {np.asarray(value).dtype} without "
            f"pickling ({exc}); object arrays are not supported",
            tensor=name or None,
        ) from None
    return buffer.getvalue()


def serialize_pieces(value: np.ndarray | np.generic, name: str = "") -> StringPieces:
    """:func:`serialize_array` as pieces: the ``.npy`` header, then the array's own memory.

    The concatenation equals ``numpy.save``'s bytes (numpy/lib/format.py ``write_array``:
    C-contiguous arrays as they are, Fortran-contiguous ones in Fortran order, others in C
    order), without copying a contiguous array.
    """
    array = np.asanyarray(value)
    if array.dtype.hasobject or not getattr(type(array.dtype), "_legacy", False):
        return StringPieces([serialize_array(value, name)])  # raises the error np.save would
    header = _npy_header(array)
    if header is None:
        return StringPieces([serialize_array(value, name)])
    if array.flags.c_contiguous:
        data = np.asarray(array)
    elif array.flags.f_contiguous:
        data = np.asarray(array.T)  # header says fortran_order: the memory as it is
    else:
        data = np.ascontiguousarray(array)
    if data.nbytes == 0:
        return StringPieces([header])
    return StringPieces([header, data.reshape(-1).view(np.uint8)])


def _npy_header(array: np.ndarray) -> bytes | None:
    """The header ``numpy.save`` writes for ``array`` (format 1.0, or 2.0 when it does not
    fit), or None when only format 3.0 holds it (non-Latin-1 field names)."""
    fields = np.lib.format.header_data_from_array_1_0(array)
    for write_header in (
        np.lib.format.write_array_header_1_0,
        np.lib.format.write_array_header_2_0,
    ):
        buffer = io.BytesIO()
        try:
            write_header(buffer, fields)
        except ValueError:  # too long for format 1.0
            continue
        except UnicodeEncodeError:
            return None
        return buffer.getvalue()
    return None


def deserialize_array(data: Any, name: str = "", path: str | None = None) -> np.ndarray:
    """Loads ``numpy.save`` bytes (any buffer) with ``allow_pickle=False``.

    The common formats (1.0 and 2.0 headers, no object fields) are read with a single copy
    straight from ``data``; anything else goes through ``numpy.load``.
    """
    array = _load_npy_fast(memoryview(data).cast("B"))
    if array is not None:
        return array
    try:
        return np.load(io.BytesIO(bytes(data)), allow_pickle=False)
    except Exception as exc:  # ValueError for pickled data, others for corrupt bytes
        raise DataLossError(
            f"not a NumPy array saved without pickle ({exc})",
            path=path,
            tensor=name or None,
        ) from None


def _load_npy_fast(view: memoryview) -> np.ndarray | None:
    # numpy/lib/format.py: magic "\x93NUMPY", major and minor version, then the header
    # length (uint16 little-endian for 1.0, uint32 for 2.0) and the header dict.
    fmt = np.lib.format
    if len(view) < 12 or bytes(view[:6]) != b"\x93NUMPY" or bytes(view[7:8]) != b"\x00":
        return None
    major = view[6]
    if major == 1:
        header_end = 10 + int.from_bytes(view[8:10], "little")
        read_header = fmt.read_array_header_1_0
    elif major == 2:
        header_end = 12 + int.from_bytes(view[8:12], "little")
        read_header = fmt.read_array_header_2_0
    else:
        return None
    if header_end > len(view):
        return None
    try:
        shape, fortran_order, dtype = read_header(io.BytesIO(bytes(view[8:header_end])))
    except Exception:  # malformed: numpy.load gives the precise error
        return None
    if dtype.hasobject:
        return None
    count = 1
    for size in shape:
        count *= size
    if header_end + count * dtype.itemsize > len(view):
        return None
    flat = np.frombuffer(view, dtype, count, header_end).copy()
    if fortran_order:
        return flat.reshape(shape[::-1]).transpose()
    return flat.reshape(shape)


class _NumpyWrapper:
    """The object-graph node of one NumpyState attribute (TF-Agents' ``_NumpyWrapper``)."""

    __slots__ = ("array", "name")
    # Restored from a memoryview of the scalar string's bytes (see restore.py).
    _tfckpt_bytes_attributes = (PY_STATE, LEGACY_NUMPY_ATTRIBUTE)

    def __init__(self, array: Any, name: str) -> None:
        self.array = array
        self.name = name

    def _tfckpt_children(self) -> list[tuple[str, Any]]:
        return []

    def _tfckpt_attributes(self) -> dict[str, tuple[str, Any]]:
        return {PY_STATE: ("", lambda: serialize_pieces(self.array, self.name))}

    def _tfckpt_restore(
        self, attribute: str, value: Any, path: str | None = None, key: str | None = None
    ) -> None:
        self.array = deserialize_array(value, key or self.name, path)

    def _tfckpt_restorable_attributes(self) -> tuple[str, ...]:
        return (PY_STATE, LEGACY_NUMPY_ATTRIBUTE)


class NumpyState:
    """A trackable whose NumPy array (and NumPy scalar) attributes are checkpointed.

    ``state.x = numpy.zeros([3, 4])`` tracks ``x``; assigning again replaces the value;
    ``state.x`` gives the array itself.  On restore, attributes found in the checkpoint are
    created or replaced.
    """

    # Set through object.__setattr__ (this class's __setattr__ stores arrays only).
    _wrappers: dict[str, _NumpyWrapper]

    def __init__(self) -> None:
        object.__setattr__(self, "_wrappers", {})

    def __setattr__(self, name: str, value: Any) -> None:
        if not isinstance(value, (np.ndarray, np.generic)):
            raise TypeError(
                f"NumpyState attributes must be NumPy arrays or NumPy scalars; got "
                f"{type(value).__name__} for {name!r} (wrap it with numpy.asarray)"
            )
        if value.dtype.hasobject:
            raise TypeError(
                f"NumpyState attribute {name!r}: object arrays cannot be saved without "
                "pickling; use a fixed-size dtype"
            )
        wrappers: dict[str, _NumpyWrapper] = self._wrappers
        existing = wrappers.get(name)
        if existing is not None:
            existing.array = value
        else:
            wrappers[name] = _NumpyWrapper(value, name)

    def __getattr__(self, name: str) -> Any:
        wrappers = object.__getattribute__(self, "_wrappers")
        try:
            return wrappers[name].array
        except KeyError:
            raise AttributeError(f"NumpyState has no attribute {name!r}") from None

    def __delattr__(self, name: str) -> None:
        try:
            del self._wrappers[name]
        except KeyError:
            raise AttributeError(f"NumpyState has no attribute {name!r}") from None

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._wrappers))

    def __repr__(self) -> str:
        return f"NumpyState({', '.join(self._wrappers)})"

    # -- object graph protocol ------------------------------------------------------------

    def _tfckpt_children(self) -> list[tuple[str, Any]]:
        return list(self._wrappers.items())

    def _tfckpt_lookup(self, name: str, attributes: set[str]) -> Any:
        wrapper = self._wrappers.get(name)
        if wrapper is None and attributes & {PY_STATE, LEGACY_NUMPY_ATTRIBUTE}:
            # Like TF-Agents' _lookup_dependency: attributes are re-created by restore().
            wrapper = _NumpyWrapper(np.array([]), name)
            self._wrappers[name] = wrapper
        return wrapper
