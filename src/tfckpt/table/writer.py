"""Writing a table exactly as TensorFlow's TableBuilder does (no compression).

Byte-for-byte agreement with TensorFlow matters (tfckpt's bundles are byte-identical to
``SaveV2``'s), so the flush rule, the separator keys of the index block and the empty
metaindex block follow tensorflow/core/lib/io/table_builder.cc exactly, and the data blocks
block_builder.cc.

Data blocks are built in bulk: entries are collected (:meth:`TableWriter.add` is a batch of
one, :meth:`TableWriter.add_sorted` a batch of many) and turned into blocks with NumPy, a
few passes per block and none per entry: shared key prefixes from a (keys x bytes) view of
the joined keys, each block's end from a cumulative sum of its entries' sizes, each block's
bytes gathered from the joined headers, keys and values in one indexing operation.
"""

from __future__ import annotations

import itertools
import operator
import struct
from collections.abc import Sequence
from typing import BinaryIO, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tfckpt.table.block import BlockBuilder
from tfckpt.table.format import (
    BLOCK_TRAILER_SIZE,
    DEFAULT_BLOCK_SIZE,
    DEFAULT_RESTART_INTERVAL,
    NO_COMPRESSION,
    BlockHandle,
    Footer,
    block_trailer,
    encode_varint_array,
    varint_lengths,
)

_U32 = struct.Struct("<I")

# Shared prefixes are compared this many bytes wide in NumPy, this many keys at a time; a
# pair sharing more than the width is measured again in Python (rare: long common paths).
_PREFIX_WIDTH = 128
_PREFIX_ROWS = 1 << 16
# Entries collected through add() are built into blocks once they hold this many times the
# block size (the last, unfinished block is kept back for the entries that follow).
_BUILD_AT_BLOCKS = 4


def shortest_separator(start: bytes, limit: bytes) -> bytes:
    """A short key k with start <= k < limit (bytewise comparator's FindShortestSeparator)."""
    min_len = min(len(start), len(limit))
    i = 0
    while i < min_len and start[i] == limit[i]:
        i += 1
    if i < min_len:
        byte = start[i]
        if byte < 0xFF and byte + 1 < limit[i]:
            return start[:i] + bytes((byte + 1,))
    return start


def short_successor(key: bytes) -> bytes:
    """A short key k >= key (bytewise comparator's FindShortSuccessor)."""
    for i, byte in enumerate(key):
        if byte != 0xFF:
            return key[:i] + bytes((byte + 1,))
    return key


class JoinedValues(NamedTuple):
    """Values given concatenated: value ``i`` is the ``lengths[i]`` bytes of ``data`` that
    follow the values before it (what a vectorised encoder produces, with no per-value
    bytes objects)."""

    data: bytes
    lengths: np.ndarray


