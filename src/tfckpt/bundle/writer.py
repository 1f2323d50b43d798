"""Writing TensorBundle (V2) checkpoints, byte-identical to TensorFlow's ``SaveV2``.

Data is appended to the data file in the order tensors are added, with no padding; the
index lists the entries in key order (BundleWriter::Add / AddSlice / Finish in
tensorflow/core/util/tensor_bundle/tensor_bundle.cc).  Both files are written under
temporary names; on :meth:`BundleWriter.finish` the data file is renamed into place first
and the index last, so a checkpoint is visible under its final name only once complete.
"""

from __future__ import annotations

import functools
import io
import itertools
import os
import secrets
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from tfckpt import checksum, dtypes
from tfckpt.bundle.naming import data_filename, index_filename
from tfckpt.bundle.strings import encode_string_chunks, encode_string_head, encode_strings
from tfckpt.bundle.threads import shared_pool
from tfckpt.errors import InvalidArgumentError
from tfckpt.proto import tensor_bundle_pb2
from tfckpt.table.format import encode_varint
from tfckpt.table.writer import TableWriter
from tfckpt.tensor_slice import TensorSlice, encode_slice_key

# Small tensors are staged in a buffer that stays in the CPU cache; 20,000 tensors of a few
# KiB write 5x faster through 256 KiB than through TensorFlow's 8 MiB.  Larger writes go
# straight from the array's memory (BufferedWriter passes them through).
_WRITE_BUFFER = 256 << 10
# Data at least this large is checksummed in a thread while it is written (crc32c and the
# write both release the GIL), so a large save costs about the write alone.
_PARALLEL_CRC = 4 << 20
_STRING_ENUM = dtypes.string.as_datatype_enum
# add_many() gathers small native arrays into batches of up to this many arrays and bytes,
# each written with one os.writev straight from the arrays' memory (no staging copy) and
# its entries serialized together.  Larger arrays take add()'s path.
_BATCH_COUNT = 512
_BATCH_BYTES = 1 << 20
_HAS_WRITEV = hasattr(os, "writev")


def _as_bytes(value: Any, name: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytearray, memoryview, np.bytes_)):
        return bytes(value)
    raise InvalidArgumentError(
        f"tensor {name!r}: string tensors hold bytes or str, found {type(value).__name__}",
        tensor=name,
    )


def to_array(value: Any, name: str, dtype: Any = None) -> tuple[np.ndarray, dtypes.DType]:
    """Converts a value to the array that will be stored and its TensorFlow dtype.

    NumPy arrays and scalars keep their dtype; ``bytes``/``str`` (and arrays of them, or of
    objects holding them) become string tensors; other values go through ``numpy.asarray``.
    ``dtype`` forces a TensorFlow dtype, e.g. ``'qint8'`` for an int8 array.
    """
    if isinstance(value, (bytes, str, bytearray, np.bytes_, np.str_)):
        array = np.empty((), object)
        array[()] = _as_bytes(value, name)
    else:
        try:
            array = np.asarray(value)
        except Exception as exc:
            raise InvalidArgumentError(
                f"tensor {name!r}: cannot convert {type(value).__name__} to an array: {exc}",
                tensor=name,
            ) from None
    try:
        tf_dtype = dtypes.as_dtype(dtype) if dtype is not None else dtypes.from_numpy(array.dtype)
    except TypeError as exc:
        raise InvalidArgumentError(f"tensor {name!r}: {exc}", tensor=name) from None
    if tf_dtype.name in ("resource", "variant"):
        raise InvalidArgumentError(
            f"tensor {name!r}: {tf_dtype.name} tensors cannot be written without TensorFlow",
            tensor=name,
        )
    if tf_dtype.name == "string":
        if array.dtype.kind not in "OSU":
            raise InvalidArgumentError(
                f"tensor {name!r}: a string tensor needs bytes or str values, found {array.dtype}",
                tensor=name,
            )
        return array, tf_dtype
    storage = tf_dtype.storage_dtype
    if array.dtype.kind in "OSU":
        raise InvalidArgumentError(
            f"tensor {name!r}: cannot store {array.dtype} values as {tf_dtype.name}",
            tensor=name,
        )
    if array.dtype != storage:
        if array.dtype.newbyteorder("=") == storage.newbyteorder("="):
            array = array.astype(storage)  # non-native byte order: swap once
        elif (
            tf_dtype.is_quantized
            and array.dtype.itemsize == storage.itemsize
            and (array.dtype.names is not None or array.dtype.kind in "iu")
        ):
            array = array.view(storage)  # quantized: stored as the plain integer type
        else:
            raise InvalidArgumentError(
                f"tensor {name!r}: values of dtype {array.dtype} do not match "
                f"{tf_dtype.name}; convert them first",
                tensor=name,
            )
    if not array.flags.c_contiguous:
        array = np.array(array, order="C")  # (np.ascontiguousarray would make 0-d arrays 1-d)
    return array, tf_dtype


