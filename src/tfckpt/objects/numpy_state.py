"""NumpyState: a trackable whose NumPy array attributes are saved and restored.

Mirrors ``tf.contrib.checkpoint.NumpyState`` as TF-Agents carries it today
(tf_agents/replay_buffers/numpy_storage.py): each array attribute is a child object whose
``py_state`` attribute holds ``numpy.save`` bytes written with ``allow_pickle=False``;
restoring re-creates attributes that do not exist yet and replaces those that do.  Nothing
is ever unpickled.  The earliest contrib release stored the bytes under the attribute name
``array``; both names are read.
"""

from __future__ import annotations

import ast
import io
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from tfckpt.bundle.write_batch import StringPieces
from tfckpt.errors import DataLossError, InvalidArgumentError
from tfckpt.objects.keys import LEGACY_NUMPY_ATTRIBUTE, PY_STATE
from tfckpt.shapes import MAX_RANK


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
    """Loads ``numpy.save`` bytes (any buffer) as ``numpy.load(allow_pickle=False)`` would,
    with one copy straight from ``data``.

    Never unpickles, and never goes through ``numpy.load`` (which allocates what a header
    claims before finding the data missing): the header is parsed and checked here, and
    the array is made only once the bytes are known to hold it.  Raises DataLossError
    naming ``path`` and the tensor ``name`` for anything else: bytes that are not ``.npy``
    (a pickle, an ``.npz``), a header that is not NumPy's dict, a shape with negative or
    non-integer dimensions or more than 64 of them, a dtype holding Python objects (only
    pickle restores those), or fewer bytes than the shape needs.
    """
    view = memoryview(data).cast("B")
    try:
        start, header = _stored_header(view)
        shape, fortran_order, dtype = _parse_npy_header(header)
        return _npy_array(view, start, shape, fortran_order, dtype)
    except _NotNpy as exc:
        raise DataLossError(
            f"not a NumPy array saved without pickle: {exc}", path=path, tensor=name or None
        ) from None


class _NotNpy(Exception):
    """What makes bytes not an ``.npy`` array tfckpt restores (the message says)."""


# numpy/lib/format.py: magic "\x93NUMPY", major and minor version, the header length
# (uint16 little-endian for version 1.0, uint32 for 2.0 and 3.0), then the header: a
# Python dict literal, Latin-1 encoded (UTF-8 for 3.0), padded with spaces and a newline.
_NPY_MAGIC = b"\x93NUMPY"
_NPY_LENGTH_BYTES = {1: 2, 2: 4, 3: 4}
_MAX_NPY_HEADER = 1 << 16  # (numpy.load refuses headers above 10000 bytes by default)
_NPY_KEYS = {"descr", "fortran_order", "shape"}


def _stored_header(view: memoryview) -> tuple[int, str]:
    """Where the array's bytes start, and the header's text."""
    if bytes(view[:6]) != _NPY_MAGIC:
        raise _NotNpy("no .npy magic number (a pickle, an .npz archive, or other bytes)")
    major, minor = view[6:8].tolist() if len(view) >= 8 else (0, 0)
    width = _NPY_LENGTH_BYTES.get(major)
    if width is None or minor != 0:
        raise _NotNpy(f".npy format version {major}.{minor} (expected 1.0, 2.0 or 3.0)")
    length = int.from_bytes(view[8 : 8 + width], "little")
    start = 8 + width + length
    if len(view) < 8 + width or start > len(view) or length > _MAX_NPY_HEADER:
        raise _NotNpy(f"a header of {length} bytes in {len(view)} bytes of data")
    try:
        return start, bytes(view[8 + width : start]).decode("utf-8" if major == 3 else "latin1")
    except UnicodeDecodeError:
        raise _NotNpy("a version 3.0 header that is not UTF-8") from None


