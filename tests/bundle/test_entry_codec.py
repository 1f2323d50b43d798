"""Bulk decoding of tables (tfckpt.table.bulk) and the entry codec (tfckpt.bundle.entry_codec).

Both are caches of the entry-by-entry decoders, so every test compares them with those:
``parse_block`` / ``TableReader.items()`` for tables and protobuf for ``BundleEntryProto``.
The tables' data blocks are extracted here from the file bytes directly (footer, index
block, trailers), independently of ``TableReader``.
"""

from __future__ import annotations

import glob
import io
import itertools
import json
import math
import os
import struct

import cramjam
import numpy as np
import pytest
from google.protobuf import unknown_fields
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import tfckpt
from tests.conftest import CORPUS, FIXTURES, fixture_files
from tfckpt import checksum
from tfckpt.bundle.entry_codec import (
    decode_entries,
    encode_entries,
    encode_header,
    partitioned_entry,
)
from tfckpt.errors import DataLossError
from tfckpt.proto import tensor_bundle_pb2
from tfckpt.table.block import BlockBuilder, parse_block
from tfckpt.table.bulk import PADDING, decode_blocks
from tfckpt.table.format import (
    BLOCK_TRAILER_SIZE,
    FOOTER_SIZE,
    NO_COMPRESSION,
    SNAPPY_COMPRESSION,
    BlockHandle,
    Footer,
    block_trailer,
    encode_varint,
)
from tfckpt.table.reader import TableReader
from tfckpt.table.writer import TableWriter
from tfckpt.tensor_slice import TensorSlice

Entry = tensor_bundle_pb2.BundleEntryProto
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- every table of the fixtures and the corpus ----------------------------------------------


def _manifest_tables(root, manifest_name="MANIFEST.json"):
    """Every table file (V2 ``.index`` and V1 checkpoint files) under ``root``."""
    found = {str(p) for p in fixture_files(root, "*.index")}
    manifest = os.path.join(root, manifest_name)
    if os.path.isfile(manifest):
        with open(manifest, encoding="utf-8") as f:
            entries = json.load(f)
        for entry in entries:
            if entry["format"] == "v1":
                # The path is the file itself or a glob of its shards (-?????-of-NNNNN).
                found.update(p for p in glob.glob(os.path.join(root, entry["path"])))
    return sorted(found)


TABLE_FILES = _manifest_tables(FIXTURES) + _manifest_tables(CORPUS)


def _rel(path):
    for root in (FIXTURES, CORPUS):
        if path.startswith(str(root)):
            return os.path.relpath(path, root)
    return path  # pragma: no cover


def test_table_files_found():
    assert len(TABLE_FILES) > 40
    assert any(not p.endswith(".index") for p in TABLE_FILES)  # V1 files are there too


def _data_blocks(data: bytes) -> list[bytes]:
    """The decompressed contents of every data block of the table ``data``, in order."""
    footer = Footer.decode(data[-FOOTER_SIZE:], "test")
    index = data[footer.index.offset : footer.index.offset + footer.index.size]
    _, handles = parse_block(index, "test")
    blocks = []
    for value in handles:
        handle, _ = BlockHandle.decode(value, 0, "test")
        contents = data[handle.offset : handle.offset + handle.size]
        kind = data[handle.offset + handle.size]
        if kind == SNAPPY_COMPRESSION:
            contents = bytes(cramjam.snappy.decompress_raw(contents))
        else:
            assert kind == NO_COMPRESSION
        blocks.append(contents)
    return blocks


def _reference(blocks):
    """Keys and values decoded entry by entry with parse_block."""
    keys, values = [], []
    for block in blocks:
        k, v = parse_block(block, "test")
        keys.extend(k)
        values.extend(v)
    return keys, values


def _assert_same(entries, keys, values):
    assert len(entries) == len(keys)
    assert entries.keys == keys
    assert [entries.value(i) for i in range(len(entries))] == values
    assert entries.names() == [k.decode("utf-8", "surrogateescape") for k in keys]
    # The padding the entry decoder relies on.
    assert len(entries.data) >= PADDING
    assert not entries.data[len(entries.data) - PADDING :].any()


@pytest.mark.parametrize("path", TABLE_FILES, ids=_rel)
def test_bulk_decoding_of_real_tables_equals_entry_by_entry(path):
    reader = TableReader.open(path)
    items = list(reader.items())
    entries = reader.entries()
    _assert_same(entries, [k for k, _ in items], [v for _, v in items])
    with open(path, "rb") as f:
        blocks = _data_blocks(f.read())
    direct = decode_blocks(blocks, path)
    _assert_same(direct, *_reference(blocks))


# -- hypothesis-generated tables -------------------------------------------------------------

_SPECIAL = [0, 1, 10, 0x2F, 0x41, 0x42, 0x7F, 0x80, 0xC3, 0xE6, 0xFE, 0xFF]
_pieces = st.lists(st.sampled_from(_SPECIAL), max_size=6).map(bytes)
_prefixes = st.sampled_from([b"", b"model/layer_", b"\x00slice\x00", b"x" * 130, b"\xff\xfe"])
_keys = st.builds(lambda a, b: a + b, _prefixes, _pieces) | st.binary(min_size=128, max_size=200)


