"""Writing a table exactly as TensorFlow's TableBuilder does (no compression).

Byte-for-byte agreement with TensorFlow matters (tfckpt's bundles are byte-identical to
``SaveV2``'s), so the flush rule, the separator keys of the index block and the empty
metaindex block follow tensorflow/core/lib/io/table_builder.cc exactly.
"""

from __future__ import annotations

from typing import BinaryIO

from tfckpt.table.block import BlockBuilder
from tfckpt.table.format import (
    BLOCK_TRAILER_SIZE,
    DEFAULT_BLOCK_SIZE,
    DEFAULT_RESTART_INTERVAL,
    NO_COMPRESSION,
    BlockHandle,
    Footer,
    block_trailer,
)


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


class TableWriter:
    """Writes sorted key/value pairs to a binary file object as one table."""

    def __init__(
        self,
        file: BinaryIO,
        *,
        block_size: int = DEFAULT_BLOCK_SIZE,
        restart_interval: int = DEFAULT_RESTART_INTERVAL,
    ) -> None:
        self._file = file
        self._block_size = block_size
        self._data_block = BlockBuilder(restart_interval)
        self._index_block = BlockBuilder(1)
        self._offset = 0
        self._last_key: bytes | None = None
        self._pending_handle: BlockHandle | None = None
        self._closed = False

    def add(self, key: bytes, value: bytes) -> None:
        """Appends an entry; keys must be strictly increasing."""
        if self._closed:
            raise ValueError("table writer is finished")
        last_key = self._last_key
        if last_key is not None:
            if key <= last_key:
                raise ValueError(
                    f"table keys must be strictly increasing: {key!r} after {last_key!r}"
                )
            # An entry at least twice the block size gets a block of its own.
            if len(key) + len(value) >= 2 * self._block_size:
                self._flush()
            if self._pending_handle is not None:
                separator = shortest_separator(last_key, key)
                self._index_block.add(separator, self._pending_handle.encode())
                self._pending_handle = None
        self._last_key = key
        block = self._data_block
        block.add(key, value)
        if block.size_estimate() >= self._block_size:
            self._flush()

    def _flush(self) -> None:
        if self._data_block.empty():
            return
        self._pending_handle = self._write_block(self._data_block.finish())

    def _write_block(self, contents: bytes) -> BlockHandle:
        handle = BlockHandle(self._offset, len(contents))
        self._file.write(contents)
        self._file.write(block_trailer(contents, NO_COMPRESSION))
        self._offset += len(contents) + BLOCK_TRAILER_SIZE
        return handle

    def finish(self) -> int:
        """Writes the remaining block, the metaindex and index blocks and the footer.

        Returns the size of the table in bytes.
        """
        self._flush()
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