def _parse_npy_header(text: str) -> tuple[tuple[int, ...], bool, np.dtype[Any]]:
    """The shape, order and dtype of a header, checked; parsed as a Python literal
    (``ast.literal_eval``, which evaluates no code), as numpy.load does."""
    try:
        header = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise _NotNpy("the header is not a Python literal") from None
    if not isinstance(header, dict) or set(header) != _NPY_KEYS:
        raise _NotNpy(f"the header is not a dict of {sorted(_NPY_KEYS)}")
    shape, fortran_order = header["shape"], header["fortran_order"]
    if not isinstance(shape, tuple) or not all(type(n) is int and n >= 0 for n in shape):
        raise _NotNpy(f"shape {shape!r} is not a tuple of non-negative integers")
    if len(shape) > MAX_RANK:
        raise _NotNpy(f"a shape of {len(shape)} dimensions (NumPy holds at most {MAX_RANK})")
    if not isinstance(fortran_order, bool):
        raise _NotNpy(f"fortran_order {fortran_order!r} is not a bool")
    try:
        dtype = np.lib.format.descr_to_dtype(header["descr"])
    except Exception:  # TypeError, ValueError... for descriptors numpy does not know
        raise _NotNpy(f"descr {header['descr']!r} is not a NumPy dtype") from None
    if dtype.hasobject:
        raise _NotNpy(f"dtype {dtype} holds Python objects, which only pickle restores")
    return shape, fortran_order, dtype


def _npy_array(
    view: memoryview, start: int, shape: tuple[int, ...], fortran_order: bool, dtype: np.dtype[Any]
) -> np.ndarray:
    """The array the header describes, once the bytes after it are known to hold it."""
    count = math.prod(shape)
    needed = count * dtype.itemsize
    # (the second test: zero elements, but dimensions whose product NumPy cannot hold)
    if needed > len(view) - start or math.prod(n for n in shape if n) >= 1 << 62:
        raise _NotNpy(
            f"shape {list(shape)} of {dtype} needs {needed} bytes, the data holds "
            f"{len(view) - start}"
        )
    if dtype.itemsize == 0:
        flat = np.zeros(count, dtype)
    else:
        flat = np.frombuffer(view, dtype, count, start).copy()
    if fortran_order:
        return flat.reshape(shape[::-1]).transpose()
    return flat.reshape(shape)


class _NumpyWrapper:
    """The object-graph node of one NumpyState attribute (TF-Agents' ``_NumpyWrapper``)."""

    __slots__ = ("array", "name", "owner")
    # Restored from a memoryview of the scalar string's bytes (see restore.py).
    _tfckpt_bytes_attributes = (PY_STATE, LEGACY_NUMPY_ATTRIBUTE)

    def __init__(self, array: Any, name: str, owner: NumpyState | None = None) -> None:
        self.array = array
        self.name = name
        self.owner = owner  # a NumpyState to join once restored (made by its lookup)

    def _tfckpt_children(self) -> list[tuple[str, Any]]:
        return []

    def _tfckpt_attributes(self) -> dict[str, tuple[str, Any]]:
        return {PY_STATE: ("", lambda: serialize_pieces(self.array, self.name))}

    def _tfckpt_restore(
        self, attribute: str, value: Any, path: str | None = None, key: str | None = None
    ) -> None:
        self._tfckpt_prepare_restore(attribute, value, path, key)()

    def _tfckpt_prepare_restore(
        self, attribute: str, value: Any, path: str | None = None, key: str | None = None
    ) -> Callable[[], None]:
        """Decodes ``value`` now (raising DataLossError for bytes that are not an array);
        returns what sets it, and attaches a wrapper that restoring created to its
        NumpyState, once the whole restore has been checked."""
        array = deserialize_array(value, key or self.name, path)

        def apply() -> None:
            owner, self.owner = self.owner, None
            target = self if owner is None else owner._wrappers.setdefault(self.name, self)
            target.array = array

        return apply

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
            # Like TF-Agents' _lookup_dependency: attributes are re-created by restore(),
            # attached when the restore is applied (a failed one leaves none behind).
            wrapper = _NumpyWrapper(np.array([]), name, owner=self)
        return wrapper