@st.composite
def _values(draw):
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return b""
    if kind == 1:  # > 16 KiB: a three-byte varint length
        n = draw(st.integers(16 * 1024 + 1, 20000))
        return bytes([draw(st.integers(0, 255))]) * n
    return draw(st.binary(max_size=300))


@st.composite
def _tables(draw):
    keys = sorted(set(draw(st.lists(_keys, max_size=80))))
    values = [draw(_values()) for _ in keys]
    interval = draw(st.sampled_from([1, 2, 16, 1000]))
    block_size = draw(st.sampled_from([64, 256, 4096]))
    return keys, values, interval, block_size


def _write_table(keys, values, interval=16, block_size=4096):
    out = io.BytesIO()
    writer = TableWriter(out, block_size=block_size, restart_interval=interval)
    for key, value in zip(keys, values):
        writer.add(key, value)
    writer.finish()
    return out.getvalue()


@SETTINGS
@given(_tables())
def test_bulk_decoding_of_generated_tables(table):
    """Random sorted keys (NULs, newlines, non-UTF-8, long), values (empty, > 16 KiB),
    restart intervals 1, 2, 16 and 1000 (groups longer than the lock step's limit)."""
    keys, values, interval, block_size = table
    data = _write_table(keys, values, interval, block_size)
    reader = TableReader(data, "generated.index")
    items = list(reader.items())
    assert [k for k, _ in items] == keys
    _assert_same(reader.entries(), keys, values)
    blocks = _data_blocks(data)
    _assert_same(decode_blocks(blocks, "x"), keys, values)


@SETTINGS
@given(_tables(), st.sampled_from(["dense", "ragged"]))
def test_both_key_rebuilding_paths_agree_with_parse_block(table, path):
    """Keys are rebuilt in a matrix (similar lengths) or by ragged copies (one long key
    among short ones); each path alone gives parse_block's keys."""
    from tfckpt.table import bulk

    keys, values, interval, block_size = table
    blocks = _data_blocks(_write_table(keys, values, interval, block_size))
    saved = bulk._DENSE_FACTOR, bulk._DENSE_SLACK
    dense_calls = []
    original = bulk._build_keys_dense

    def spy(*args):
        dense_calls.append(1)
        return original(*args)

    try:
        # A huge factor always fits the matrix (keys up to KEY_PADDING long); 0 never does.
        bulk._DENSE_FACTOR, bulk._DENSE_SLACK = (10**9, 0) if path == "dense" else (0, 0)
        bulk._build_keys_dense = spy
        _assert_same(decode_blocks(blocks, "x"), keys, values)
    finally:
        bulk._DENSE_FACTOR, bulk._DENSE_SLACK = saved
        bulk._build_keys_dense = original
    if path == "ragged" or any(len(k) >= bulk.KEY_PADDING for k in keys):
        assert not dense_calls
    elif keys:
        assert dense_calls


@pytest.mark.parametrize("long_key", [255, 256, 300, 5000])
def test_long_keys_among_short_ones(long_key):
    """Keys longer than the matrix padding, or far longer than the rest, take the ragged
    path; keys just below it the matrix."""
    keys = sorted({b"a/%04d" % i for i in range(500)} | {b"a/0100" + b"x" * (long_key - 6)})
    values = [b"v%d" % i for i in range(len(keys))]
    data = _write_table(keys, values, 16, 4096)
    _assert_same(TableReader(data, "t").entries(), keys, values)
    _assert_same(decode_blocks(_data_blocks(data), "x"), keys, values)


def test_generated_table_spans_several_blocks_and_long_groups():
    keys = [b"key/%05d\n\x00\xff" % i for i in range(3000)]
    values = [bytes([i % 256]) * (i % 7) for i in range(3000)]
    for interval in (1, 2, 16, 1000, 5000):
        data = _write_table(keys, values, interval, 4096)
        blocks = _data_blocks(data)
        assert len(blocks) > 5
        _assert_same(TableReader(data, "t").entries(), keys, values)


def test_empty_table():
    data = _write_table([], [])
    entries = TableReader(data, "empty").entries()
    assert len(entries) == 0
    assert entries.keys == [] and entries.names() == []


def test_names_of_non_utf8_and_newline_keys():
    keys = [b"", b"\n", b"a\nb", b"\x80", b"\xe6\x97", b"\xe6\x97\xa5", b"\xff\n\xfe"]
    keys.sort()
    data = _write_table(keys, [b"v"] * len(keys))
    entries = TableReader(data, "t").entries()
    assert entries.keys == keys
    assert entries.names() == [k.decode("utf-8", "surrogateescape") for k in keys]
    # And without newlines (the one-pass split).
    keys = sorted([b"a", b"\x80b", b"\xe6\x97", b"\xe6\x97\xa5", b"\xffz"])
    entries = TableReader(_write_table(keys, [b""] * len(keys)), "t").entries()
    assert entries.names() == [k.decode("utf-8", "surrogateescape") for k in keys]


# -- hand-built blocks ---------------------------------------------------------------------