class BundleWriter:
    """Writes one V2 checkpoint at ``prefix``, tensor by tensor.

    Use as a context manager, or call :meth:`finish` (and :meth:`abort` on failure)::

        with BundleWriter("/tmp/ckpt/model") as writer:
            writer.add("w", np.ones((2, 3), np.float32))
    """

    def __init__(
        self, prefix: str | os.PathLike[str], *, big_endian: bool = False, durable: bool = False
    ) -> None:
        """``big_endian=True`` writes a big-endian bundle, as TensorFlow does on s390x.

        ``durable=True`` also fsyncs the files and the directory before returning from
        :meth:`finish`, so the checkpoint survives a power loss (TensorFlow does not).
        """
        self.prefix = os.fspath(prefix)
        self.big_endian = big_endian
        self.durable = durable
        directory = os.path.dirname(self.prefix)
        if directory:
            os.makedirs(directory, exist_ok=True)
        tag = secrets.token_hex(8)
        self._data_path = data_filename(self.prefix, 0, 1)
        self._index_path = index_filename(self.prefix)
        self._data_temp = f"{self._data_path}.tempstate{tag}"
        self._index_temp = f"{self._index_path}.tempstate{tag}"
        self._raw = io.FileIO(self._data_temp, "wb")
        self._out = io.BufferedWriter(self._raw, buffer_size=_WRITE_BUFFER)
        self._size = 0
        # key -> serialized BundleEntryProto, or the proto of a sliced tensor's full entry
        self._entries: dict[bytes, bytes | Any] = {}
        self._native_order = big_endian == (sys.byteorder == "big")
        # dtypes add() writes as they are: native storage dtypes (all sizes when the bundle's
        # byte order is the machine's, else single bytes only)
        self._native = {
            np_dtype: tf_dtype.as_datatype_enum
            for np_dtype, tf_dtype in _native_dtypes().items()
            if self._native_order or np_dtype.itemsize == 1
        }
        self._done = False

    def add(self, name: str, value: Any, *, dtype: Any = None) -> None:
        """Appends tensor ``name``; ``dtype`` optionally forces its TensorFlow dtype.

        A :class:`StringPieces` value is a scalar string written piece by piece.
        """
        key = self._new_key(name)
        if dtype is None and type(value) is np.ndarray and value.flags.c_contiguous:
            # Fast path: a contiguous array whose dtype is its own storage, no conversion.
            enum = self._native.get(value.dtype)
            if enum is not None:
                size = value.nbytes
                offset = self._size
                if size < _PARALLEL_CRC:
                    crc = checksum.crc32c(value)
                    if size:
                        self._out.write(value)
                else:
                    crc = self._write_buffer(value, size)
                self._size = offset + size
                self._entries[key] = entry_bytes(enum, value.shape, offset, size, crc)
                return
        if type(value) is StringPieces:
            if dtype is not None and dtype != "string":
                raise InvalidArgumentError(
                    f"tensor {name!r}: StringPieces are a string tensor", tensor=name
                )
            self._entries[key] = self._write_pieces(value)
            return
        array, tf_dtype = to_array(value, name, dtype)
        self._entries[key] = self._write(name, array, tf_dtype)

    def add_many(self, tensors: Iterable[tuple[str, Any]]) -> None:
        """:meth:`add` for each ``(name, value)``, in order, and much faster for many small
        arrays: those are checksummed and written in batches, and their entries serialized
        together.  The arrays must not change until this returns (their memory is written
        from directly)."""
        native = self._native
        entries = self._entries
        batch: list[np.ndarray] = []
        batch_bytes = 0
        done = _BatchedEntries()
        writing = False

        def write_batch() -> None:
            nonlocal batch, batch_bytes, writing
            writing = True
            self._write_batch(batch, done)
            writing = False
            batch, batch_bytes = [], 0

        if not _HAS_WRITEV:
            native = {}
        add_key, add_enum, add_shape = done.keys.append, done.enums.append, done.shapes.append
        try:
            for name, value in tensors:
                if (
                    type(value) is np.ndarray
                    and (enum := native.get(value.dtype)) is not None
                    and value.flags.c_contiguous
                    and (nbytes := value.nbytes) < _BATCH_BYTES
                ):
                    key = self._new_key(name)
                    entries[key] = b""  # reserved until the entries are serialized below
                    add_key(key)
                    add_enum(enum)
                    add_shape(value.shape)
                    batch.append(value)
                    batch_bytes += nbytes
                    if len(batch) >= _BATCH_COUNT or batch_bytes >= _BATCH_BYTES:
                        write_batch()
                else:
                    if batch:
                        write_batch()
                    self.add(name, value)
            if batch:
                write_batch()
        except BaseException:
            # As with add() one by one, what came before a bad name or value is added;
            # only a batch whose write failed is dropped (the writer should be aborted).
            if batch and not writing:
                write_batch()
            for key in done.keys[len(done.crcs) :]:
                del entries[key]
            del done.keys[len(done.crcs) :]
            raise
        finally:
            done.serialize_into(entries)

    def _write_batch(self, arrays: list[np.ndarray], done: _BatchedEntries) -> None:
        # The checksums run in a pool thread while this one writes: both stream the arrays
        # from memory and release the GIL.
        crcs_future = shared_pool().submit(lambda: list(map(checksum.crc32c, arrays)))
        sizes = [array.nbytes for array in arrays]
        total = sum(sizes)
        self._out.flush()
        try:
            _write_all(self._raw, arrays, total)
        finally:
            crcs = crcs_future.result()
        done.offsets.extend(itertools.accumulate(sizes[:-1], initial=self._size))
        done.sizes.extend(sizes)
        done.crcs.extend(crcs)
        self._size += total

    def add_slice(
        self,
        name: str,
        full_shape: Sequence[int],
        tensor_slice: TensorSlice | str | Sequence[tuple[int, int] | None],
        value: Any,
        *,
        dtype: Any = None,
    ) -> None:
        """Appends one slice of a partitioned tensor ``name`` of shape ``full_shape``.

        ``tensor_slice`` is a TensorSlice, TensorFlow's text form (``'0,5:-'``) or
        ``(start, length)`` pairs with ``None`` for a full dimension.  A slice covering the
        whole tensor is stored as an ordinary tensor, as TensorFlow does.
        """
        self._check_open()
        self._check_name(name)
        try:
            if isinstance(tensor_slice, str):
                tensor_slice = TensorSlice.parse(tensor_slice)
            elif not isinstance(tensor_slice, TensorSlice):
                tensor_slice = TensorSlice.from_extents(tensor_slice)
            full_shape = tuple(int(d) for d in full_shape)
            slice_shape = tensor_slice.shape_in(full_shape)
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"tensor {name!r}: {exc}", tensor=name) from None
        array, tf_dtype = to_array(value, name, dtype)
        if array.shape != slice_shape:
            raise InvalidArgumentError(
                f"tensor {name!r}: slice {tensor_slice} of {list(full_shape)} has shape "
                f"{list(slice_shape)} but the value has shape {list(array.shape)}",
                tensor=name,
            )
        if tensor_slice.covers(full_shape):
            self.add(name, array, dtype=tf_dtype)
            return
        key = name.encode("utf-8", "surrogateescape")
        full = self._entries.get(key)
        if isinstance(full, bytes):  # whole tensors' entries are stored serialized
            raise InvalidArgumentError(f"tensor {name!r} was already added whole", tensor=name)
        if full is not None and (
            full.dtype != tf_dtype.as_datatype_enum
            or tuple(d.size for d in full.shape.dim) != full_shape
        ):
            raise InvalidArgumentError(
                f"tensor {name!r}: slice has dtype {tf_dtype.name} and full shape "
                f"{list(full_shape)}, earlier slices disagree",
                tensor=name,
            )
        slice_key = encode_slice_key(name, tensor_slice)
        if slice_key in self._entries:
            raise InvalidArgumentError(
                f"tensor {name!r}: slice {tensor_slice} added twice", tensor=name
            )
        # Validated: only now write the data and record the entries.
        slice_entry = self._write(name, array, tf_dtype)
        if full is None:
            full = tensor_bundle_pb2.BundleEntryProto()
            full.dtype = tf_dtype.as_datatype_enum
            _set_shape(full, full_shape)
            self._entries[key] = full
        tensor_slice.to_proto(full.slices.add())
        self._entries[slice_key] = slice_entry

    def _check_open(self) -> None:
        if self._done:
            raise InvalidArgumentError("the writer is finished", path=self.prefix)

    def _check_name(self, name: str) -> None:
        if not isinstance(name, str) or name == "":
            raise InvalidArgumentError(
                f"tensor names are non-empty strings, found {name!r}", path=self.prefix
            )

    def _new_key(self, name: str) -> bytes:
        if self._done:
            self._check_open()
        if type(name) is not str or not name:
            self._check_name(name)
        key = name.encode("utf-8", "surrogateescape")
        if key in self._entries:
            raise InvalidArgumentError(
                f"tensor {name!r} added twice", path=self.prefix, tensor=name
            )
        return key

    def _write(self, name: str, array: np.ndarray, tf_dtype: dtypes.DType) -> bytes:
        """Writes a converted array's data; returns its serialized entry."""
        if tf_dtype.name == "string":
            return self._write_strings(name, array)
        unit = _swap_unit(array.dtype)
        if unit > 1 and not self._native_order:
            # byte_swap_tensor.cc: every element swapped, complex numbers by component.
            flat = array.reshape(-1)
            swapped = flat.view(f"u{unit}").byteswap().view(flat.dtype).reshape(array.shape)
            return self._write_numeric(swapped, tf_dtype)
        return self._write_numeric(array, tf_dtype)

    def _write_numeric(self, array: np.ndarray, tf_dtype: dtypes.DType) -> bytes:
        """Writes a C-contiguous array's memory as it is (no copy)."""
        offset = self._size
        size = array.nbytes
        crc = self._write_buffer(array, size)
        self._size = offset + size
        return entry_bytes(tf_dtype.as_datatype_enum, array.shape, offset, size, crc)

    def _write_strings(self, name: str, array: np.ndarray) -> bytes:
        flat = array.reshape(-1).tolist()
        try:
            pieces, crc = encode_string_chunks(flat, self.big_endian)
        except TypeError:  # str elements (encoded as UTF-8) or values to reject by name
            pieces, crc = encode_strings([_as_bytes(v, name) for v in flat], self.big_endian)
        offset = self._size
        write = self._out.write
        for piece in pieces:
            write(piece)
            self._size += len(piece)
        return entry_bytes(_STRING_ENUM, array.shape, offset, self._size - offset, crc)

    def _write_pieces(self, value: StringPieces) -> bytes:
        offset = self._size
        sizes = [_nbytes(piece) for piece in value.pieces]
        total = sum(sizes)
        head, crc = encode_string_head(np.array([total], np.uint64), self.big_endian)
        for piece in head:
            self._out.write(piece)
            self._size += len(piece)
        for piece, size in zip(value.pieces, sizes):
            crc = self._write_buffer(piece, size, crc)
            self._size += size
        return entry_bytes(_STRING_ENUM, (), offset, self._size - offset, crc)

    def _write_buffer(self, data: Any, size: int, crc: int = 0) -> int:
        """Writes a contiguous buffer of ``size`` bytes; returns ``crc`` extended over it."""
        if size < _PARALLEL_CRC:
            if size:
                self._out.write(data)
            return checksum.crc32c(data, crc)
        result: list[int] = []
        worker = threading.Thread(
            target=lambda: result.append(checksum.crc32c(data, crc)), name="tfckpt-crc32c"
        )
        worker.start()
        try:
            self._out.write(data)
        finally:
            worker.join()
        if not result:  # pragma: no cover - crc32c failed in the thread; raise it here
            return checksum.crc32c(data, crc)
        return result[0]

    def finish(self) -> str:
        """Completes the checkpoint and moves it into place; returns the prefix.

        The index is written completely (under a temporary name) before anything is
        renamed, so the window in which an older checkpoint at the same prefix is replaced
        is two renames long; the index, renamed last, is the commit point.
        """
        self._check_open()
        self._done = True
        try:
            self._out.flush()
            if self.durable:
                os.fsync(self._raw.fileno())
            self._out.close()
            with open(self._index_temp, "wb") as f:
                table = TableWriter(f)
                table.add(b"", _header_bytes(self.big_endian))
                entries = self._entries
                for key in sorted(entries):
                    entry = entries[key]
                    if not isinstance(entry, bytes):
                        entry = entry.SerializeToString(deterministic=True)
                    table.add(key, entry)
                table.finish()
                f.flush()
                if self.durable:
                    os.fsync(f.fileno())
            os.replace(self._data_temp, self._data_path)
            os.replace(self._index_temp, self._index_path)
            if self.durable:
                _fsync_directory(os.path.dirname(self.prefix) or ".")
        except BaseException:
            self._cleanup()
            raise
        return self.prefix

    def abort(self) -> None:
        """Discards everything written; no file is left under the final names."""
        if not self._done:
            self._done = True
            self._cleanup()

    def _cleanup(self) -> None:
        try:
            self._out.close()
        except Exception:
            pass
        for path in (self._data_temp, self._index_temp):
            try:
                os.remove(path)
            except FileNotFoundError:
                pass

    def __enter__(self) -> BundleWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            if not self._done:
                self.finish()
        else:
            self.abort()


