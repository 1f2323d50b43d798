"""String tensors in a bundle data file: encoding and decoding.

The layout (varint lengths, the lengths' checksum, the bytes) and how the entry's checksum
covers it are described in :mod:`tfckpt.bundle`.  Encoding and decoding are vectorised with
NumPy; no per-element Python arithmetic.
"""

from __future__ import annotations

import array
import itertools
import struct
from typing import Any

import numpy as np

from tfckpt import checksum

_UINT32_MAX = 0xFFFFFFFF

# What the decoders read (through np.frombuffer): a bytes-like object or a uint8 array.
Encoded = bytes | bytearray | memoryview | np.ndarray


class StringDecodeError(ValueError):
    """The bytes are not a valid string tensor encoding (message says why)."""


def encode_varints(lengths: np.ndarray) -> bytes:
    """Varint64 encoding of an array of non-negative integers, concatenated."""
    if lengths.size == 0:
        return b""
    if int(lengths.max()) < 0x80:
        return lengths.astype(np.uint8, copy=False).tobytes()
    values = lengths.astype(np.uint64, copy=False)
    nbytes = np.ones(values.shape, np.int64)
    for k in range(1, 10):
        nbytes += values >= np.uint64(1 << (7 * k))
    starts = np.zeros(values.shape, np.int64)
    np.cumsum(nbytes[:-1], out=starts[1:])
    out = np.empty(int(nbytes.sum()), np.uint8)
    for k in range(int(nbytes.max())):
        has = nbytes > k
        byte = (values[has] >> np.uint64(7 * k)) & np.uint64(0x7F)
        more = (nbytes[has] > k + 1).astype(np.uint64) << np.uint64(7)
        out[starts[has] + k] = (byte | more).astype(np.uint8)
    return out.tobytes()


def lengths_checksum(lengths: np.ndarray, big_endian: bool = False) -> int:
    """CRC32C of the lengths as TensorFlow computes it (uint32 each, uint64 if larger)."""
    order = ">" if big_endian else "<"
    if lengths.size == 0 or int(lengths.max()) <= _UINT32_MAX:
        return checksum.crc32c(lengths.astype(order + "u4"))
    return checksum.crc32c(_mixed_width_lengths(lengths.astype(np.uint64), order))


def _mixed_width_lengths(values: np.ndarray, order: str) -> np.ndarray:
    """Each length as a uint32, or a uint64 when larger, concatenated in byte order ``order``.

    (tensor_bundle.cc WriteStringTensor: ``if (len > uint32 max) crc over uint64 else
    crc over uint32``); vectorised: wide values take 8 bytes, narrow ones 4.
    """
    wide = values > np.uint64(_UINT32_MAX)
    widths = np.where(wide, 8, 4)
    starts = np.zeros(values.size, np.int64)
    np.cumsum(widths[:-1], out=starts[1:])
    out = np.zeros(int(widths.sum()), np.uint8)
    narrow_bytes = values[~wide].astype(order + "u4").view(np.uint8).reshape(-1, 4)
    out[starts[~wide, None] + np.arange(4)] = narrow_bytes
    wide_bytes = values[wide].astype(order + "u8").view(np.uint8).reshape(-1, 8)
    out[starts[wide, None] + np.arange(8)] = wide_bytes
    return out


def encode_strings(flat: list[bytes], big_endian: bool = False) -> tuple[list[bytes], int]:
    """Encodes a flat list of byte strings; returns the pieces to write and the entry CRC.

    The pieces are the varint lengths, the 4 stored checksum bytes and the joined strings.
    """
    return encode_joined(string_lengths(flat), b"".join(flat), big_endian)


def string_lengths(flat: list[Any]) -> np.ndarray:
    """``len()`` of every element: uint8 when all are below 256, else uint64.

    The common case of short strings goes through ``bytearray`` (one C loop, a third of the
    cost of ``np.fromiter``); a length of 256 or more makes it raise ValueError and the
    lengths are taken again as uint64.  Raises TypeError for an element without ``len()``.
    """
    try:
        return np.frombuffer(bytearray(map(len, flat)), np.uint8)
    except ValueError:
        return np.frombuffer(array.array("Q", map(len, flat)), np.uint64)


