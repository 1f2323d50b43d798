"""Structure-aware mutations of a table (a bundle index or a V1 file), checksums valid.

The entries are kept; what changes is how they are stored: block sizes, restart arrays,
compression, block handles (past the end, overlapping, pointing at the index block itself,
at the empty metaindex block), the footer's handles, blocks of garbage entries (varints
that never end, shared prefixes longer than the previous key).  Each mutation returns the
new file, a description and a verdict on opening it: ``fail``, ``same`` (the right values
or an error) or ``changed`` (entries may be lost, as the index says).  A bundle decodes
every block when it opens; a V1 table only the blocks its lookups reach, hence ``is_index``.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable

from tests.fuzz import tables
from tfckpt.table.format import SNAPPY_COMPRESSION, BlockHandle, Footer

Entries = list[tuple[bytes, bytes]]
TableMutation = Callable[[random.Random, Entries, bool], tuple[bytes, str, str]]
_U32 = struct.Struct("<I")


def relayout(rng: random.Random, entries: Entries, is_index: bool) -> tuple[bytes, str, str]:
    """The same entries in blocks of a few entries, other restart intervals, Snappy."""
    layout = tables.Layout(
        block_entries=rng.choice((1, 2, 3, 5, 50)),
        restart_interval=rng.choice((1, 2, 3, 16, 10**6)),
        compression=rng.choice((0, 1)),
    )
    return tables.encode_table(entries, layout), f"re-laid out as {layout}", "same"


def lying_compression(
    rng: random.Random, entries: Entries, is_index: bool
) -> tuple[bytes, str, str]:
    """A block type byte that is no compression tfckpt knows, or a Snappy block whose
    length prefix claims more (or less) than it holds."""
    if rng.random() < 0.5:
        byte = rng.choice((2, 3, 0x80, 0xFF))
        layout = tables.Layout(compression_byte=byte)
        return tables.encode_table(entries, layout), f"block type byte {byte}", "fail"
    claim = rng.choice((0, 1, 2**32, 2**62, 10**7))
    layout = tables.Layout(compression=SNAPPY_COMPRESSION, snappy_claim=claim)
    return tables.encode_table(entries, layout), f"Snappy block claiming {claim} bytes", "fail"


def _restarts(contents: bytes) -> tuple[bytes, list[int]]:
    count = _U32.unpack_from(contents, len(contents) - 4)[0]
    body_end = len(contents) - 4 - 4 * count
    starts = [_U32.unpack_from(contents, body_end + 4 * i)[0] for i in range(count)]
    return contents[:body_end], starts


def _with_restarts(body: bytes, starts: list[int], count: int | None = None) -> bytes:
    packed = b"".join(_U32.pack(s & 0xFFFFFFFF) for s in starts)
    return body + packed + _U32.pack(len(starts) if count is None else count)


def restarts(rng: random.Random, entries: Entries, is_index: bool) -> tuple[bytes, str, str]:
    """Each data block's restart array rewritten: offsets out of order or beyond the
    block (a hint only: the right values or an error), or a count that is 0 or huge."""
    how = rng.choice(["reversed", "beyond", "zero_count", "huge_count", "count_plus_one"])

    def edit(_: int, contents: bytes) -> bytes:
        body, starts = _restarts(contents)
        if how == "reversed":
            return _with_restarts(body, starts[::-1])
        if how == "beyond":
            return _with_restarts(body, [s + len(body) + 1000 for s in starts])
        if how == "zero_count":
            return _with_restarts(body, [], 0)
        if how == "huge_count":
            return _with_restarts(body, starts, 0xFFFFFFFF)
        return _with_restarts(body, starts, len(starts) + 1)

    layout = tables.Layout(
        block_entries=rng.choice((2, 5, 1000)), restart_interval=2, edit_contents=edit
    )
    # The offsets are hints (a bad one makes the block be decoded entry by entry); a bad
    # count breaks the block, which a V1 table notices only when a lookup reaches it.
    verdict = "fail" if is_index and how in ("zero_count", "huge_count") else "same"
    return tables.encode_table(entries, layout), f"restart arrays: {how}", verdict


_GARBAGE_BLOCKS = {
    "a varint that never ends": b"\xff" * 12 + _U32.pack(0) + _U32.pack(1),
    "a key sharing more than the previous key": (
        bytes((0, 1, 1)) + b"av" + bytes((5, 0, 0)) + _U32.pack(0) + _U32.pack(1)
    ),
    "a value running past the block": bytes((0, 1, 0x7F)) + b"a" + _U32.pack(0) + _U32.pack(1),
    "an unshared length of 2**32": (
        bytes((0,)) + b"\x80\x80\x80\x80\x10" + bytes((0,)) + _U32.pack(0) + _U32.pack(1)
    ),
}


def garbage_block(rng: random.Random, entries: Entries, is_index: bool) -> tuple[bytes, str, str]:
    """The first data block's contents replaced by a garbage entry (checksum valid)."""
    what = rng.choice(sorted(_GARBAGE_BLOCKS))

    def edit(number: int, contents: bytes) -> bytes:
        return _GARBAGE_BLOCKS[what] if number == 0 else contents

    layout = tables.Layout(block_entries=rng.choice((1, 3, 1000)), edit_contents=edit)
    return (
        tables.encode_table(entries, layout),
        f"data block 0: {what}",
        ("fail" if is_index else "same"),
    )


