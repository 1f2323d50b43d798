"""On-disk framing of a table file: varints, block handles, block trailers, the footer.

The layout is described in :mod:`tfckpt.table`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from tfckpt import checksum
from tfckpt.errors import DataLossError

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER_SIZE = 5
MAX_BLOCK_HANDLE_SIZE = 20  # two varint64s of at most 10 bytes each

NO_COMPRESSION = 0
SNAPPY_COMPRESSION = 1

# table_options.h: TensorFlow's defaults, which its bundle writer does not change.
DEFAULT_BLOCK_SIZE = 262144
DEFAULT_RESTART_INTERVAL = 16

_U32 = struct.Struct("<I")


def encode_varint(value: int) -> bytes:
    """LEB128 varint, as core/lib/core/coding.cc ``PutVarint64`` writes it."""
    # Unrolled up to four bytes (values below 2**28, e.g. every offset in a data file of
    # 256 MiB): the writer encodes a few per tensor.
    if value < 0x80:
        return bytes((value,))
    if value < 0x4000:
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    if value < 0x200000:
        return bytes(((value & 0x7F) | 0x80, ((value >> 7) & 0x7F) | 0x80, value >> 14))
    if value < 0x10000000:
        return bytes(
            (
                (value & 0x7F) | 0x80,
                ((value >> 7) & 0x7F) | 0x80,
                ((value >> 14) & 0x7F) | 0x80,
                value >> 21,
            )
        )
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# The smallest value that takes k + 2 bytes as a varint, k = 0..8 (2**7 ... 2**63).
_VARINT_LIMITS = np.array([1 << (7 * k) for k in range(1, 10)], np.uint64)


def varint_lengths(values: np.ndarray) -> np.ndarray:
    """How many bytes each value's varint64 takes (``values`` non-negative or uint64)."""
    return np.searchsorted(_VARINT_LIMITS, values.astype(np.uint64), side="right") + 1


def encode_varint_array(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`encode_varint` of every value, vectorised: returns the varints concatenated
    (uint8) and how many bytes each takes (int64).  One pass per varint byte, none per value.
    """
    flat = values.reshape(-1).astype(np.uint64, copy=False)
    if flat.size == 0:
        return np.zeros(0, np.uint8), np.zeros(0, np.int64)
    if int(flat.max()) < 0x80:  # one byte each: the common case
        return flat.astype(np.uint8), np.ones(flat.size, np.int64)
    widths = varint_lengths(flat)
    starts = np.zeros(flat.size, np.int64)
    np.cumsum(widths[:-1], out=starts[1:])
    out = np.empty(int(widths.sum()), np.uint8)
    for k in range(int(widths.max())):
        has = np.flatnonzero(widths > k)
        low = (flat[has] >> np.uint64(7 * k)) & np.uint64(0x7F)
        more = (widths[has] > k + 1).astype(np.uint64) << np.uint64(7)
        out[starts[has] + k] = (low | more).astype(np.uint8)
    return out, widths


def decode_varint(
    buf: bytes | memoryview, pos: int, path: str | None = None, what: str = "varint"
) -> tuple[int, int]:
    """Decodes a varint64 at ``pos``; returns ``(value, next_pos)``.

    Errors carry ``path`` (the file) and name ``what`` was being decoded.
    """
    result = 0
    shift = 0
    end = len(buf)
    while True:
        if pos >= end:
            raise DataLossError(f"{what} runs past the end of the data", path=path)
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise DataLossError(f"{what} is longer than 10 bytes", path=path)


class BlockHandle(NamedTuple):
    """Where a block lives in the file: offset and size without the trailer."""

    offset: int
    size: int

    def encode(self) -> bytes:
        return encode_varint(self.offset) + encode_varint(self.size)

    @classmethod
    def decode(
        cls, buf: bytes | memoryview, pos: int, path: str | None = None, what: str = "block handle"
    ) -> tuple[BlockHandle, int]:
        offset, pos = decode_varint(buf, pos, path, f"offset of the {what}")
        size, pos = decode_varint(buf, pos, path, f"size of the {what}")
        return cls(offset, size), pos


@dataclass(frozen=True, slots=True)
class Footer:
    """The last 48 bytes of a table.

    A dataclass rather than a NamedTuple: its ``index`` field would shadow ``tuple.index``.
    """

    metaindex: BlockHandle
    index: BlockHandle

    def encode(self) -> bytes:
        handles = self.metaindex.encode() + self.index.encode()
        padding = bytes(2 * MAX_BLOCK_HANDLE_SIZE - len(handles))
        magic = _U32.pack(TABLE_MAGIC & 0xFFFFFFFF) + _U32.pack(TABLE_MAGIC >> 32)
        return handles + padding + magic

    @classmethod
    def decode(cls, buf: bytes, path: str | None = None) -> Footer:
        if len(buf) != FOOTER_SIZE:
            raise DataLossError(
                f"file too short to be a table: expected at least {FOOTER_SIZE} bytes "
                f"of footer, found {len(buf)}",
                path=path,
            )
        low, high = struct.unpack_from("<II", buf, FOOTER_SIZE - 8)
        magic = (high << 32) | low
        if magic != TABLE_MAGIC:
            raise DataLossError(
                f"not a table (bad magic number: expected {TABLE_MAGIC:#018x}, "
                f"found {magic:#018x})",
                path=path,
            )
        metaindex, pos = BlockHandle.decode(buf, 0, path, "metaindex handle in the footer")
        index, _ = BlockHandle.decode(buf, pos, path, "index handle in the footer")
        return cls(metaindex, index)


def block_trailer(contents: bytes | memoryview, compression: int) -> bytes:
    """The 5-byte trailer that follows a block on disk."""
    type_byte = bytes((compression,))
    crc = checksum.crc32c(type_byte, checksum.crc32c(contents))
    return type_byte + _U32.pack(checksum.mask(crc))


def check_block_trailer(
    contents: bytes | memoryview,
    trailer: bytes | memoryview,
    path: str | None = None,
    what: str = "block",
) -> int:
    """Verifies a block's trailer; returns its compression type.

    Errors carry ``path`` (the file) and name the block (``what``, e.g. ``"data block 3 at
    offset 4096"``).
    """
    if len(trailer) != BLOCK_TRAILER_SIZE:
        raise DataLossError(
            f"truncated trailer of {what}: expected {BLOCK_TRAILER_SIZE} bytes, found "
            f"{len(trailer)}",
            path=path,
        )
    compression = trailer[0]
    stored = checksum.unmask(_U32.unpack_from(trailer, 1)[0])
    actual = checksum.crc32c(trailer[:1], checksum.crc32c(contents))
    if stored != actual:
        raise DataLossError(
            f"block checksum mismatch in {what}: stored crc32c {stored:#010x}, "
            f"computed {actual:#010x}",
            path=path,
        )
    return compression