class TableWriter:
    """Writes sorted key/value pairs to a binary file object as one table.

    Example::

        with open("t.table", "wb") as f:
            table = TableWriter(f)
            table.add_sorted([b"a", b"b"], [b"1", b"2"])
            table.add(b"c", b"3")
            table.finish()
    """

    def __init__(
        self,
        file: BinaryIO,
        *,
        block_size: int = DEFAULT_BLOCK_SIZE,
        restart_interval: int = DEFAULT_RESTART_INTERVAL,
    ) -> None:
        """Raises ValueError for a block size or restart interval below 1."""
        if block_size < 1 or restart_interval < 1:
            raise ValueError(
                f"block_size and restart_interval must be >= 1, not {block_size} and "
                f"{restart_interval}"
            )
        self._file = file
        self._block_size = block_size
        self._restart_interval = restart_interval
        self._index_block = BlockBuilder(1)
        self._offset = 0
        self._last_key: bytes | None = None  # the last key added
        self._block_last_key = b""  # the last key of the last block written
        self._pending_handle: BlockHandle | None = None
        # Entries added but not yet in a written block; they start a new block.
        self._keys: list[bytes] = []
        self._value_chunks: list[bytes] = []
        self._value_lengths: list[np.ndarray] = []
        self._loose_lengths: list[int] = []  # of the values add() appended to the chunks
        self._pending_bytes = 0
        self._closed = False

    def add(self, key: bytes, value: bytes) -> None:
        """Appends an entry; keys must be strictly increasing.

        Raises:
            ValueError: the writer is finished, or ``key`` is not above the last key.
        """
        self._check_open()
        last_key = self._last_key
        if last_key is not None and key <= last_key:
            raise ValueError(f"table keys must be strictly increasing: {key!r} after {last_key!r}")
        self._last_key = key
        self._keys.append(key)
        self._value_chunks.append(value)
        self._loose_lengths.append(len(value))
        self._pending_bytes += len(key) + len(value)
        if self._pending_bytes >= _BUILD_AT_BLOCKS * self._block_size:
            self._build(final=False)

    def add_sorted(self, keys: Sequence[bytes], values: Sequence[bytes] | JoinedValues) -> None:
        """Appends many entries at once (the same bytes as :meth:`add` for each, far faster).

        ``keys`` must be strictly increasing and above every key added before; ``values``
        are bytes objects, or :class:`JoinedValues`.

        Raises:
            ValueError: the writer is finished; the keys are out of order; the values do
                not match the keys in number (or the joined lengths the data's size).
        """
        self._check_open()
        keys = list(keys)
        if isinstance(values, JoinedValues):
            data = values.data
            lengths = np.asarray(values.lengths, np.int64).reshape(-1)
            if len(lengths) and int(lengths.min()) < 0:
                raise ValueError("joined value lengths must be non-negative")
        else:
            data = b"".join(values)
            lengths = np.fromiter(map(len, values), np.int64, len(values))
        if len(lengths) != len(keys):
            raise ValueError(f"{len(keys)} keys but {len(lengths)} values")
        if int(lengths.sum()) != memoryview(data).nbytes:
            raise ValueError("the values' lengths do not add up to their bytes")
        if not keys:
            return
        self._check_order(keys)
        self._last_key = keys[-1]
        self._seal_loose_lengths()
        self._keys += keys
        self._value_chunks.append(data)
        self._value_lengths.append(lengths)
        self._pending_bytes += sum(map(len, keys)) + len(data)
        if self._pending_bytes >= _BUILD_AT_BLOCKS * self._block_size:
            self._build(final=False)

    def finish(self) -> int:
        """Writes the remaining blocks, the metaindex and index blocks and the footer.

        Returns the size of the table in bytes.

        Raises:
            ValueError: the writer is finished already.
        """
        self._check_open()
        self._build(final=True)
        self._closed = True
        metaindex = self._write_block(BlockBuilder().finish())
        if self._pending_handle is not None:
            assert self._last_key is not None
            self._index_block.add(short_successor(self._last_key), self._pending_handle.encode())
            self._pending_handle = None
        index = self._write_block(self._index_block.finish())
        footer = Footer(metaindex, index).encode()
        self._file.write(footer)
        self._offset += len(footer)
        return self._offset

    # -- building blocks ------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("table writer is finished")

    def _check_order(self, keys: list[bytes]) -> None:
        first = keys[0]
        if self._last_key is not None and first <= self._last_key:
            raise ValueError(
                f"table keys must be strictly increasing: {first!r} after {self._last_key!r}"
            )
        if not all(map(operator.lt, keys, itertools.islice(keys, 1, None))):
            for a, b in itertools.pairwise(keys):
                if not a < b:
                    raise ValueError(f"table keys must be strictly increasing: {b!r} after {a!r}")

    def _seal_loose_lengths(self) -> None:
        if self._loose_lengths:
            self._value_lengths.append(np.array(self._loose_lengths, np.int64))
            self._loose_lengths = []

    def _build(self, *, final: bool) -> None:
        """Writes every block the collected entries complete (with ``final``, all of them),
        as TableBuilder::Add would have, keeping the entries of an unfinished last block."""
        self._seal_loose_lengths()
        keys = self._keys
        n = len(keys)
        if n == 0:
            return
        chunks = self._value_chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        value_len = np.concatenate(self._value_lengths)
        key_len = np.fromiter(map(len, keys), np.int64, n)
        keys_blob = memoryview(b"".join(keys))
        key_at = np.zeros(n + 1, np.int64)
        np.cumsum(key_len, out=key_at[1:])
        shared = _shared_prefixes(keys, keys_blob, key_at, key_len)
        value_at = np.zeros(n + 1, np.int64)
        np.cumsum(value_len, out=value_at[1:])
        view = memoryview(data).cast("B")
        interval = self._restart_interval
        start = 0
        for end in _block_ends(key_len, value_len, shared, self._block_size, interval, final):
            if self._pending_handle is not None:  # the previous block's index entry
                separator = shortest_separator(self._block_last_key, keys[start])
                self._index_block.add(separator, self._pending_handle.encode())
            values = view[int(value_at[start]) : int(value_at[end])]
            contents = _block_contents(
                keys[start:end],
                keys_blob[int(key_at[start]) : int(key_at[end])],
                key_len[start:end],
                shared[start:end],
                values,
                value_len[start:end],
                interval,
            )
            self._pending_handle = self._write_block(contents)
            self._block_last_key = keys[end - 1]
            start = end
        rest = view[int(value_at[start]) :]
        self._keys = keys[start:]
        self._value_chunks = [bytes(rest)] if start else [data]
        self._value_lengths = [value_len[start:]]
        self._pending_bytes = int(key_len[start:].sum()) + len(rest)

    def _write_block(self, contents: bytes) -> BlockHandle:
        handle = BlockHandle(self._offset, len(contents))
        self._file.write(contents)
        self._file.write(block_trailer(contents, NO_COMPRESSION))
        self._offset += len(contents) + BLOCK_TRAILER_SIZE
        return handle


