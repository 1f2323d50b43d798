"""Tables taken apart and put back together, without the rules a table writer enforces.

Structure-aware mutations decode a table (a ``.index`` or a V1 file) into its entries,
change them and encode them again with valid block checksums, so that the change reaches
the checks behind the checksums.  Unlike :class:`tfckpt.table.writer.TableWriter`,
:func:`encode_table` keeps the entries in the order given (unsorted or duplicated keys),
splits them into blocks of any number of entries, compresses blocks with Snappy on request,
and lets the caller rewrite the index entries' block handles and the footer's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cramjam

from tfckpt.table.block import BlockBuilder
from tfckpt.table.format import (
    BLOCK_TRAILER_SIZE,
    NO_COMPRESSION,
    SNAPPY_COMPRESSION,
    BlockHandle,
    Footer,
    block_trailer,
    decode_varint,
    encode_varint,
)
from tfckpt.table.reader import TableReader

Entries = list[tuple[bytes, bytes]]
IndexEntries = list[tuple[bytes, BlockHandle]]  # (separator key, data block handle)
IndexEditor = Callable[[IndexEntries], IndexEntries]
FooterEditor = Callable[[Footer], Footer]


# An index entry's handle that :func:`encode_table` replaces by the index block's own.
SELF = BlockHandle(-1, -1)


@dataclass(frozen=True)
class Layout:
    """How :func:`encode_table` cuts and stores the data blocks: entries per block
    (TensorFlow cuts by size), restart interval, compression, and optionally a stored type
    byte that lies, a Snappy length prefix that lies, or a rewrite of each block's
    uncompressed contents (restart arrays, garbage entries) before its checksum is taken."""

    block_entries: int = 1 << 30
    restart_interval: int = 16
    compression: int = NO_COMPRESSION
    compression_byte: int | None = None
    snappy_claim: int | None = None
    edit_contents: Callable[[int, bytes], bytes] | None = None  # (block number, contents)


def decode_table(data: bytes) -> Entries:
    """Every entry of a valid table, in stored order."""
    return list(TableReader(data, "seed").items())


def encode_block(contents: bytes, layout: Layout = Layout()) -> bytes:
    """A block as stored: contents (compressed when asked), type byte and valid CRC32C."""
    stored = contents
    if layout.compression == SNAPPY_COMPRESSION:
        stored = bytes(cramjam.snappy.compress_raw(contents))
        if layout.snappy_claim is not None:
            _, rest = decode_varint(stored, 0)
            stored = encode_varint(layout.snappy_claim) + stored[rest:]
    type_byte = layout.compression if layout.compression_byte is None else layout.compression_byte
    return stored + block_trailer(stored, type_byte)


def block_contents(entries: Sequence[tuple[bytes, bytes]], restart_interval: int = 16) -> bytes:
    """The uncompressed contents of one block holding ``entries`` as given."""
    builder = BlockBuilder(restart_interval)
    for key, value in entries:
        builder.add(key, value)
    return builder.finish()


def encode_table(
    entries: Sequence[tuple[bytes, bytes]],
    layout: Layout = Layout(),
    *,
    edit_index: IndexEditor | None = None,
    edit_footer: FooterEditor | None = None,
) -> bytes:
    """A table of ``entries`` in the order given, with valid checksums everywhere.

    ``edit_index`` rewrites the index block's entries (separator key, data block handle)
    before it is written; ``edit_footer`` rewrites the footer's two handles.
    """
    out = bytearray()
    index: IndexEntries = []
    step = max(1, layout.block_entries)
    for first in range(0, len(entries), step):
        chunk = entries[first : first + step]
        contents = block_contents(chunk, layout.restart_interval)
        if layout.edit_contents is not None:
            contents = layout.edit_contents(len(index), contents)
        stored = encode_block(contents, layout)
        index.append((chunk[-1][0], BlockHandle(len(out), len(stored) - BLOCK_TRAILER_SIZE)))
        out += stored
    metaindex = BlockHandle(len(out), len(block_contents([])))
    out += encode_block(block_contents([]))
    if edit_index is not None:
        index = edit_index(index)
    index_contents, own = _index_block(index, len(out))
    footer = Footer(metaindex, own)
    out += encode_block(index_contents)
    if edit_footer is not None:
        footer = edit_footer(footer)
    out += footer.encode()
    return bytes(out)


def _index_block(index: IndexEntries, offset: int) -> tuple[bytes, BlockHandle]:
    """The index block's contents written at ``offset`` and its handle, with SELF handles
    replaced by that handle (its size depends on them: iterated until it settles)."""
    own = BlockHandle(offset, 0)
    while True:
        resolved = [(k, own if h == SELF else h) for k, h in index]
        contents = block_contents([(k, h.encode()) for k, h in resolved], 1)
        if len(contents) == own.size:
            return contents, own
        own = BlockHandle(offset, len(contents))