def handles(rng: random.Random, entries: Entries, is_index: bool) -> tuple[bytes, str, str]:
    """One index entry's block handle past the end, at another block (overlap), at the
    index block itself, at the empty metaindex block, empty, or too long; or index entries
    swapped."""
    how = rng.choice(["past_end", "previous", "self", "metaindex", "empty", "long", "swap"])
    # A bundle reads every block when it opens; a V1 table only those its lookups reach.
    verdict = "same"
    if is_index:
        verdict = {"metaindex": "changed", "past_end": "fail", "empty": "fail", "long": "fail"}.get(
            how, "same"
        )

    def edit(index: tables.IndexEntries) -> tables.IndexEntries:
        i = rng.randrange(len(index))
        key, handle = index[i]
        if how == "past_end":
            index[i] = (key, BlockHandle(handle.offset + (1 << 40), handle.size))
        elif how == "previous" and i > 0:
            index[i] = (key, index[i - 1][1])
        elif how == "self":
            index[i] = (key, tables.SELF)
        elif how == "metaindex":
            last = index[-1][1]
            index[i] = (key, BlockHandle(last.offset + last.size + 5, 8))
        elif how == "empty":
            index[i] = (key, BlockHandle(handle.offset, 0))
        elif how == "long":
            index[i] = (key, BlockHandle(handle.offset, handle.size + 7))
        elif how == "swap" and i + 1 < len(index):
            index[i], index[i + 1] = index[i + 1], index[i]
        return index

    layout = tables.Layout(block_entries=rng.choice((1, 2, 4)))
    return tables.encode_table(entries, layout, edit_index=edit), f"index handle: {how}", verdict


def footer(rng: random.Random, entries: Entries, is_index: bool) -> tuple[bytes, str, str]:
    """The footer's index handle at the metaindex block, a data block or past the end, or
    its (unused) metaindex handle past the end."""
    how = rng.choice(["index_at_metaindex", "index_at_data", "index_past_end", "metaindex"])

    def edit(found: Footer) -> Footer:
        if how == "index_at_metaindex":
            return Footer(found.metaindex, found.metaindex)
        if how == "index_at_data":
            return Footer(found.metaindex, BlockHandle(0, found.metaindex.offset - 5))
        if how == "index_past_end":
            return Footer(found.metaindex, BlockHandle(found.index.offset + 4096, 10))
        return Footer(BlockHandle(1 << 40, 1 << 20), found.index)

    verdict = {"index_at_data": "changed", "metaindex": "same"}.get(how, "fail")
    data = tables.encode_table(entries, tables.Layout(), edit_footer=edit)
    return data, f"footer: {how}", verdict


MUTATIONS: tuple[tuple[TableMutation, int], ...] = (
    (relayout, 3),
    (lying_compression, 2),
    (restarts, 2),
    (garbage_block, 2),
    (handles, 3),
    (footer, 2),
)


def mutate(rng: random.Random, entries: Entries, is_index: bool) -> tuple[bytes, str, str]:
    mutations, weights = zip(*MUTATIONS)
    return rng.choices(mutations, weights)[0](rng, entries, is_index)
