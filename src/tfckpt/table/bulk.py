"""Decoding every entry of a table at once, with NumPy, instead of entry by entry.

A checkpoint index holds one entry per tensor; tens of thousands of them are common.  The
block format (see :mod:`tfckpt.table.block`) is sequential within a *restart group* (the
``restart_interval`` entries that follow a restart point, the first stored with
``shared == 0``), but the groups are independent of each other.  So the decoder walks all
groups of all blocks in lock step: step ``s`` decodes the ``s``-th entry of every group with
a handful of array operations, and at most ``restart_interval`` (TensorFlow: 16, from
tensorflow/core/lib/io/table_options.h) steps decode the whole table.  Keys are rebuilt the
same way (each step copies its shared prefix from the entry before it).

The lock-step walk trusts the restart array; it checks that every group starts where its
restart point says, with ``shared == 0``, and ends exactly where the next one begins.  A
block that does not pass (legal for other LevelDB writers, never written by TensorFlow) is
decoded entry by entry with :func:`tfckpt.table.block.parse_block` instead, so the result
is the same either way.
"""

from __future__ import annotations

import functools
import itertools
import operator

import numpy as np

from tfckpt.errors import DataLossError
from tfckpt.table.block import parse_block_positions

# Bytes appended to the decoded data so that reading a varint's window never runs past it.
PADDING = 16
# Zero bytes before and after the data of :func:`decode_blocks`, where key windows may
# reach (keys up to this long are rebuilt in a matrix, see _build_keys_dense).
KEY_PADDING = 256
# A restart group longer than this is decoded entry by entry (the lock step would cost
# one NumPy pass per entry).
_MAX_GROUP_STEPS = 128
_SHIFTS = np.arange(0, 70, 7, dtype=np.uint64)
# Keys are rebuilt in a (keys x longest key) matrix unless it would exceed this many times
# their total size (plus a slack): one very long key among short ones takes ragged copies.
_DENSE_FACTOR = 4
_DENSE_SLACK = 1 << 16


class TableEntries:
    """Every entry of a table in stored order.

    ``data`` holds the decoded contents of all data blocks (plus :data:`PADDING` zero bytes);
    value ``i`` is ``data[value_start[i] : value_start[i] + value_length[i]]``.  The keys
    are held joined, each followed by a newline byte, so that :meth:`names` can split them
    in one pass.
    """

    def __init__(
        self,
        data: np.ndarray,
        joined_keys: bytes,
        key_offsets: list[int] | np.ndarray,
        value_start: np.ndarray,
        value_length: np.ndarray,
    ) -> None:
        self.data = data
        self.value_start = value_start
        self.value_length = value_length
        self._joined = joined_keys
        self._offsets = key_offsets  # key i is joined[offsets[i] : offsets[i + 1] - 1]
        self._keys: list[bytes] | None = None
        self._names: list[str] | None = None

    @classmethod
    def from_keys(
        cls, data: np.ndarray, keys: list[bytes], value_start: list[int], value_length: list[int]
    ) -> TableEntries:
        offsets = [0]
        for key in keys:
            offsets.append(offsets[-1] + len(key) + 1)
        joined = b"".join(key + b"\n" for key in keys)
        entries = cls(
            data, joined, offsets, np.array(value_start, np.int64), np.array(value_length, np.int64)
        )
        entries._keys = keys
        return entries

    def __len__(self) -> int:
        return len(self._offsets) - 1

    @property
    def keys(self) -> list[bytes]:
        """The keys, as bytes."""
        if self._keys is None:
            joined, bounds = self._joined, self._offsets
            if isinstance(bounds, np.ndarray):
                bounds = bounds.tolist()
            self._keys = [joined[a : b - 1] for a, b in itertools.pairwise(bounds)]
        return self._keys

    def names(self) -> list[str]:
        """The keys decoded as UTF-8 (undecodable bytes kept by ``surrogateescape``).

        The list is shared: callers must not modify it.
        """
        if self._names is None:
            if self.newline_free:
                self._names = self._joined.decode("utf-8", "surrogateescape").split("\n")
                self._names.pop()
            else:
                self._names = [key.decode("utf-8", "surrogateescape") for key in self.keys]
        return self._names

    @functools.cached_property
    def newline_free(self) -> bool:
        """Whether no key holds a newline byte itself (the joined keys then split on it)."""
        return self._joined.count(b"\n") == len(self)

    def value(self, i: int) -> bytes:
        start = int(self.value_start[i])
        return self.data[start : start + int(self.value_length[i])].tobytes()


