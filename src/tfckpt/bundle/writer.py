"""Writing TensorBundle (V2) checkpoints, byte-identical to TensorFlow's ``SaveV2``.

Data is appended to the data file in the order tensors are added, with no padding; the
index lists the entries in key order (BundleWriter::Add / AddSlice / Finish in
tensorflow/core/util/tensor_bundle/tensor_bundle.cc).  Both files are written under
temporary names; on :meth:`BundleWriter.finish` the data file is renamed into place first
and the index last, so a checkpoint is visible under its final name only once complete.
"""

from __future__ import annotations

import io
import os
import secrets
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from tfckpt import checksum, dtypes
from tfckpt.bundle.naming import data_filename, index_filename
from tfckpt.bundle.strings import encode_joined, encode_strings
from tfckpt.errors import InvalidArgumentError
from tfckpt.proto import tensor_bundle_pb2
from tfckpt.table.writer import TableWriter
from tfckpt.tensor_slice import TensorSlice, encode_slice_key

_WRITE_BUFFER = 8 << 20  # TensorFlow buffers its data file writes in 8 MiB too


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
        self._entries: dict[bytes, Any] = {}
        self._done = False

    def add(self, name: str, value: Any, *, dtype: Any = None) -> None:
        """Appends tensor ``name``; ``dtype`` optionally forces its TensorFlow dtype."""
        key = self._new_key(name)
        array, tf_dtype = to_array(value, name, dtype)
        self._entries[key] = self._write(name, array, tf_dtype)

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
        if full is not None and not full.slices:
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
        self._check_open()
        self._check_name(name)
        key = name.encode("utf-8", "surrogateescape")
        if key in self._entries:
            raise InvalidArgumentError(
                f"tensor {name!r} added twice", path=self.prefix, tensor=name
            )
        return key

    def _write(self, name: str, array: np.ndarray, tf_dtype: dtypes.DType) -> Any:
        entry = tensor_bundle_pb2.BundleEntryProto()
        entry.dtype = tf_dtype.as_datatype_enum
        _set_shape(entry, array.shape)
        entry.offset = self._size
        if tf_dtype.name == "string":
            pieces, crc = _encode_string_array(array, name, self.big_endian)
            size = 0
            for piece in pieces:
                self._out.write(piece)
                size += len(piece)
        else:
            flat = array.reshape(-1)
            unit = _swap_unit(flat.dtype)
            if unit > 1 and self.big_endian != (sys.byteorder == "big"):
                # byte_swap_tensor.cc: every element swapped, complex numbers by component.
                flat = flat.view(f"u{unit}").byteswap().view(flat.dtype)
            data = flat.view(np.uint8)
            crc = checksum.crc32c(data)
            size = data.size
            if size:
                self._out.write(memoryview(data))
        entry.size = size
        entry.crc32c = checksum.mask(crc)
        self._size += size
        return entry

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
                for key in sorted(self._entries):
                    table.add(key, self._entries[key].SerializeToString(deterministic=True))
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


def _encode_string_array(array: np.ndarray, name: str, big_endian: bool) -> tuple[list[bytes], int]:
    flat = array.reshape(-1).tolist()
    try:
        # Fast path: every element is bytes (join rejects str and non-buffers).
        payload = b"".join(flat)
        lengths = np.fromiter(map(len, flat), dtype=np.uint64, count=len(flat))
        if int(lengths.sum()) == len(payload):  # no multi-byte-item memoryviews
            return encode_joined(lengths, payload, big_endian)
    except TypeError:
        pass
    return encode_strings([_as_bytes(v, name) for v in flat], big_endian)


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
    """
    with BundleWriter(prefix, durable=durable) as writer:
        for name, value in tensors.items():
            writer.add(name, value)
    return os.fspath(prefix)