def _set_shape(entry: Any, shape: Iterable[int]) -> None:
    entry.shape.SetInParent()  # a 0-d tensor still has an (empty) shape message
    for size in shape:
        entry.shape.dim.add().size = int(size)


class StringPieces:
    """A scalar string tensor given as buffers whose concatenation is its value.

    :meth:`BundleWriter.add` writes the buffers one after the other without joining them;
    NumpyState passes an array's ``.npy`` header and the array's own memory this way.
    Pieces are ``bytes`` or C-contiguous NumPy arrays, which must not change until added.
    """

    __slots__ = ("pieces",)

    def __init__(self, pieces: Iterable[Any]) -> None:
        self.pieces = tuple(pieces)


def _nbytes(piece: Any) -> int:
    if isinstance(piece, np.ndarray):
        if not piece.flags.c_contiguous:
            raise InvalidArgumentError("StringPieces arrays must be C-contiguous")
        return int(piece.nbytes)
    return memoryview(piece).nbytes


def _native_dtypes() -> dict[np.dtype[Any], dtypes.DType]:
    """NumPy dtype -> TensorFlow dtype for the dtypes stored as they are (not quantized).

    ml_dtypes' types (bfloat16, float8_*, int4, ...) are included once ml_dtypes is
    imported (arrays of them import it); this never imports it (``import tfckpt`` does not).
    """
    return _native_dtype_table("ml_dtypes" in sys.modules)