def decode_varints(
    data: np.ndarray, pos: np.ndarray, max_bytes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decodes one varint at each position of ``pos`` (``data`` is padded).

    Returns ``(values as uint64, next positions, ok)``; ``ok`` is False where the varint
    did not end within ``max_bytes`` bytes.  Bits beyond 64 are dropped, as protobuf does.
    One pass per byte of the longest varint, over the varints still going.
    """
    byte = data[pos]
    going = np.flatnonzero(byte & 0x80)
    if not len(going):  # all one-byte varints
        return byte.astype(np.uint64), pos + 1, np.ones(len(pos), bool)
    values = (byte & 0x7F).astype(np.uint64)
    length = np.ones(len(pos), np.int64)
    for k in range(1, max_bytes):
        if not len(going):
            break
        byte = data[pos[going] + k]
        values[going] |= (byte & 0x7F).astype(np.uint64) << _SHIFTS[k]
        length[going] += 1
        going = going[(byte & 0x80) != 0]
    ok = np.ones(len(pos), bool)
    ok[going] = False
    return values, pos + length, ok


class _Irregular(Exception):
    """A block the lock-step decoder does not handle; it is decoded entry by entry."""


def _lockstep(
    data: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Decodes the entry headers of restart groups ``[starts[g], ends[g])``.

    Returns, in stored order: shared, unshared, key-delta start, value start, value length
    (int64 arrays), and the step of each entry within its group.
    """
    groups = len(starts)
    columns: list[tuple[np.ndarray, ...]] = []
    pos = starts.copy()
    active = np.arange(groups)
    step = 0
    while len(active):
        if step >= _MAX_GROUP_STEPS:
            raise _Irregular
        p = pos[active]
        b0, b1, b2 = data[p], data[p + 1], data[p + 2]
        if not ((b0 | b1 | b2) & 0x80).any():  # the usual case: three one-byte varints
            shared, unshared, value_len = b0.astype(np.int64), b1, b2
            ok: np.ndarray | np.bool_ = np.True_
            p = p + 3
        else:
            shared, p, ok1 = decode_varints(data, p, 5)
            unshared, p, ok2 = decode_varints(data, p, 5)
            value_len, p, ok3 = decode_varints(data, p, 5)
            ok = ok1 & ok2 & ok3
        key_start = p
        value_start = key_start + unshared.astype(np.int64)
        value_end = value_start + value_len.astype(np.int64)
        group_end = ends[active]
        if (
            not np.all(ok)
            or (value_end > group_end).any()
            or (value_len >= 1 << 32).any()
            or (unshared >= 1 << 32).any()
            or (step == 0 and shared.any())
        ):
            raise _Irregular
        columns.append(
            (
                active,
                shared.astype(np.int64),
                unshared.astype(np.int64),
                key_start,
                value_start,
                value_len.astype(np.int64),
            )
        )
        pos[active] = value_end
        active = active[value_end < group_end]
        step += 1
    # Stored order is (group, step): sort the (step-major) rows by group, stably.
    group_of = np.concatenate([c[0] for c in columns])
    steps = np.concatenate([np.full(len(c[0]), s, np.int64) for s, c in enumerate(columns)])
    order = np.argsort(group_of, kind="stable")
    shared, unshared, key_start, value_start, value_len = (
        np.concatenate([c[k] for c in columns])[order] for k in range(1, 6)
    )
    return shared, unshared, key_start, value_start, value_len, steps[order]


def _build_keys(
    storage: np.ndarray,
    shared: np.ndarray,
    unshared: np.ndarray,
    key_start: np.ndarray,
    steps: np.ndarray,
) -> tuple[bytes, np.ndarray]:
    """Rebuilds the full keys; returns them joined (each followed by a newline byte) and
    their start offsets (n + 1 of them).  ``storage`` is the data with KEY_PADDING zero
    bytes on each side, as :func:`decode_blocks` allocates it."""
    data = storage[KEY_PADDING:]
    lengths = shared + unshared
    if len(lengths) > 1 and (shared[1:] > lengths[:-1]).any():
        raise DataLossError("corrupt entry: shares more key bytes than the previous key has")
    offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths + 1, out=offsets[1:])
    width = int(lengths.max(initial=0)) + 1
    matrix_size = len(lengths) * width
    if width <= KEY_PADDING and matrix_size <= _DENSE_FACTOR * int(offsets[-1]) + _DENSE_SLACK:
        return _build_keys_dense(storage, shared, lengths, key_start, steps, width), offsets
    out = np.full(int(offsets[-1]), ord("\n"), np.uint8)
    _ragged_copy(out, offsets[:-1] + shared, data, key_start, unshared)
    # Step s copies its shared prefix from step s - 1, complete by then.
    for step in range(1, int(steps.max(initial=0)) + 1):
        rows = np.flatnonzero((steps == step) & (shared > 0))
        if len(rows):
            _ragged_copy(out, offsets[rows], out, offsets[rows - 1], shared[rows])
    return out.tobytes(), offsets