def _shared_prefixes(
    keys: list[bytes], keys_blob: memoryview, key_at: np.ndarray, key_len: np.ndarray
) -> np.ndarray:
    """``out[i]``: how many leading bytes ``keys[i]`` shares with ``keys[i - 1]`` (0 for the
    first); ``keys_blob`` is the keys joined, key ``i`` at ``key_at[i]``."""
    n = len(keys)
    shared = np.zeros(n, np.int64)
    if n < 2:
        return shared
    width = min(int(key_len.max()), _PREFIX_WIDTH)
    if width == 0:
        return shared
    # Row i is the ``width`` bytes from the start of key i (past its end: the next keys'
    # bytes or padding, which the minimum with both lengths below discards).
    padded = np.concatenate([np.frombuffer(keys_blob, np.uint8), np.zeros(width, np.uint8)])
    windows = sliding_window_view(padded, width)
    for top in range(0, n - 1, _PREFIX_ROWS):
        rows = windows[key_at[top : min(n, top + _PREFIX_ROWS + 1)]]
        differ = rows[1:] != rows[:-1]
        first = differ.argmax(axis=1)
        first[~differ[np.arange(len(first)), first]] = width
        shared[top + 1 : top + 1 + len(first)] = first
    shorter = np.minimum(key_len[1:], key_len[:-1])
    np.minimum(shared[1:], shorter, out=shared[1:])
    for i in (np.flatnonzero((shared[1:] == width) & (shorter > width)) + 1).tolist():
        shared[i] = _common_prefix(keys[i - 1], keys[i])
    return shared


def _common_prefix(a: bytes, b: bytes) -> int:
    n = min(len(a), len(b))
    # The first differing byte is the highest set byte of the XOR of the two prefixes.
    diff = int.from_bytes(a[:n], "big") ^ int.from_bytes(b[:n], "big")
    return n - ((diff.bit_length() + 7) >> 3)


