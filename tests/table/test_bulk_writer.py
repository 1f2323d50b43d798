"""TableWriter's bulk block building against a per-key reference of table_builder.cc.

The reference below is TableBuilder::Add / Flush / Finish entry by entry over
:class:`BlockBuilder` (whose own bytes are checked against block_builder.cc's byte loop in
test_table_encoding.py).  The writer builds its data blocks in bulk (shared prefixes, block
ends and block bytes with NumPy); these tests prove it writes the same bytes for any sorted
keys: block boundaries anywhere, oversized entries, shared prefixes longer than the
vectorised comparison width, batches split at any point and mixed with :meth:`add`.
"""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfckpt.table.block import BlockBuilder
from tfckpt.table.format import (
    NO_COMPRESSION,
    BlockHandle,
    Footer,
    block_trailer,
    encode_varint,
    encode_varint_array,
)
from tfckpt.table.reader import TableReader
from tfckpt.table.writer import JoinedValues, TableWriter, short_successor, shortest_separator


def _reference_table(entries, block_size=262144, restart_interval=16) -> bytes:
    """table_builder.cc, one entry at a time."""
    out = bytearray()
    data = BlockBuilder(restart_interval)
    index = BlockBuilder(1)
    pending = None
    last = None

    def write(contents: bytes) -> BlockHandle:
        handle = BlockHandle(len(out), len(contents))
        out.extend(contents + block_trailer(contents, NO_COMPRESSION))
        return handle

    def flush():
        nonlocal pending
        if not data.empty():
            pending = write(data.finish())

    for key, value in entries:
        if last is not None and len(key) + len(value) >= 2 * block_size:
            flush()
        if pending is not None:
            index.add(shortest_separator(last, key), pending.encode())
            pending = None
        last = key
        data.add(key, value)
        if data.size_estimate() >= block_size:
            flush()
    flush()
    metaindex = write(BlockBuilder().finish())
    if pending is not None:
        index.add(short_successor(last), pending.encode())
    index_handle = write(index.finish())
    out.extend(Footer(metaindex, index_handle).encode())
    return bytes(out)


def _bulk(entries, split=(), **options) -> bytes:
    """The writer's bytes, the entries given in add_sorted batches cut at ``split``."""
    f = io.BytesIO()
    writer = TableWriter(f, **options)
    cuts = [0, *sorted(split), len(entries)]
    for a, b in itertools.pairwise(cuts):
        keys = [k for k, _ in entries[a:b]]
        writer.add_sorted(keys, [v for _, v in entries[a:b]])
    size = writer.finish()
    assert size == len(f.getvalue())
    return f.getvalue()


# Keys from a small alphabet share long prefixes; lengths cross the varint and the
# vectorised-comparison widths (128 bytes).
KEYS = st.sets(
    st.one_of(
        st.binary(max_size=12),
        st.builds(lambda n, tail: b"p" * n + tail, st.integers(0, 300), st.binary(max_size=3)),
        st.text("ab/\x00\xff", max_size=40).map(lambda s: s.encode("latin-1")),
    ),
    max_size=120,
)
VALUE_SIZES = st.lists(st.sampled_from([0, 1, 5, 127, 128, 300, 2000]), min_size=1)


def _entries(keys, sizes):
    return [(k, bytes([i % 251]) * sizes[i % len(sizes)]) for i, k in enumerate(sorted(keys))]


@settings(max_examples=300, deadline=None)
@given(
    keys=KEYS,
    sizes=VALUE_SIZES,
    block_size=st.sampled_from([1, 16, 64, 200, 1024, 4096, 262144]),
    restart_interval=st.sampled_from([1, 2, 3, 16]),
    data=st.data(),
)
def test_bulk_blocks_match_the_per_key_reference(keys, sizes, block_size, restart_interval, data):
    """Any sorted keys, value sizes, block sizes (so block boundaries anywhere, and values
    of twice the block size that get a block of their own) and restart intervals, given in
    any split into batches."""
    entries = _entries(keys, sizes)
    split = data.draw(st.lists(st.integers(0, len(entries)), max_size=3))
    expected = _reference_table(entries, block_size, restart_interval)
    options = {"block_size": block_size, "restart_interval": restart_interval}
    assert _bulk(entries, split, **options) == expected


@settings(max_examples=100, deadline=None)
@given(keys=KEYS, sizes=VALUE_SIZES, block_size=st.sampled_from([32, 300, 4096]), data=st.data())
def test_add_and_add_sorted_mixed_match_the_reference(keys, sizes, block_size, data):
    """add() is a batch of one: any mixture of add() and add_sorted() gives the same bytes,
    also when a batch arrives while the writer holds an unfinished block."""
    entries = _entries(keys, sizes)
    singles = data.draw(st.sets(st.integers(0, max(len(entries) - 1, 0))))
    f = io.BytesIO()
    writer = TableWriter(f, block_size=block_size)
    batch: list[tuple[bytes, bytes]] = []
    for i, (key, value) in enumerate(entries):
        if i in singles:
            if batch:
                writer.add_sorted([k for k, _ in batch], [v for _, v in batch])
                batch = []
            writer.add(key, value)
        else:
            batch.append((key, value))
    if batch:
        writer.add_sorted([k for k, _ in batch], [v for _, v in batch])
    writer.finish()
    assert f.getvalue() == _reference_table(entries, block_size)