def _build_keys_dense(
    storage: np.ndarray,
    shared: np.ndarray,
    lengths: np.ndarray,
    key_start: np.ndarray,
    steps: np.ndarray,
    width: int,
) -> bytes:
    """:func:`_build_keys` on a ``(n, width)`` matrix, one row per key: fewer, larger NumPy
    operations than ragged copies when the keys have similar lengths."""
    n = len(lengths)
    # Row i starts as the window of ``width`` bytes at key_start[i] - shared[i]: from column
    # shared[i] on, that is exactly key i's own (unshared) bytes.  The windows may reach
    # into the KEY_PADDING zero bytes on either side of the data in ``storage``.
    windows = np.ndarray(
        (len(storage) - width + 1,), np.dtype((np.void, width)), storage, strides=(1,)
    )
    keys = windows[key_start - shared + KEY_PADDING].view(np.uint8).reshape(n, width)
    prefix = np.arange(width) < np.arange(width + 1)[:, None]  # prefix[m]: the first m columns
    for step in range(1, int(steps.max(initial=0)) + 1):
        rows = np.flatnonzero(steps == step)
        counts = shared[rows]
        reach = int(counts.max(initial=0))  # columns beyond it are never copied
        block = keys[rows, :reach]
        np.copyto(block, keys[rows - 1, :reach], where=prefix[counts, :reach])
        keys[rows, :reach] = block
    keys[np.arange(n), lengths] = ord("\n")
    return keys[prefix[lengths + 1]].tobytes()


def _ragged_copy(
    dest: np.ndarray,
    dest_start: np.ndarray,
    src: np.ndarray,
    src_start: np.ndarray,
    lengths: np.ndarray,
) -> None:
    """``dest[dest_start[i]:+lengths[i]] = src[src_start[i]:+lengths[i]]`` for every i."""
    total = int(lengths.sum())
    run_starts = np.zeros(len(lengths), np.int64)
    np.cumsum(lengths[:-1], out=run_starts[1:])
    step = np.arange(total, dtype=np.int64)
    dest[step + np.repeat(dest_start - run_starts, lengths)] = src[
        step + np.repeat(src_start - run_starts, lengths)
    ]


def decode_blocks(blocks: list[bytes], path: str | None = None) -> TableEntries:
    """Decodes the entries of the given data blocks (contents without trailers), in order.

    Raises DataLossError (with ``path``, the file) for corrupt blocks and for keys that are
    not strictly increasing.
    """
    bases = np.zeros(len(blocks) + 1, np.int64)
    np.cumsum([len(b) for b in blocks], out=bases[1:])
    # Zero bytes on both sides of the data: KEY_PADDING before, at least PADDING after.
    storage = np.zeros(KEY_PADDING + int(bases[-1]) + max(PADDING, KEY_PADDING), np.uint8)
    data = storage[KEY_PADDING:]
    group_starts: list[np.ndarray] = []
    group_ends: list[np.ndarray] = []
    regular = True
    for i, block in enumerate(blocks):
        base = int(bases[i])
        size = len(block)
        data[base : base + size] = np.frombuffer(block, np.uint8)
        if size < 4:
            raise DataLossError(
                f"data block {i} has {size} bytes, too short for a restart count (4 bytes)",
                path=path,
            )
        num_restarts = int.from_bytes(block[size - 4 :], "little")
        limit = size - 4 - 4 * num_restarts
        if num_restarts == 0 or limit < 0:
            raise DataLossError(
                f"bad restart count {num_restarts} in data block {i} of {size} bytes", path=path
            )
        if limit == 0:
            continue  # an empty block
        restarts = np.frombuffer(block, "<u4", num_restarts, limit).astype(np.int64)
        if restarts[0] != 0 or (np.diff(restarts) <= 0).any() or restarts[-1] >= limit:
            regular = False
        group_starts.append(base + restarts)
        group_ends.append(base + np.append(restarts[1:], limit))
    if not group_starts:
        return TableEntries.from_keys(data, [], [], [])
    if regular:
        try:
            shared, unshared, key_start, value_start, value_length, steps = _lockstep(
                data, np.concatenate(group_starts), np.concatenate(group_ends)
            )
        except _Irregular:
            regular = False
    if not regular:
        return _decode_one_by_one(blocks, data, bases, path)
    try:
        joined, offsets = _build_keys(storage, shared, unshared, key_start, steps)
    except DataLossError as exc:  # raised without a location: the file is known here
        raise DataLossError(exc.message, path=path) from None
    entries = TableEntries(data, joined, offsets, value_start, value_length)
    _check_order(entries, path)
    return entries


def _decode_one_by_one(
    blocks: list[bytes], data: np.ndarray, bases: np.ndarray, path: str | None
) -> TableEntries:
    keys: list[bytes] = []
    starts: list[int] = []
    lengths: list[int] = []
    for i, block in enumerate(blocks):
        block_keys, block_starts, block_lengths = parse_block_positions(
            block, path, f"data block {i}"
        )
        base = int(bases[i])
        keys.extend(block_keys)
        starts.extend(base + start for start in block_starts)
        lengths.extend(block_lengths)
    entries = TableEntries.from_keys(data, keys, starts, lengths)
    _check_order(entries, path)
    return entries


def _check_order(entries: TableEntries, path: str | None) -> None:
    """Keys must be strictly increasing (bytewise), as the table builder enforces."""
    joined = entries._joined
    if joined.isascii() and entries.newline_free:
        names = entries.names()  # ASCII: str order is byte order
        if all(map(operator.lt, names[:-1], names[1:])):
            return
    keys = entries.keys
    for previous, key in itertools.pairwise(keys):
        if not previous < key:
            raise DataLossError(
                f"keys out of order: {key!r} comes after {previous!r}, expected strictly "
                "increasing keys",
                path=path,
            )