def encode_joined(
    lengths: np.ndarray, payload: bytes, big_endian: bool = False
) -> tuple[list[bytes], int]:
    """Like :func:`encode_strings`, for strings already joined into ``payload``."""
    head, crc = encode_string_head(lengths, big_endian)
    return [*head, payload], checksum.crc32c(payload, crc)


def encode_string_head(lengths: np.ndarray, big_endian: bool) -> tuple[list[bytes], int]:
    """The pieces before the strings (varint lengths, stored lengths' checksum) and the
    entry CRC over them, to be extended over the strings' bytes."""
    crc = lengths_checksum(lengths, big_endian)
    stored = checksum.mask(crc).to_bytes(4, "big" if big_endian else "little")
    return [encode_varints(lengths), stored], checksum.crc32c(stored, crc)


# Strings are measured and joined this many at a time: a chunk's string objects are still in
# the CPU cache when the join reads them after len() did, and its few hundred KiB of joined
# bytes when the checksum reads them; one join of a million small strings is 3x slower
# (fresh pages), and measuring all of them before joining any reads every object twice.
_JOIN_CHUNK = 4096


def encode_string_chunks(flat: list[Any], big_endian: bool = False) -> tuple[list[bytes], int]:
    """:func:`encode_strings` for bytes-like elements, the strings joined in chunks.

    Returns the pieces to write (varint lengths, stored checksum, then the strings joined a
    chunk at a time; their concatenation is the encoding) and the entry CRC.  Raises
    TypeError when an element is not bytes-like with 1-byte items (``str``, ``int``, a
    memoryview of wider items).

    One pass over the elements, a chunk at a time: the chunk's lengths (bytes while every
    length is below 256, uint64 from the first that is not), its join and the CRC of the
    joined bytes; the CRC of the lengths and stored checksum that precede them is combined
    in front at the end (:func:`tfckpt.checksum.crc32c_combine`).
    """
    count = len(flat)
    narrow = bytearray()
    wide: array.array[int] | None = None
    chunks: list[bytes] = []
    body_crc = 0
    for start in range(0, count, _JOIN_CHUNK):
        part = flat[start : start + _JOIN_CHUNK]
        if wide is None:
            try:
                narrow.extend(map(len, part))
            except ValueError:  # a length of 256 or more: uint64 from this chunk on
                del narrow[start:]  # (CPython's extend adds nothing when it fails)
                wide = array.array("Q")
        if wide is not None:
            wide += array.array("Q", map(len, part))
        chunk = b"".join(part)
        body_crc = checksum.crc32c(chunk, body_crc)
        chunks.append(chunk)
    lengths = np.frombuffer(narrow, np.uint8)
    if wide is not None:
        lengths = np.concatenate([lengths.astype(np.uint64), np.frombuffer(wide, np.uint64)])
    body_size = sum(map(len, chunks))
    if body_size != (int(lengths.sum(dtype=np.uint64)) if count else 0):
        raise TypeError("an element's len() is not its size in bytes")
    pieces, crc = encode_string_head(lengths, big_endian)
    return pieces + chunks, checksum.crc32c_combine(crc, body_crc, body_size)


def decode_varints(buf: np.ndarray, count: int) -> tuple[np.ndarray, int]:
    """Decodes ``count`` varint64s from the start of a uint8 array.

    Returns the values and the number of bytes they took.
    """
    if count == 0:
        return np.zeros(0, np.uint64), 0
    head = buf[:count]
    if head.size == count and bool((head < 0x80).all()):  # every length fits in one byte
        return head.astype(np.uint64), count
    window = buf[: 10 * count]
    ends = np.flatnonzero(window < 0x80)[:count]
    if ends.size < count:
        raise StringDecodeError(f"expected {count} varint lengths, found {ends.size}")
    used = int(ends[-1]) + 1
    starts = np.empty(count, np.int64)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    widths = ends - starts + 1
    if int(widths.max()) > 10:
        raise StringDecodeError("varint longer than 10 bytes")
    values = np.zeros(count, np.uint64)
    for k in range(int(widths.max())):
        has = widths > k
        part = window[starts[has] + k].astype(np.uint64) & np.uint64(0x7F)
        values[has] |= part << np.uint64(7 * k)
    return values, used


