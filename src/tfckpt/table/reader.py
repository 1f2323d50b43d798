"""Reading a whole table: footer, index block, data blocks (uncompressed or Snappy)."""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterator

from tfckpt.errors import (
    DataLossError,
    UnsupportedError,
)
from tfckpt.storage.location import open_source
from tfckpt.table.block import parse_block
from tfckpt.table.bulk import TableEntries, decode_blocks
from tfckpt.table.format import (
    BLOCK_TRAILER_SIZE,
    FOOTER_SIZE,
    NO_COMPRESSION,
    SNAPPY_COMPRESSION,
    BlockHandle,
    Footer,
    check_block_trailer,
    decode_varint,
)

# A Snappy element of n input bytes expands to at most 64 bytes per 3 (a two-byte-offset
# copy of the longest length), so no valid block decompresses to more than this many times
# its size (github.com/google/snappy format_description.txt).
_SNAPPY_MAX_EXPANSION = 22


def _snappy_decompress(data: bytes, path: str, what: str) -> bytes:
    import cramjam  # imported on first use: most tables written by TensorFlow are uncompressed

    # The block starts with its uncompressed length: checked before anything is allocated.
    claimed, _ = decode_varint(data, 0, path, f"uncompressed length of {what}")
    if claimed > _SNAPPY_MAX_EXPANSION * len(data):
        raise DataLossError(
            f"corrupt Snappy-compressed {what}: it claims {claimed} uncompressed bytes, more "
            f"than {len(data)} compressed bytes can hold",
            path=path,
        )
    try:
        return bytes(cramjam.snappy.decompress_raw(data))
    except Exception as exc:  # cramjam raises its own DecompressionError
        raise DataLossError(f"corrupt Snappy-compressed {what} ({exc})", path=path) from None


class TableReader:
    """Reads a table held in memory (the bytes of a ``.index`` or V1 checkpoint file).

    ``name`` is the file name that errors carry as their ``path``.  With
    ``verify_checksums`` every block trailer's CRC32C is checked before the block is used.
    """

    def __init__(self, data: bytes, name: str, *, verify_checksums: bool = True) -> None:
        self.name = name
        self._data = data
        self._verify = verify_checksums
        # Every error below carries ``path=name``; the message says which structure failed.
        footer = Footer.decode(data[-FOOTER_SIZE:], name)
        index_keys, index_values = parse_block(
            self._block(footer.index, "the index block"), name, "the index block"
        )
        self._handles: list[BlockHandle] = []
        for key, value in zip(index_keys, index_values):
            handle, _ = BlockHandle.decode(value, 0, name, f"block handle of index entry {key!r}")
            self._handles.append(handle)
        self._separators = index_keys

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, verify_checksums: bool = True) -> TableReader:
        """Reads the table file at ``path`` through the storage layer.

        The footer is read and checked first, so that a large file that is not a table is
        refused before it is read whole.  Raises CheckpointNotFoundError when the file does
        not exist, DataLossError when it is not a table.
        """
        source = open_source(path)
        try:
            size = source.size()
            footer_at = max(0, size - FOOTER_SIZE)
            (footer,) = source.read_ranges([(footer_at, size - footer_at)])
            Footer.decode(bytes(footer), source.path)
            data = bytes(source.read_ranges([(0, size)])[0])
        finally:
            source.close()
        return cls(data, source.path, verify_checksums=verify_checksums)

    @property
    def num_blocks(self) -> int:
        """Number of data blocks."""
        return len(self._handles)

    def _block(self, handle: BlockHandle, what: str) -> bytes:
        block_name = f"{what} at offset {handle.offset}"
        end = handle.offset + handle.size
        if end + BLOCK_TRAILER_SIZE > len(self._data) - FOOTER_SIZE:
            raise DataLossError(
                f"{block_name}: a block of {handle.size} bytes and its trailer run past the end "
                f"of the {len(self._data)}-byte file (truncated?)",
                path=self.name,
            )
        contents = self._data[handle.offset : end]
        trailer = self._data[end : end + BLOCK_TRAILER_SIZE]
        if self._verify:
            compression = check_block_trailer(contents, trailer, self.name, block_name)
        else:
            compression = trailer[0]
        if compression == NO_COMPRESSION:
            return contents
        if compression == SNAPPY_COMPRESSION:
            return _snappy_decompress(contents, self.name, block_name)
        raise UnsupportedError(
            f"unknown compression type {compression} of {block_name} (expected 0 or 1)",
            path=self.name,
        )

    def _block_entries(self, i: int) -> tuple[list[bytes], list[bytes]]:
        what = f"data block {i}"
        return parse_block(self._block(self._handles[i], what), self.name, what)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """All entries in key order; raises DataLossError if keys are not strictly increasing."""
        previous: bytes | None = None
        for i in range(len(self._handles)):
            keys, values = self._block_entries(i)
            if keys and previous is not None and keys[0] <= previous:
                raise DataLossError(
                    f"keys out of order: data block {i} starts with {keys[0]!r}, which does "
                    f"not come after {previous!r}, the last key of the blocks before it",
                    path=self.name,
                )
            for j in range(1, len(keys)):
                if keys[j] <= keys[j - 1]:
                    raise DataLossError(
                        f"keys out of order in data block {i}: {keys[j]!r} comes after "
                        f"{keys[j - 1]!r}, expected strictly increasing keys",
                        path=self.name,
                    )
            yield from zip(keys, values)
            if keys:
                previous = keys[-1]

    def entries(self) -> TableEntries:
        """Every entry at once, decoded in bulk (see :mod:`tfckpt.table.bulk`).

        Raises DataLossError if keys are not strictly increasing.
        """
        blocks = [self._block(handle, f"data block {i}") for i, handle in enumerate(self._handles)]
        return decode_blocks(blocks, self.name)

    def get(self, key: bytes) -> bytes | None:
        """The value stored under ``key``, or None."""
        i = bisect.bisect_left(self._separators, key)
        if i >= len(self._handles):
            return None
        keys, values = self._block_entries(i)
        j = bisect.bisect_left(keys, key)
        if j < len(keys) and keys[j] == key:
            return values[j]
        return None