def _block_ends(
    key_len: np.ndarray,
    value_len: np.ndarray,
    shared: np.ndarray,
    block_size: int,
    interval: int,
    final: bool,
) -> list[int]:
    """Where each block TableBuilder::Add would write ends (exclusive), from the entries'
    sizes; without ``final`` an unfinished last block is left out.

    A block ends after the entry that brings its size estimate (entries, 4 bytes per
    restart point, 4) to ``block_size``, or before an entry whose key and value take at
    least twice ``block_size`` (table_builder.cc kOverlyLargeBlockRatio).  The first entry
    of a block and every ``interval``-th after it are restart points, stored unshared.
    """
    n = len(key_len)
    plain = key_len + value_len + varint_lengths(key_len) + varint_lengths(value_len) + 1
    unshared = key_len - shared
    compressed = unshared + value_len + varint_lengths(shared)
    compressed += varint_lengths(unshared) + varint_lengths(value_len)
    oversized = np.flatnonzero(key_len + value_len >= 2 * block_size)
    ends: list[int] = []
    start = 0
    window = 1024
    while start < n:
        after = np.searchsorted(oversized, start + 1)
        limit = int(oversized[after]) if after < len(oversized) else n
        while True:
            stop = min(limit, start + window)
            j = np.arange(stop - start)
            restart = j % interval == 0
            sizes = np.where(restart, plain[start:stop], compressed[start:stop])
            estimate = np.cumsum(sizes) + 4 * (j // interval) + 8
            full = int(np.searchsorted(estimate, block_size))  # first estimate >= block_size
            if full < len(estimate):
                end = start + full + 1
                break
            if stop == limit:
                end = limit
                break
            window *= 4
        if end == n and not final and estimate[-1] < block_size:
            break  # the last block is still open
        ends.append(end)
        start = end
    return ends


def _block_contents(
    keys: list[bytes],
    keys_blob: memoryview,
    key_len: np.ndarray,
    shared: np.ndarray,
    values: memoryview,
    value_len: np.ndarray,
    interval: int,
) -> bytes:
    """One data block's bytes, as block_builder.cc lays them out (see :mod:`tfckpt.table`)."""
    m = len(keys)
    restart = np.arange(m) % interval == 0
    shared = np.where(restart, 0, shared)
    unshared = key_len - shared
    headers, header_bytes = encode_varint_array(np.stack([shared, unshared, value_len], axis=1))
    header_len = header_bytes.reshape(m, 3).sum(axis=1)
    entry_len = header_len + unshared + value_len
    entry_at = np.zeros(m, np.int64)
    np.cumsum(entry_len[:-1], out=entry_at[1:])
    tail = entry_at[restart].astype("<u4").tobytes() + _U32.pack(int(restart.sum()))
    if m == 1:  # a single (restart) entry, possibly a huge one
        return headers.tobytes() + keys[0] + bytes(values) + tail
    header_at = np.zeros(m, np.int64)
    np.cumsum(header_len[:-1], out=header_at[1:])
    key_at = np.zeros(m, np.int64)
    np.cumsum(key_len[:-1], out=key_at[1:])
    value_at = np.zeros(m, np.int64)
    np.cumsum(value_len[:-1], out=value_at[1:])
    piece_len = np.stack([header_len, unshared, value_len], axis=1)
    total = int(entry_len.sum())
    widths = piece_len.max(axis=0)
    if m * int(widths.sum()) <= 4 * total:
        # Entries of similar sizes: each a row of a byte matrix (its header, unshared key
        # bytes and value, each padded to the longest), the padding masked out.
        header_rows = _rows(headers.tobytes(), header_at, int(widths[0]))
        key_rows = _rows(keys_blob, key_at + shared, int(widths[1]))
        value_rows = _rows(values, value_at, int(widths[2]))
        matrix = np.concatenate([header_rows, key_rows, value_rows], axis=1)
        keep = np.concatenate(
            [np.arange(int(w)) < piece_len[:, i, None] for i, w in enumerate(widths)], axis=1
        )
        return matrix[keep].tobytes() + tail
    # Otherwise every entry is three pieces (header, unshared key bytes, value) of one
    # source buffer (headers, then keys, then values), gathered in order with one index.
    source = np.concatenate(
        [headers, np.frombuffer(keys_blob, np.uint8), np.frombuffer(values, np.uint8)]
    )
    piece_at = np.stack(
        [
            header_at,
            len(headers) + key_at + shared,
            len(headers) + len(keys_blob) + value_at,
        ],
        axis=1,
    ).reshape(-1)
    piece_len = piece_len.reshape(-1)
    placed_at = np.zeros(3 * m, np.int64)
    np.cumsum(piece_len[:-1], out=placed_at[1:])
    index = np.repeat(piece_at - placed_at, piece_len) + np.arange(total)
    return source[index].tobytes() + tail


def _rows(data: bytes | memoryview, starts: np.ndarray, width: int) -> np.ndarray:
    """The ``width`` bytes of ``data`` from each start (zero-padded past its end), as rows."""
    if width == 0:
        return np.zeros((len(starts), 0), np.uint8)
    padded = np.concatenate([np.frombuffer(data, np.uint8), np.zeros(width, np.uint8)])
    return sliding_window_view(padded, width)[starts]