def _entry(shared, key_delta, value, *, unshared=None, value_len=None):
    return (
        encode_varint(shared)
        + encode_varint(len(key_delta) if unshared is None else unshared)
        + encode_varint(len(value) if value_len is None else value_len)
        + key_delta
        + value
    )


def _block(keys, values, restart_every=None, restarts=None):
    """A block of ``keys`` with shared prefixes, full keys at the entries in
    ``restart_every`` (indices; default: the first) and the restart array ``restarts``
    (default: the offsets of those entries)."""
    full_at = set(restart_every or [0])
    body = bytearray()
    offsets = []
    previous = b""
    for i, (key, value) in enumerate(zip(keys, values)):
        shared = 0
        if i not in full_at:
            while shared < min(len(key), len(previous)) and key[shared] == previous[shared]:
                shared += 1
        offsets.append(len(body))
        body += _entry(shared, key[shared:], value)
        previous = key
    if restarts is None:
        restarts = [offsets[i] for i in sorted(full_at)]
    return bytes(body) + b"".join(struct.pack("<I", r) for r in restarts) + struct.pack(
        "<I", len(restarts)
    ), offsets


KEYS = [b"alpha", b"alphabet", b"alps", b"beta", b"betamax", b"gamma", b"gammaray", b"z"]
VALUES = [b"1", b"", b"333", b"4" * 200, b"5", b"66", b"", b"8"]


def _irregular_blocks():
    block, offsets = _block(KEYS, VALUES, restart_every=[0, 3, 6])
    cases = {}
    cases["regular"] = block
    # Restart array lists fewer points than there are full keys: still consistent.
    cases["subset_of_restarts"] = _block(KEYS, VALUES, [0, 3, 6], [offsets[0], offsets[6]])[0]
    # Restart points at entries with shared > 0.
    cases["restart_at_shared_entry"] = _block(KEYS, VALUES, [0], [0, offsets[1], offsets[4]])[0]
    cases["first_restart_not_zero"] = _block(KEYS, VALUES, [0, 3], [offsets[3]])[0]
    cases["decreasing"] = _block(KEYS, VALUES, [0, 3, 6], [0, offsets[6], offsets[3]])[0]
    cases["duplicate"] = _block(KEYS, VALUES, [0, 3], [0, offsets[3], offsets[3]])[0]
    cases["past_limit"] = _block(KEYS, VALUES, [0], [0, 100000])[0]
    cases["mid_entry"] = _block(KEYS, VALUES, [0], [0, offsets[3] + 2])[0]
    cases["zero_only"] = _block(KEYS, VALUES, [0], [0])[0]
    many = [b"k%04d" % i for i in range(300)]
    cases["group_of_300"] = _block(many, [b"v"] * 300, [0], [0])[0]
    cases["all_restarts"] = _block(many, [b"v"] * 300, list(range(300)))[0]
    return cases


@pytest.mark.parametrize("name", list(_irregular_blocks()))
def test_irregular_restart_arrays_decode_as_entry_by_entry(name):
    block = _irregular_blocks()[name]
    keys, values = parse_block(block, "x")
    assert len(keys) in (len(KEYS), 300)
    _assert_same(decode_blocks([block], "x"), keys, values)
    # Next to regular blocks, in one table.
    other, _ = _block([b"zz1", b"zz2"], [b"a", b"b"])
    first, _ = _block([b"0", b"01"], [b"", b"x"])
    blocks = [first, block, other]
    _assert_same(decode_blocks(blocks, "x"), *_reference(blocks))


FALLS_BACK = {
    "regular": False,
    "subset_of_restarts": False,
    "all_restarts": False,
    "zero_only": False,
    "restart_at_shared_entry": True,
    "first_restart_not_zero": True,
    "decreasing": True,
    "duplicate": True,
    "past_limit": True,
    "mid_entry": True,
    "group_of_300": True,
}