def test_many_blocks_of_model_like_names_and_many_adds():
    """20,000 model-like keys (the W2 index) over several default-sized blocks; one
    add_sorted, or add() per key (built a few blocks at a time), or JoinedValues."""
    kinds = ("dense/kernel", "dense/bias", "ln/gamma", "ln/beta")
    keys = sorted(f"model/layer_{i // 4}/{kinds[i % 4]}".encode() for i in range(20_000))
    rng = np.random.default_rng(0)
    values = [rng.bytes(int(n)) for n in rng.integers(10, 60, len(keys))]
    entries = list(zip(keys, values))
    expected = _reference_table(entries)
    assert _bulk(entries) == expected
    f = io.BytesIO()
    writer = TableWriter(f)
    for key, value in entries:
        writer.add(key, value)
    writer.finish()
    assert f.getvalue() == expected
    f = io.BytesIO()
    writer = TableWriter(f)
    lengths = np.fromiter(map(len, values), np.int64, len(values))
    writer.add_sorted(keys, JoinedValues(b"".join(values), lengths))
    writer.finish()
    assert f.getvalue() == expected
    reader = TableReader(f.getvalue(), "w2.index")
    assert reader.num_blocks > 3
    assert list(reader.items()) == entries


def test_shared_prefix_longer_than_the_comparison_width():
    """Keys that share far more than 128 leading bytes (measured again one by one)."""
    stem = b"s" * 1000
    entries = [(stem + bytes([i]) + b"x" * i, b"v") for i in range(40)]
    entries.insert(0, (stem, b"first"))
    assert _bulk(entries) == _reference_table(entries)
    assert _bulk(entries, block_size=256) == _reference_table(entries, 256)


def test_huge_value_gets_its_own_block():
    """A value of at least twice the block size is a block of its own, between others."""
    entries = [(b"a", b"1"), (b"b", b"x" * 600), (b"c", b"2"), (b"d", b"y" * 5000)]
    for block_size in (100, 300, 2500):
        assert _bulk(entries, block_size=block_size) == _reference_table(entries, block_size)


def test_empty_and_single_entry_tables():
    assert _bulk([]) == _reference_table([])
    assert _bulk([(b"", b"")]) == _reference_table([(b"", b"")])
    assert _bulk([(b"k", b"v")], split=[0, 1]) == _reference_table([(b"k", b"v")])


def test_add_sorted_rejects_bad_batches():
    """Out-of-order or duplicate keys (within a batch or after earlier keys), mismatched
    value counts or joined lengths, a finished writer: ValueError, nothing written."""
    writer = TableWriter(io.BytesIO())
    writer.add_sorted([b"b", b"d"], [b"", b""])
    with pytest.raises(ValueError, match="strictly increasing"):
        writer.add_sorted([b"c"], [b""])
    with pytest.raises(ValueError, match="strictly increasing"):
        writer.add_sorted([b"e", b"g", b"f"], [b"", b"", b""])
    with pytest.raises(ValueError, match="strictly increasing"):
        writer.add_sorted([b"e", b"e"], [b"", b""])
    with pytest.raises(ValueError, match="2 keys but 1 values"):
        writer.add_sorted([b"e", b"f"], [b""])
    with pytest.raises(ValueError, match="add up"):
        writer.add_sorted([b"e"], JoinedValues(b"abc", np.array([2])))
    with pytest.raises(ValueError, match="non-negative"):
        writer.add_sorted([b"e", b"f"], JoinedValues(b"", np.array([1, -1])))
    writer.add_sorted([b"e"], [b"ok"])
    writer.finish()
    with pytest.raises(ValueError, match="finished"):
        writer.add_sorted([b"z"], [b""])
    with pytest.raises(ValueError, match="finished"):
        writer.finish()


def test_rejects_a_block_size_or_restart_interval_below_one():
    with pytest.raises(ValueError, match="restart_interval"):
        TableWriter(io.BytesIO(), restart_interval=0)
    with pytest.raises(ValueError, match="block_size"):
        TableWriter(io.BytesIO(), block_size=0)


@given(st.lists(st.integers(0, 2**64 - 1), max_size=50))
def test_varint_array_matches_encode_varint(values):
    """The vectorised varint encoder against the one-value encoder, any uint64."""
    encoded, widths = encode_varint_array(np.array(values, np.uint64))
    assert encoded.tobytes() == b"".join(map(encode_varint, values))
    assert widths.tolist() == [len(encode_varint(v)) for v in values]