@functools.cache
def _native_dtype_table(with_ml_dtypes: bool) -> dict[np.dtype[Any], dtypes.DType]:
    table: dict[np.dtype[Any], dtypes.DType] = {}
    for enum in range(1, 64):
        tf_dtype = dtypes.from_enum(enum)
        if tf_dtype is None or not tf_dtype.is_numeric_storage or tf_dtype.is_quantized:
            continue
        if not with_ml_dtypes:
            try:
                np.dtype(tf_dtype.name)
            except TypeError:
                continue  # an ml_dtypes type
        storage = tf_dtype.storage_dtype
        if dtypes.from_numpy(storage) is tf_dtype:
            table[storage] = tf_dtype
    return table


def entry_bytes(enum: int, shape: tuple[int, ...], offset: int, size: int, crc: int) -> bytes:
    """A serialized BundleEntryProto without slices, as protobuf serializes it.

    ``crc`` is the unmasked CRC32C of the data.  Fields in number order, proto3 scalars
    omitted when zero (tensor_bundle.proto: dtype=1, shape=2, shard_id=3 (always 0 here),
    offset=4, size=5, crc32c=6 fixed32); the shape message is present even when empty.
    """
    out = _entry_head(enum, shape)
    if offset:
        out += b"\x20" + (bytes((offset,)) if offset < 0x80 else encode_varint(offset))
    if size:
        out += b"\x28" + (bytes((size,)) if size < 0x80 else encode_varint(size))
    masked = checksum.mask(crc)
    if masked:
        out += b"\x35" + masked.to_bytes(4, "little")
    return out