@pytest.mark.parametrize("name", sorted(FALLS_BACK))
def test_lockstep_is_used_for_regular_blocks_only(name, monkeypatch):
    """The lock-step decoder handles what TableBuilder writes; the rest falls back."""
    from tfckpt.table import bulk

    calls = []
    original = bulk._decode_one_by_one

    def spy(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(bulk, "_decode_one_by_one", spy)
    block = _irregular_blocks()[name]
    _assert_same(decode_blocks([block], "x"), *parse_block(block, "x"))
    assert bool(calls) == FALLS_BACK[name]


def test_tensorflow_tables_take_the_lockstep_path(monkeypatch):
    from tfckpt.table import bulk

    def fail(*args):
        raise AssertionError("fell back to entry-by-entry decoding")

    monkeypatch.setattr(bulk, "_decode_one_by_one", fail)
    for path in TABLE_FILES:
        TableReader.open(path).entries()
    keys = [b"k%05d" % i for i in range(2000)]
    TableReader(_write_table(keys, keys, 16, 4096), "t").entries()


def test_empty_blocks_are_skipped():
    empty = struct.pack("<II", 0, 1)
    block, _ = _block(KEYS, VALUES)
    entries = decode_blocks([empty, block, empty], "x")
    _assert_same(entries, KEYS, VALUES)
    assert len(decode_blocks([empty], "x")) == 0
    assert len(decode_blocks([], "x")) == 0


# -- corruption: DataLossError naming the file -----------------------------------------------


def _table_of_blocks(blocks):
    """A table file whose data blocks are exactly ``blocks`` (valid trailers)."""
    out = bytearray()
    index = BlockBuilder(1)
    for i, contents in enumerate(blocks):
        handle = BlockHandle(len(out), len(contents))
        out += contents + block_trailer(contents, NO_COMPRESSION)
        index.add(b"sep%05d" % i, handle.encode())
    meta_contents = BlockBuilder().finish()
    metaindex = BlockHandle(len(out), len(meta_contents))
    out += meta_contents + block_trailer(meta_contents, NO_COMPRESSION)
    index_contents = index.finish()
    index_handle = BlockHandle(len(out), len(index_contents))
    out += index_contents + block_trailer(index_contents, NO_COMPRESSION)
    out += Footer(metaindex, index_handle).encode()
    assert BLOCK_TRAILER_SIZE == 5
    return bytes(out)


def _corrupt_blocks():
    good, offsets = _block(KEYS, VALUES, restart_every=[0, 3, 6])
    limit = len(good) - 4 - 4 * 3
    cases = {}
    cases["too_short"] = [good[:3]]
    cases["truncated"] = [good[: offsets[4] + 2] + good[limit:]]
    cases["truncated_mid_value"] = [good[: offsets[3] + 50] + good[limit:]]
    cases["restart_count_zero"] = [good[:-4] + struct.pack("<I", 0)]
    cases["restart_count_huge"] = [good[:-4] + struct.pack("<I", 0xFFFFFFFF)]
    cases["restart_count_too_big"] = [good[:-4] + struct.pack("<I", len(good) // 4)]
    # shared > previous key length (second entry of a group).
    body = _entry(0, b"ab", b"1") + _entry(5, b"c", b"2")
    cases["shared_too_long"] = [body + struct.pack("<II", 0, 1)]
    # ... also in a lock-step-regular block with two groups.
    body = _entry(0, b"ab", b"1") + _entry(1, b"c", b"2")
    second = len(body)
    body += _entry(0, b"x", b"3") + _entry(9, b"y", b"4")
    cases["shared_too_long_second_group"] = [body + struct.pack("<III", 0, second, 2)]
    cases["first_entry_shares"] = [_entry(2, b"ab", b"1") + struct.pack("<II", 0, 1)]
    # Keys out of order: inside a block, across blocks, equal keys.
    cases["out_of_order"] = [_block([b"b", b"a"], [b"", b""], [0, 1])[0]]
    cases["equal_keys"] = [_block([b"a", b"a"], [b"", b""], [0, 1])[0]]
    cases["out_of_order_across_blocks"] = [
        _block([b"m", b"n"], [b"", b""])[0],
        _block([b"a", b"b"], [b"", b""])[0],
    ]
    cases["out_of_order_non_ascii"] = [_block([b"\xff", b"\x80"], [b"", b""], [0, 1])[0]]
    # A value running past the block (into the restart array and beyond).
    cases["value_past_block"] = [
        _entry(0, b"k", b"", value_len=1000) + b"vvvv" + struct.pack("<II", 0, 1)
    ]
    cases["value_into_restarts"] = [
        _entry(0, b"k", b"", value_len=6) + b"vvvv" + struct.pack("<II", 0, 1)
    ]
    cases["key_past_block"] = [_entry(0, b"k", b"", unshared=500) + struct.pack("<II", 0, 1)]
    cases["varint_past_block"] = [b"\x00\x01\xff\xff\xff" + struct.pack("<II", 0, 1)]
    cases["overlong_varint"] = [b"\x00\x01\xff\xff\xff\xff\xff\x01k" + struct.pack("<II", 0, 1)]
    cases["header_into_restarts"] = [b"\x00" + struct.pack("<II", 0, 1)]
    return cases


@pytest.mark.parametrize("name", list(_corrupt_blocks()))
def test_corrupt_blocks_raise_data_loss_naming_the_file(name, tmp_path):
    blocks = _corrupt_blocks()[name]
    with pytest.raises(DataLossError) as direct:
        decode_blocks(blocks, "where/it/is.index")
    assert "where/it/is.index" in str(direct.value)
    path = tmp_path / "corrupt.index"
    path.write_bytes(_table_of_blocks(blocks))
    reader = TableReader.open(path)
    with pytest.raises(DataLossError) as bulk:
        reader.entries()
    assert str(path) in str(bulk.value)
    assert bulk.value.path == str(path)
    with pytest.raises(DataLossError):  # and the entry-by-entry reader agrees
        list(reader.items())


def _mutate(data: bytes, edits) -> bytes:
    out = bytearray(data)
    for kind, position, byte in edits:
        if not out:
            break
        i = position % len(out)
        if kind == 0:
            out[i] = byte
        elif kind == 1:
            out.insert(i, byte)
        elif kind == 2:
            del out[i]
        else:
            del out[i:]
    return bytes(out)


_edits = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 1 << 20), st.integers(0, 255)),
    min_size=1,
    max_size=4,
)


