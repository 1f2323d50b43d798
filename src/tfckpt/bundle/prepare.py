"""Values prepared for writing: each becomes its stored bytes in a write batch
(:mod:`tfckpt.bundle.write_batch`), converted to its stored array, byte-swapped, or
string-encoded (:mod:`tfckpt.bundle.strings`), with what its checksum still has to cover.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tfckpt import checksum, dtypes
from tfckpt.bundle.strings import encode_string_chunks, encode_string_head, encode_strings
from tfckpt.bundle.values import as_bytes, in_byte_order, to_array
from tfckpt.bundle.write_batch import StringPieces, WriteBatch
from tfckpt.errors import InvalidArgumentError

STRING_ENUM = dtypes.string.as_datatype_enum


def prepare_value(
    batch: WriteBatch, key: bytes, name: str, value: Any, dtype: Any, big_endian: bool
) -> None:
    """Adds ``value`` (as ``dtype``, if given) to ``batch`` under ``key``.

    Raises:
        InvalidArgumentError: the value cannot be stored (as ``dtype``), naming ``name``.

    Example::

        prepare_value(batch, b"w", "w", [1.0, 2.0], "float32", big_endian=False)
    """
    if type(value) is StringPieces:
        if dtype is not None and dtype != "string":
            raise InvalidArgumentError("StringPieces are a string tensor", tensor=name)
        prepare_string_pieces(batch, key, name, value, big_endian)
        return
    array, tf_dtype = to_array(value, name, dtype)
    prepare_array(batch, key, name, array, tf_dtype, big_endian)


def prepare_array(
    batch: WriteBatch,
    key: bytes,
    name: str,
    array: np.ndarray,
    tf_dtype: dtypes.DType,
    big_endian: bool,
) -> None:
    """Adds an array that :func:`~tfckpt.bundle.values.to_array` made (or a part of one)."""
    if tf_dtype.name == "string":
        pieces, crc = encode_string_array(name, array, big_endian)
        batch.add_buffers(key, STRING_ENUM, array.shape, pieces, sum(map(len, pieces)), crc)
        return
    array = in_byte_order(array, big_endian)
    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)
    batch.add_array(key, tf_dtype.as_datatype_enum, array)


def encode_string_array(name: str, array: np.ndarray, big_endian: bool) -> tuple[list[bytes], int]:
    """A string tensor's stored buffers and their CRC32C.

    Raises:
        InvalidArgumentError: an element is neither bytes nor str, naming ``name``.
    """
    flat = array.reshape(-1).tolist()
    try:
        return encode_string_chunks(flat, big_endian)
    except TypeError:  # str elements (encoded as UTF-8) or values to reject by name
        return encode_strings([as_bytes(v, name) for v in flat], big_endian)


def prepare_string_pieces(
    batch: WriteBatch, key: bytes, name: str, value: StringPieces, big_endian: bool
) -> None:
    """Adds a scalar string written piece by piece (its last piece, NumpyState's array
    memory, is checksummed beside the write)."""
    sizes = [piece_nbytes(piece, name) for piece in value.pieces]
    head, crc = encode_string_head(np.array([sum(sizes)], np.uint64), big_endian)
    *checked_here, last = value.pieces or (b"",)  # (crc covers the head already)
    for piece in checked_here:
        crc = checksum.crc32c(piece, crc)
    nbytes = sum(map(len, head)) + sum(sizes)
    pieces = [*head, *value.pieces]
    last_size = sizes[-1] if sizes else 0
    batch.add_buffers(key, STRING_ENUM, (), pieces, nbytes, crc, last, last_size)


def piece_nbytes(piece: Any, name: str) -> int:
    """The size of one piece of a :class:`StringPieces`.

    Raises:
        InvalidArgumentError: an array piece that is not C-contiguous.
    """
    if isinstance(piece, np.ndarray):
        if not piece.flags.c_contiguous:
            raise InvalidArgumentError("StringPieces arrays must be C-contiguous", tensor=name)
        return int(piece.nbytes)
    return memoryview(piece).nbytes