class _BatchedEntries:
    """The entries of the arrays add_many() wrote, serialized together at the end."""

    def __init__(self) -> None:
        self.keys: list[bytes] = []
        self.enums: list[int] = []
        self.shapes: list[tuple[int, ...]] = []
        self.offsets: list[int] = []  # these three only for the arrays written so far
        self.sizes: list[int] = []
        self.crcs: list[int] = []

    def serialize_into(self, entries: dict[bytes, Any]) -> None:
        if not self.crcs:
            return
        tails, starts, stops = _entry_tails(
            np.array(self.offsets, np.int64),
            np.array(self.sizes, np.int64),
            np.array(self.crcs, np.int64),
        )
        head = _entry_head
        for key, enum, shape, start, stop in zip(
            self.keys, self.enums, self.shapes, starts, stops
        ):
            entries[key] = head(enum, shape) + tails[start:stop]


def _write_all(raw: io.FileIO, arrays: list[np.ndarray], total: int) -> None:
    """Writes the arrays' memory one after the other with gathered writes."""
    fd = raw.fileno()
    written = os.writev(fd, arrays)
    if written == total:
        return
    # A short write (rare for files: a signal, a full disk): the rest one by one, where
    # a persisting error is raised.
    for array in arrays:
        data = memoryview(array.reshape(-1).view(np.uint8))
        if written >= len(data):
            written -= len(data)
            continue
        data = data[written:]
        written = 0
        while len(data):
            done = raw.write(data)
            if not done:
                raise OSError(f"could not write to {raw.name!r}")
            data = data[done:]