@SETTINGS
@given(_tables(), _edits, st.integers(0, 100))
def test_mutated_blocks_decode_as_entry_by_entry_or_raise_data_loss(table, edits, which):
    """Whatever the bytes of a block, the bulk decoder gives exactly parse_block's entries
    (when those are in order) or raises DataLossError naming the file, nothing else."""
    keys, values, interval, block_size = table
    blocks = _data_blocks(_write_table(keys, values, interval, block_size))
    assume(blocks)
    i = which % len(blocks)
    blocks[i] = _mutate(blocks[i], edits)
    try:
        ref_keys, ref_values = _reference(blocks)
        ok = all(a < b for a, b in itertools.pairwise(ref_keys))
    except DataLossError:
        ok = False
    if ok:
        _assert_same(decode_blocks(blocks, "mutated.index"), ref_keys, ref_values)
    else:
        with pytest.raises(DataLossError, match=r"mutated\.index"):
            decode_blocks(blocks, "mutated.index")


# -- bundle entries (tfckpt.bundle.entry_codec) vs protobuf ----------------------------------------


def _padded(blobs):
    """``(data, starts, lengths)`` as TableEntries holds them: the blobs one after another,
    then PADDING zero bytes."""
    lengths = np.array([len(b) for b in blobs], np.int64)
    starts = np.zeros(len(blobs), np.int64)
    if len(blobs):
        np.cumsum(lengths[:-1], out=starts[1:])
    joined = b"".join(blobs)
    data = np.zeros(len(joined) + PADDING, np.uint8)
    data[: len(joined)] = np.frombuffer(joined, np.uint8)
    return data, starts, lengths


def _has_unknown(message):
    if len(unknown_fields.UnknownFieldSet(message)):
        return True
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        items = value if field.is_repeated else [value]
        if any(_has_unknown(item) for item in items):
            return True
    return False


def _parse(blob):
    try:
        return Entry.FromString(blob)
    except Exception:  # protobuf's DecodeError
        return None


def _expected_elements(dims):
    return math.prod(dims)


def _check_columns(blobs, columns):
    """Regular entries equal protobuf's parse; entries protobuf fails on, or that hold
    anything beyond the plain fields, are irregular."""
    shapes = columns.shapes
    assert shapes == columns.shape_lists()
    for i, blob in enumerate(blobs):
        entry = _parse(blob)
        plain = (
            entry is not None
            and not entry.slices
            and not entry.shape.unknown_rank
            and all(d.size >= 0 and not d.name for d in entry.shape.dim)
            and not _has_unknown(entry)
        )
        if not columns.regular[i]:
            assert shapes[i] is None
            continue
        assert plain, (blob.hex(), entry)
        assert columns.dtype[i] == entry.dtype
        assert columns.shard_id[i] == entry.shard_id
        assert columns.offset[i] == entry.offset
        assert columns.size[i] == entry.size
        assert columns.crc32c[i] == checksum.unmask(entry.crc32c)
        dims = [d.size for d in entry.shape.dim]
        assert shapes[i] == dims
        assert all(type(d) is int for d in shapes[i])
        assert columns.rank[i] == len(dims)
        count = _expected_elements(dims)
        got = int(columns.num_elements[i])
        if count < 2**61:
            assert got == count
        elif count >= 2**63:
            assert got == -1
        else:
            assert got in (count, -1)


_int64 = st.one_of(
    st.integers(0, 2**62),
    st.sampled_from([0, 1, 127, 128, 2**31 - 1, 2**31, 2**32, 2**62, 2**63 - 1]),
    st.integers(-(2**63), -1),
)
_int32 = st.one_of(st.integers(0, 2**31 - 1), st.sampled_from([0, 1, 2**31 - 1, -1, -(2**31)]))
_dim = st.one_of(st.integers(0, 2**40), st.sampled_from([0, 1, 2**31, 2**40]), st.just(-1))


