"""Bulk decoding of tables (tfckpt.table.bulk) against the entry-by-entry decoder.

The bulk decoder is a cache of ``parse_block`` / ``TableReader.items()``, so every test
compares the two.  The tables' data blocks are extracted here from the file bytes directly
(footer, index block, trailers), independently of ``TableReader``.
"""

from __future__ import annotations

import glob
import io
import itertools
import json
import os
import struct

import cramjam
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.conftest import CORPUS, FIXTURES, fixture_files
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