def _entry_tails(
    offsets: np.ndarray, sizes: np.ndarray, crcs: np.ndarray
) -> tuple[bytes, list[int], list[int]]:
    """The fields after the shape (offset=4, size=5, crc32c=6) of many entries, as
    :func:`entry_bytes` serializes them: entry i's are ``blob[starts[i]:stops[i]]``."""
    n = len(offsets)
    width = 1 + 10 + 1 + 10 + 1 + 4
    rows = np.zeros((n, width), np.uint8)
    used = np.zeros(n, np.int64)  # bytes of each row filled so far
    for tag, values in ((0x20, offsets), (0x28, sizes)):
        present = np.flatnonzero(values)  # proto3: zero scalars are omitted
        if not len(present):
            continue
        at = used[present]
        rows[present, at] = tag
        remaining = values[present].astype(np.uint64)
        at = at + 1
        going = np.arange(len(present))
        while len(going):
            low = (remaining[going] & np.uint64(0x7F)).astype(np.uint8)
            remaining[going] >>= np.uint64(7)
            more = remaining[going] != 0
            rows[present[going], at[going]] = low | (more.astype(np.uint8) << 7)
            at[going] += 1
            going = going[more]
        used[present] = at
    masked = checksum.mask_array(crcs)
    present = np.flatnonzero(masked)
    at = used[present]
    rows[present, at] = 0x35
    crc_bytes = masked[present].astype("<u4").view(np.uint8).reshape(-1, 4)
    for k in range(4):
        rows[present, at + 1 + k] = crc_bytes[:, k]
    used[present] += 5
    starts = np.arange(n) * width
    return rows.tobytes(), starts.tolist(), (starts + used).tolist()


@functools.lru_cache(maxsize=16384)
def _entry_head(enum: int, shape: tuple[int, ...]) -> bytes:
    """dtype and shape fields (TensorShapeProto: dim=2 {size=1}, 0 sizes omitted)."""
    dims = b"".join(
        b"\x12\x00" if d == 0 else _length_delimited(b"\x12", b"\x08" + encode_varint(d))
        for d in shape
    )
    dtype_field = b"\x08" + encode_varint(enum) if enum else b""
    return dtype_field + _length_delimited(b"\x12", dims)


def _length_delimited(tag: bytes, body: bytes) -> bytes:
    return tag + encode_varint(len(body)) + body


def _fsync_directory(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse
        pass
    finally:
        os.close(fd)


def _swap_unit(dtype: np.dtype[Any]) -> int:
    return dtype.itemsize // 2 if dtype.kind == "c" else dtype.itemsize


def _header_bytes(big_endian: bool = False) -> bytes:
    header = tensor_bundle_pb2.BundleHeaderProto()
    header.num_shards = 1
    header.endianness = (
        tensor_bundle_pb2.BundleHeaderProto.BIG
        if big_endian
        else tensor_bundle_pb2.BundleHeaderProto.LITTLE
    )
    header.version.producer = 1  # kTensorBundleVersion; min_consumer 0
    return header.SerializeToString()


def save_tensors(
    prefix: str | os.PathLike[str], tensors: Mapping[str, Any], *, durable: bool = False
) -> str:
    """Writes ``{name: value}`` as a V2 checkpoint at ``prefix``; returns the prefix.

    Tensors are stored in the mapping's order, so the files equal what ``tf.raw_ops.SaveV2``
    writes for the same names in the same order.  ``durable=True`` fsyncs before returning.
    Arrays are written from their own memory (:meth:`BundleWriter.add_many`): they must not
    change while this runs.
    """
    with BundleWriter(prefix, durable=durable) as writer:
        writer.add_many(tensors.items())
    return os.fspath(prefix)