@st.composite
def _entries(draw):
    """A random BundleEntryProto: regular most of the time, with the irregular features
    (slices, dim names, unknown_rank, negative values, unknown fields, repeated shape)
    now and then."""
    entry = Entry()
    if draw(st.booleans()):
        entry.dtype = draw(st.one_of(st.integers(0, 30), st.sampled_from([100, 2**31 - 1, -1])))
    if draw(st.integers(0, 4)):
        entry.shard_id = draw(_int32) if draw(st.integers(0, 3)) == 0 else draw(st.integers(0, 9))
    if draw(st.booleans()):
        entry.offset = draw(_int64) if draw(st.integers(0, 3)) == 0 else draw(st.integers(0, 2**62))
    if draw(st.booleans()):
        entry.size = draw(_int64) if draw(st.integers(0, 3)) == 0 else draw(st.integers(0, 2**62))
    if draw(st.booleans()):
        entry.crc32c = draw(st.integers(0, 2**32 - 1))
    has_shape = draw(st.integers(0, 3))
    if has_shape:
        entry.shape.SetInParent()
        rank = draw(st.integers(0, 6))
        for _ in range(rank):
            dim = entry.shape.dim.add()
            dim.size = draw(_dim) if draw(st.integers(0, 5)) == 0 else draw(st.integers(0, 2**40))
            if draw(st.integers(0, 15)) == 0:
                dim.name = draw(st.sampled_from(["", "batch", "x"]))
        if draw(st.integers(0, 15)) == 0:
            entry.shape.unknown_rank = draw(st.booleans())
    if draw(st.integers(0, 10)) == 0:
        piece = entry.slices.add()
        extent = piece.extent.add()
        if draw(st.booleans()):
            extent.start = draw(st.integers(0, 10))
            extent.length = draw(st.integers(0, 10))
    blob = entry.SerializeToString()
    extra = draw(st.integers(0, 12))
    if extra == 1:  # an unknown varint field
        blob += encode_varint(draw(st.integers(8, 2000)) << 3) + encode_varint(5)
    elif extra == 2:  # a repeated (merged) shape
        blob += b"\x12\x02\x12\x00"
    elif extra == 3:  # unknown field inside the shape
        blob += b"\x12\x02\x20\x01"
    elif extra == 4:  # fields out of the usual order, scalars repeated (last one wins)
        blob = b"\x20\x07\x08\x01" + blob + b"\x18\x02"
    elif extra == 5:  # a non-minimal varint
        blob += b"\x28\x85\x80\x80\x00"
    return blob


@SETTINGS
@given(st.lists(_entries(), min_size=1, max_size=12))
def test_decode_entries_agrees_with_protobuf(blobs):
    columns = decode_entries(*_padded(blobs))
    _check_columns(blobs, columns)


@SETTINGS
@given(st.lists(st.tuples(_entries(), _edits), min_size=1, max_size=8))
def test_decode_entries_on_mutated_bytes(cases):
    """Random byte edits: every entry is either regular and equal to protobuf's parse or
    irregular (never an exception)."""
    blobs = [_mutate(blob, edits) for blob, edits in cases]
    columns = decode_entries(*_padded(blobs))
    _check_columns(blobs, columns)


@SETTINGS
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=8))
def test_decode_entries_on_garbage(blobs):
    _check_columns(blobs, decode_entries(*_padded(blobs)))


def _plain(**fields):
    entry = Entry(**{k: v for k, v in fields.items() if k != "dims"})
    entry.shape.SetInParent()
    for d in fields.get("dims", []):
        entry.shape.dim.add().size = d
    return entry.SerializeToString()


def test_clean_entries_are_regular():
    """What the writers produce decodes in bulk (the fast path is really taken)."""
    blobs = [
        b"",
        _plain(),
        _plain(dtype=1, dims=[2, 3], offset=5, size=24, crc32c=0xDEADBEEF),
        _plain(dtype=19, shard_id=2**31 - 1, offset=2**62, size=2**62, dims=[0, 2**40]),
        _plain(dtype=9, dims=[2**40, 2**40]),  # 2**80 elements: counted as -1
        _plain(dtype=9, dims=[2**31, 2**31]),  # exactly 2**62
        _plain(dtype=9, dims=[1, 1, 1, 1, 1, 1]),
        _plain(dtype=9, dims=[2**40, 2**40, 0]),
        Entry(dtype=1, offset=3).SerializeToString(),  # no shape at all
        b"\x12\x02\x12\x00",  # a dim without a size (size 0)
        b"\x12\x04\x12\x02\x08\x00",  # size 0 written explicitly
        b"\x12\x02\x18\x00",  # unknown_rank = false written explicitly
        b"\x08\x01\x08\x02",  # repeated scalar: the last wins
        b"\x28\x85\x80\x80\x00",  # non-minimal varint
        b"\x20" + b"\xff" * 9 + b"\x00",  # 2**63 - 1 in ten bytes
    ]
    columns = decode_entries(*_padded(blobs))
    assert columns.regular.all(), columns.regular
    _check_columns(blobs, columns)
    assert columns.num_elements.tolist()[:9] == [1, 1, 6, 0, -1, -1, 1, 0, 1]


