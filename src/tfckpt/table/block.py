"""Blocks: sorted key/value entries with prefix-compressed keys and restart points.

The entry and restart layout is described in :mod:`tfckpt.table`.
"""

from __future__ import annotations

import struct

from tfckpt.errors import DataLossError
from tfckpt.table.format import DEFAULT_RESTART_INTERVAL, encode_varint

_U32 = struct.Struct("<I")


def parse_block(
    block: bytes, path: str | None = None, what: str = "the block"
) -> tuple[list[bytes], list[bytes]]:
    """Decodes every entry of a block; returns ``(keys, values)`` in stored order.

    Errors carry ``path`` (the file) and name the block (``what``, e.g. ``"data block 3"``).
    """
    keys, starts, lengths = parse_block_positions(block, path, what)
    return keys, [block[s : s + n] for s, n in zip(starts, lengths)]


def parse_block_positions(
    block: bytes, path: str | None = None, what: str = "the block"
) -> tuple[list[bytes], list[int], list[int]]:
    """Decodes every entry of a block; returns keys, value offsets and value lengths."""
    size = len(block)
    if size < 4:
        raise DataLossError(
            f"{what} has {size} bytes, too short for a restart count (4 bytes)", path=path
        )
    num_restarts = _U32.unpack_from(block, size - 4)[0]
    limit = size - 4 - 4 * num_restarts
    if num_restarts == 0 or limit < 0:
        raise DataLossError(
            f"bad restart count {num_restarts} in {what} of {size} bytes", path=path
        )
    keys: list[bytes] = []
    starts: list[int] = []
    lengths: list[int] = []
    pos = 0
    key = b""
    try:
        while pos < limit:
            # Three varint32s; a single byte each in the common case.
            shared = block[pos]
            pos += 1
            if shared >= 0x80:
                shared, pos = _slow_varint(block, pos - 1, limit, path, what)
            unshared = block[pos]
            pos += 1
            if unshared >= 0x80:
                unshared, pos = _slow_varint(block, pos - 1, limit, path, what)
            value_len = block[pos]
            pos += 1
            if value_len >= 0x80:
                value_len, pos = _slow_varint(block, pos - 1, limit, path, what)
            value_start = pos + unshared
            value_end = value_start + value_len
            if shared > len(key) or value_end > limit:
                raise DataLossError(f"corrupt entry at offset {pos} of {what}", path=path)
            key = key[:shared] + block[pos:value_start]
            keys.append(key)
            starts.append(value_start)
            lengths.append(value_len)
            pos = value_end
    except IndexError:
        raise DataLossError(f"entry runs past the end of {what}", path=path) from None
    return keys, starts, lengths


def _slow_varint(buf: bytes, pos: int, limit: int, path: str | None, what: str) -> tuple[int, int]:
    result = 0
    for shift in range(0, 35, 7):
        if pos >= limit:
            break
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
    raise DataLossError(f"corrupt varint32 in an entry of {what}", path=path)


class BlockBuilder:
    """Accumulates sorted entries into one block, as TensorFlow's BlockBuilder does."""

    def __init__(self, restart_interval: int = DEFAULT_RESTART_INTERVAL) -> None:
        self._restart_interval = restart_interval
        self._buffer = bytearray()
        self._restarts = [0]
        self._counter = 0
        self._last_key = b""

    def add(self, key: bytes, value: bytes) -> None:
        """Appends an entry (keys in increasing order; the caller checks)."""
        buf = self._buffer
        if self._counter < self._restart_interval:
            last = self._last_key
            n = min(len(last), len(key))
            # Shared prefix length without a Python loop: the first differing byte is the
            # highest set byte of the XOR of the two n-byte prefixes read big-endian.
            diff = int.from_bytes(last[:n], "big") ^ int.from_bytes(key[:n], "big")
            shared = n - ((diff.bit_length() + 7) >> 3)
            self._counter += 1
        else:
            self._restarts.append(len(buf))
            self._counter = 1
            shared = 0
        unshared = len(key) - shared
        value_length = len(value)
        if unshared < 0x80 and value_length < 0x80 and shared < 0x80:
            buf += bytes((shared, unshared, value_length))  # three one-byte varints
        else:
            buf += encode_varint(shared)
            buf += encode_varint(unshared)
            buf += encode_varint(value_length)
        buf += key[shared:] if shared else key
        buf += value
        self._last_key = key

    def size_estimate(self) -> int:
        """Size of the finished block if it were finished now."""
        return len(self._buffer) + 4 * len(self._restarts) + 4

    def empty(self) -> bool:
        return not self._buffer

    def finish(self) -> bytes:
        """Returns the block contents and resets the builder."""
        out = self._buffer
        for restart in self._restarts:
            out += _U32.pack(restart)
        out += _U32.pack(len(self._restarts))
        contents = bytes(out)
        self._buffer = bytearray()
        self._restarts = [0]
        self._counter = 0
        self._last_key = b""
        return contents