def decode_strings(data: Encoded, count: int, big_endian: bool = False) -> tuple[list[bytes], int]:
    """Decodes a string tensor's bytes; returns the strings and the entry CRC computed.

    Raises StringDecodeError when the layout does not hold together or the lengths'
    checksum does not match (the caller checks the entry CRC).
    """
    body, lengths, crc = _decode_layout(data, count, big_endian)
    return split_strings(body, lengths), crc


def decode_string_view(data: Encoded, big_endian: bool = False) -> tuple[memoryview, int]:
    """Like :func:`decode_strings` for one string, returned as a view of ``data`` (no copy)."""
    body, _, crc = _decode_layout(data, 1, big_endian)
    return body.data, crc  # (ndarray.data: the memoryview of its buffer)


def _decode_layout(
    data: Encoded, count: int, big_endian: bool
) -> tuple[np.ndarray, np.ndarray, int]:
    """Checks the layout; returns the string bytes (a view), the lengths and the entry CRC."""
    raw = np.frombuffer(data, np.uint8)
    lengths, used = decode_varints(raw, count)
    crc = lengths_checksum(lengths, big_endian)
    if used + 4 > raw.size:
        raise StringDecodeError("data ends before the lengths' checksum")
    stored_bytes = bytes(raw[used : used + 4])
    stored = checksum.unmask(int.from_bytes(stored_bytes, "big" if big_endian else "little"))
    if stored != crc:
        raise StringDecodeError(
            f"the string lengths' checksum does not match: stored {stored:#010x}, "
            f"computed {crc:#010x}"
        )
    crc = checksum.crc32c(stored_bytes, crc)
    body_start = used + 4
    available = raw.size - body_start
    if count and int(lengths.max()) > available:
        raise StringDecodeError(
            f"a string length of {int(lengths.max())} exceeds the {available} bytes of string "
            "data in the entry"
        )
    # Each length is bounded by the entry size now, so a float sum detects uint64 wrap-around.
    if count and float(lengths.sum(dtype=np.float64)) > available + 0.5:
        raise StringDecodeError("the string lengths add up to more than the entry holds")
    total = int(lengths.sum()) if count else 0
    if body_start + total != raw.size:
        raise StringDecodeError(
            f"the string lengths add up to {total} bytes but the entry holds "
            f"{raw.size - body_start} bytes of string data"
        )
    body = raw[body_start:]
    crc = checksum.crc32c(body, crc)
    return body, lengths, crc


# split_strings makes the bytes objects with struct: a format of "<n>s" codes, one per
# string, is unpacked in C.  Formats are built for this many strings at a time, from a
# table of codes for every length up to the longest (when that is short enough).
_SPLIT_CHUNK = 1 << 16
_MAX_TABLE_LENGTH = 1 << 16


def split_strings(body: Any, lengths: np.ndarray) -> list[bytes]:
    """Cuts ``body`` (a contiguous buffer) into consecutive strings of ``lengths`` bytes
    (which add up to at most its size)."""
    count = len(lengths)
    if count == 0:
        return []
    longest = int(lengths.max())
    if longest > _MAX_TABLE_LENGTH or count < 64:
        data = bytes(body)
        offsets = np.zeros(count + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return [data[a:b] for a, b in itertools.pairwise(offsets.tolist())]
    codes = [b"%ds" % n for n in range(longest + 1)]
    width = len(codes[-1])
    table = np.frombuffer(b"".join(c.ljust(width, b"\0") for c in codes), np.uint8)
    table = table.reshape(-1, width)
    code_length = np.array([len(c) for c in codes], np.int64)
    columns = np.arange(width)
    strings: list[bytes] = []
    position = 0
    for start in range(0, count, _SPLIT_CHUNK):
        part = lengths[start : start + _SPLIT_CHUNK].astype(np.intp)
        chosen = table[part]
        fmt = chosen[columns < code_length[part][:, None]].tobytes().decode("ascii")
        strings.extend(struct.Struct(fmt).unpack_from(body, position))
        position += int(part.sum())
    return strings