IRREGULAR = {
    "slices": Entry(dtype=1, slices=[{"extent": [{}]}]).SerializeToString(),
    "empty_slice": b"\x3a\x00",
    "dim_name": b"\x12\x07\x12\x05\x08\x02\x12\x01a",
    "dim_name_first": b"\x12\x07\x12\x05\x12\x01a\x08\x02",
    "unknown_rank": b"\x12\x02\x18\x01",
    "negative_dim": _plain(dims=[3, -1]),
    "repeated_dim_size": b"\x12\x06\x12\x04\x08\x02\x08\x03",
    "two_shapes": b"\x12\x02\x12\x00\x12\x02\x12\x00",
    "two_shapes_empty": b"\x12\x00\x12\x00",
    "unknown_field": b"\x08\x01\x40\x05",
    "unknown_field_16": b"\x80\x01\x05",
    "unknown_fixed64": b"\x09" + b"\x00" * 8,
    "unknown_shape_field": b"\x12\x02\x20\x01",
    "unknown_dim_field": b"\x12\x04\x12\x02\x18\x01",
    "wrong_wire_type": b"\x0a\x01\x00",
    "crc_as_varint": b"\x30\x05",
    "truncated_varint": b"\x20\xff",
    "truncated_crc": b"\x35\x01\x02",
    "truncated_shape": b"\x12\x05\x12\x00",
    "truncated_dim": b"\x12\x02\x12\x05",
    "dim_past_shape": b"\x12\x04\x12\x05\x08\x01\x08\x01",
    "garbage": b"\xff\xff\xff\xff",
    "field_zero": b"\x00\x00",
    "eleven_byte_varint": b"\x20" + b"\xff" * 10 + b"\x01",
    "offset_2_63": b"\x20" + b"\x80" * 9 + b"\x01",
    "negative_offset": Entry(offset=-5).SerializeToString(),
    "negative_size": Entry(size=-1).SerializeToString(),
    "negative_shard": Entry(shard_id=-1).SerializeToString(),
    "shard_2_31": b"\x18\x80\x80\x80\x80\x08",
    "dtype_2_32": b"\x08\x80\x80\x80\x80\x10",
    "negative_dtype": Entry(dtype=-3).SerializeToString(),
    "huge_shape_length": b"\x12\x80\x80\x80\x80\x10",
    "shape_length_2_62": b"\x12" + encode_varint(2**62),
}


@pytest.mark.parametrize("name", list(IRREGULAR))
def test_irregular_entries(name):
    blob = IRREGULAR[name]
    # Alone, first, and between regular entries.
    for blobs in ([blob], [blob, _plain(dims=[2])], [_plain(dims=[1]), blob, _plain(dims=[3])]):
        columns = decode_entries(*_padded(blobs))
        position = blobs.index(blob)
        assert not columns.regular[position], name
        assert columns.shapes[position] is None
        others = [i for i in range(len(blobs)) if i != position]
        assert columns.regular[others].all()
        _check_columns(blobs, columns)


OVERFLOWING_SHAPE = b"\x12" + b"\xff" * 8 + b"\x7f"  # shape length 2**63 - 1


@pytest.mark.parametrize(
    "blob",
    [OVERFLOWING_SHAPE, b"\x12" + encode_varint(2**63 - 5) + b"\x08"],
    ids=["2**63-1", "2**63-5_then_dtype"],
)
def test_shape_length_near_2_63_is_irregular(blob):
    columns = decode_entries(*_padded([blob]))
    assert not columns.regular[0]


def test_reader_with_overflowing_shape_length_raises_data_loss(tmp_path):
    prefix = str(tmp_path / "m")
    tfckpt.save_tensors(prefix, {"a": np.arange(3, dtype=np.float32)})
    reader = TableReader.open(prefix + ".index")
    items = list(reader.items())
    items.insert(1, (b"0bad", OVERFLOWING_SHAPE))  # "" < "0bad" < "a"
    with open(prefix + ".index", "wb") as f:
        f.write(_write_table([k for k, _ in items], [v for _, v in items]))
    with tfckpt.load_checkpoint(prefix) as ckpt:
        assert ckpt.get_tensor("a").tolist() == [0, 1, 2]
        with pytest.raises(DataLossError, match="0bad"):
            ckpt.get_tensor("0bad")


def test_decode_entries_of_nothing():
    columns = decode_entries(*_padded([]))
    assert len(columns.regular) == 0
    assert columns.shapes == []


def test_index_of_every_fixture_decodes_as_protobuf():
    """The entries of every real .index, through decode_entries, agree with protobuf."""
    for path in TABLE_FILES:
        if not path.endswith(".index"):
            continue
        entries = TableReader.open(path).entries()
        if len(entries) < 2 or entries.keys[0] != b"":
            continue
        blobs = [entries.value(i) for i in range(1, len(entries))]
        columns = decode_entries(entries.data, entries.value_start[1:], entries.value_length[1:])
        _check_columns(blobs, columns)
        # Real checkpoints are almost all regular (slices are the exception).
        assert columns.regular.sum() >= sum(1 for b in blobs if not Entry.FromString(b).slices)


def _field_bytes(entry):
    """The entry's fields serialized one by one, so that tests can reorder them."""
    pieces = []
    for field, _ in entry.ListFields():
        single = Entry()
        single.MergeFrom(entry)
        for other, _ in entry.ListFields():
            if other.name != field.name:
                single.ClearField(other.name)
        pieces.append(single.SerializeToString())
    return pieces


def test_fields_out_of_order_or_repeated_decode_as_protobuf_does():
    """Legal layouts other than protobuf's own order (which the first pass handles) go
    through the general loop and still agree with protobuf, last scalar winning."""
    entry = Entry(dtype=1, shard_id=2, offset=300, size=40, crc32c=0x12345678)
    entry.shape.dim.add().size = 10
    pieces = _field_bytes(entry)
    blobs = [
        b"".join(pieces),
        b"".join(reversed(pieces)),
        b"".join(pieces[1:] + pieces[:1]),
        b"".join(pieces) + Entry(offset=999).SerializeToString(),  # offset twice: last wins
        Entry(size=5).SerializeToString() + b"".join(pieces),  # size first, then again
    ]
    columns = decode_entries(*_padded(blobs))
    for i, blob in enumerate(blobs):
        want = Entry.FromString(blob)
        assert columns.regular[i], i
        got = (
            columns.dtype[i],
            columns.shard_id[i],
            columns.offset[i],
            columns.size[i],
            columns.crc32c[i],
            columns.shapes[i],
        )
        assert got == (
            want.dtype,
            want.shard_id,
            want.offset,
            want.size,
            checksum.unmask(want.crc32c),
            [d.size for d in want.shape.dim],
        ), i


# -- encoding: the one serializer against protobuf (byte-identical indexes) ----------------

I63 = st.integers(0, 2**63 - 1)


def _proto(entry) -> bytes:
    dtype, shape, shard_id, offset, size, crc, slices = entry
    proto = tensor_bundle_pb2.BundleEntryProto()
    proto.dtype = dtype
    proto.shape.SetInParent()
    for d in shape:
        proto.shape.dim.add().size = d
    proto.shard_id = shard_id
    proto.offset = offset
    proto.size = size
    if not slices:  # a partitioned tensor's full entry has no data, so no checksum
        proto.crc32c = checksum.mask(crc)
    for tensor_slice in slices:
        tensor_slice.to_proto(proto.slices.add())
    return proto.SerializeToString(deterministic=True)


DTYPES = st.integers(0, 33)
SHAPES = st.lists(st.one_of(st.integers(0, 3), st.integers(0, 2**40)), max_size=8).map(tuple)
EXTENTS = st.lists(
    st.one_of(st.none(), st.tuples(st.integers(0, 2**40), st.integers(1, 2**40))), max_size=4
)
WHOLE_ENTRIES = st.tuples(
    DTYPES,
    SHAPES,
    st.one_of(st.just(0), st.integers(0, 2**31 - 1)),
    st.one_of(st.just(0), I63),
    st.one_of(st.just(0), I63),
    st.integers(0, 2**32 - 1),
    st.just(()),
)
PARTITIONED_ENTRIES = st.builds(
    partitioned_entry,
    DTYPES,
    SHAPES,
    st.lists(EXTENTS.map(TensorSlice.from_extents), min_size=1, max_size=3).map(tuple),
)
ENTRIES = st.one_of(WHOLE_ENTRIES, PARTITIONED_ENTRIES)


@settings(max_examples=300)
@given(st.lists(ENTRIES, max_size=20))
def test_entries_serialized_together_match_protobuf(entries):
    """Every field (varints of 1 to 10 bytes, zeros omitted, slices) in any batch."""
    assert encode_entries(entries) == [_proto(entry) for entry in entries]


def test_zero_fields_are_omitted_as_protobuf_does():
    """proto3 omits zero scalars (a CRC whose masked value is 0 too); a scalar's shape
    message is present though empty."""
    zero_mask_crc = checksum.unmask(0)
    entries = [
        (1, (), 0, 0, 0, 0, ()),
        (7, (), 0, 0, 0, zero_mask_crc, ()),
        (19, (0, 0), 0, 5, 0, 1, ()),
        (0, (3,), 0, 0, 4, 2, ()),  # DT_INVALID: no dtype field
    ]
    assert encode_entries(entries) == [_proto(entry) for entry in entries]
    assert encode_entries([(1, (), 0, 0, 0, zero_mask_crc, ())]) == [b"\x08\x01\x12\x00"]


def test_partitioned_entry_has_no_data_fields():
    """A partitioned tensor's full entry holds dtype, shape and slices only
    (tensor_bundle.cc AddSlice); an empty extent stands for a full dimension."""
    slices = (TensorSlice.parse("0,2:-"), TensorSlice.parse("2,2:-"))
    entry = partitioned_entry(1, (4, 3), slices)
    (encoded,) = encode_entries([entry])
    proto = tensor_bundle_pb2.BundleEntryProto.FromString(encoded)
    assert (proto.offset, proto.size, proto.crc32c, proto.shard_id) == (0, 0, 0, 0)
    assert [TensorSlice.from_proto(s) for s in proto.slices] == list(slices)
    assert encoded == _proto(entry)


def test_many_entries_with_a_few_shapes():
    """20,000 entries (the cached dtype-and-shape part reused) stay exact."""
    rng = np.random.default_rng(0)
    shapes = [(), (3,), (64, 64), (0, 5)]
    entries = [
        (1 + i % 3, shapes[i % 4], 0, i * 4096, int(rng.integers(0, 1 << 20)), i * 7919, ())
        for i in range(20_000)
    ]
    assert encode_entries(entries) == [_proto(entry) for entry in entries]


def test_header_bytes():
    """num_shards, endianness (LITTLE is proto3's zero, omitted) and version producer 1."""
    assert encode_header() == bytes.fromhex("08011a020801")
    header = tensor_bundle_pb2.BundleHeaderProto.FromString(encode_header(True, 3))
    assert header.num_shards == 3
    assert header.endianness == tensor_bundle_pb2.BundleHeaderProto.BIG
    assert (header.version.producer, header.version.min_consumer) == (1, 0)
