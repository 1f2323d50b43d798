"""The table (SSTable) layer: TableWriter, TableReader, separators, framing, Snappy blocks.

Expected bytes are built here independently from FORMAT-NOTES.md (and TensorFlow's
table_builder.cc / block_builder.cc / format.cc), with the crc32c package directly.
"""

from __future__ import annotations

import io
import itertools
import struct

import cramjam
import crc32c
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import CORPUS, FIXTURES
from tfckpt.errors import CheckpointError, CheckpointNotFoundError, DataLossError, UnsupportedError
from tfckpt.table.format import (
    BLOCK_TRAILER_SIZE,
    DEFAULT_BLOCK_SIZE,
    DEFAULT_RESTART_INTERVAL,
    FOOTER_SIZE,
    TABLE_MAGIC,
)
from tfckpt.table.reader import TableReader
from tfckpt.table.writer import TableWriter, short_successor, shortest_separator

MAGIC_BYTES = bytes.fromhex("57fb808b247547db")  # 0xdb4775248b80fb57: low word, high word
HALF_PLUS_TWO_CPU = (
    CORPUS
    / "tensorflow-serving/tensorflow_serving/servables/tensorflow/testdata"
    / "saved_model_half_plus_two_cpu/00000123/variables/variables.index"
)

# -- an independent little implementation of the format ----------------------------------


def _mask(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _trailer(contents: bytes, kind: int = 0) -> bytes:
    return bytes([kind]) + struct.pack("<I", _mask(crc32c.crc32c(contents + bytes([kind]))))


def _block(entries, restart_interval: int = 16) -> bytes:
    buf = bytearray()
    restarts = [0]
    last = b""
    counter = 0
    for key, value in entries:
        if counter == restart_interval:
            restarts.append(len(buf))
            counter = 0
            shared = 0
        else:
            shared = 0
            while shared < min(len(last), len(key)) and last[shared] == key[shared]:
                shared += 1
        buf += _varint(shared) + _varint(len(key) - shared) + _varint(len(value))
        buf += key[shared:] + value
        last = key
        counter += 1
    for r in restarts:
        buf += struct.pack("<I", r)
    buf += struct.pack("<I", len(restarts))
    return bytes(buf)


def _footer(metaindex: tuple[int, int], index: tuple[int, int]) -> bytes:
    handles = _varint(metaindex[0]) + _varint(metaindex[1]) + _varint(index[0]) + _varint(index[1])
    return handles + bytes(40 - len(handles)) + MAGIC_BYTES


def _assemble(data_blocks, index_keys, *, kind: int = 0, index_kind: int = 0) -> bytes:
    """A table from already built data block contents (compressed if kind == 1)."""
    out = bytearray()
    handles = []
    for contents in data_blocks:
        handles.append((len(out), len(contents)))
        out += contents + _trailer(contents, kind)
    meta = _block([])
    meta_handle = (len(out), len(meta))
    out += meta + _trailer(meta)
    index = _block([(k, _varint(o) + _varint(s)) for k, (o, s) in zip(index_keys, handles)], 1)
    if index_kind == 1:
        index = bytes(cramjam.snappy.compress_raw(index))
    index_handle = (len(out), len(index))
    out += index + _trailer(index, index_kind)
    out += _footer(meta_handle, index_handle)
    return bytes(out)


def _reference_table(items, block_size=DEFAULT_BLOCK_SIZE, restart_interval=16) -> bytes:
    """TensorFlow's TableBuilder (no compression), re-implemented for comparison."""
    blocks: list[list[tuple[bytes, bytes]]] = [[]]

    def estimate(entries):
        return len(_block(entries, restart_interval))

    for key, value in items:
        if blocks[-1] and len(key) + len(value) >= 2 * block_size:
            blocks.append([])
        blocks[-1].append((key, value))
        if estimate(blocks[-1]) >= block_size:
            blocks.append([])
    if not blocks[-1]:
        blocks.pop()
    keys = []
    for i, entries in enumerate(blocks):
        last = entries[-1][0]
        if i + 1 < len(blocks):
            keys.append(shortest_separator(last, blocks[i + 1][0][0]))
        else:
            keys.append(short_successor(last))
    return _assemble([_block(b, restart_interval) for b in blocks], keys)


def _parse(data: bytes):
    """Independent reader: returns (data block list of (offset, size, type), entries)."""
    assert data[-8:] == MAGIC_BYTES
    pos = len(data) - FOOTER_SIZE
    m_off, pos = _read_varint(data, pos)
    m_size, pos = _read_varint(data, pos)
    i_off, pos = _read_varint(data, pos)
    i_size, pos = _read_varint(data, pos)
    assert set(data[pos : len(data) - 8]) <= {0}

    def block(off, size):
        contents = data[off : off + size]
        trailer = data[off + size : off + size + 5]
        assert trailer == _trailer(contents, trailer[0]), f"trailer of block at {off}"
        if trailer[0] == 1:
            contents = bytes(cramjam.snappy.decompress_raw(contents))
        return trailer[0], contents

    def entries(contents):
        n = struct.unpack_from("<I", contents, len(contents) - 4)[0]
        limit = len(contents) - 4 - 4 * n
        out = []
        key = b""
        p = 0
        while p < limit:
            shared, p = _read_varint(contents, p)
            unshared, p = _read_varint(contents, p)
            vlen, p = _read_varint(contents, p)
            key = key[:shared] + contents[p : p + unshared]
            out.append((key, contents[p + unshared : p + unshared + vlen], shared))
            p += unshared + vlen
        return out

    assert block(m_off, m_size)[1] == _block([])
    _, index = block(i_off, i_size)
    blocks, items = [], []
    for key, value, shared in entries(index):
        assert shared == 0  # restart interval 1 in the index block
        off, q = _read_varint(value, 0)
        size, _ = _read_varint(value, q)
        kind, contents = block(off, size)
        blocks.append((off, size, kind, key))
        items.extend((k, v) for k, v, _ in entries(contents))
    return blocks, items


def _write(items, **kwargs) -> bytes:
    f = io.BytesIO()
    writer = TableWriter(f, **kwargs)
    for key, value in items:
        writer.add(key, value)
    size = writer.finish()
    data = f.getvalue()
    assert size == len(data)
    return data


def _read(data: bytes, name: str = "test.index") -> TableReader:
    return TableReader(data, name)


# -- exact bytes ---------------------------------------------------------------------------


def test_defaults_are_tensorflows():
    assert DEFAULT_BLOCK_SIZE == 262144
    assert DEFAULT_RESTART_INTERVAL == 16
    assert FOOTER_SIZE == 48
    assert BLOCK_TRAILER_SIZE == 5
    assert TABLE_MAGIC == 0xDB4775248B80FB57


def test_empty_table_exact_bytes():
    empty_block = b"\x00\x00\x00\x00\x01\x00\x00\x00"  # restart [0], count 1
    expected = (
        empty_block
        + _trailer(empty_block)  # metaindex at 0
        + empty_block
        + _trailer(empty_block)  # index at 13
        + b"\x00\x08\x0d\x08"
        + bytes(36)
        + MAGIC_BYTES
    )
    data = _write([])
    assert data == expected
    assert len(data) == 74
    reader = _read(data)
    assert list(reader.items()) == []
    assert reader.num_blocks == 0
    assert reader.get(b"") is None
    assert reader.get(b"a") is None


def test_one_entry_exact_bytes():
    data_block = b"\x00\x01\x01a1" + struct.pack("<II", 0, 1)  # 13 bytes
    meta = struct.pack("<II", 0, 1)
    index_block = b"\x00\x01\x02b\x00\x0d" + struct.pack("<II", 0, 1)  # "b" -> (0, 13)
    crc = _mask(crc32c.crc32c(data_block + b"\x00"))
    expected = (
        data_block
        + b"\x00"
        + struct.pack("<I", crc)
        + meta
        + _trailer(meta)  # at 18
        + index_block
        + _trailer(index_block)  # at 31
        + bytes([18, 8, 31, 14])
        + bytes(36)
        + struct.pack("<II", 0x8B80FB57, 0xDB477524)
    )
    data = _write([(b"a", b"1")])
    assert data == expected
    assert len(data) == 98
    assert list(_read(data).items()) == [(b"a", b"1")]


def test_two_entries_share_a_prefix_exact_bytes():
    data_block = (
        b"\x00\x03\x01abcx"  # shared 0, unshared 3, value 1
        + b"\x02\x01\x02dyy"  # shared 2 ("ab"), unshared 1 ("d"), value 2
        + struct.pack("<II", 0, 1)
    )
    assert len(data_block) == 21
    meta = struct.pack("<II", 0, 1)
    index_block = b"\x00\x01\x02b\x00\x15" + struct.pack("<II", 0, 1)  # succ("abd") = "b"
    expected = (
        data_block
        + _trailer(data_block)
        + meta
        + _trailer(meta)
        + index_block
        + _trailer(index_block)
        + bytes([26, 8, 39, 14])
        + bytes(36)
        + MAGIC_BYTES
    )
    assert _write([(b"abc", b"x"), (b"abd", b"yy")]) == expected


def test_restart_points_every_16_entries():
    items = [(b"key%03d" % i, b"v") for i in range(40)]
    data = _write(items)
    assert data == _reference_table(items)
    # one data block; its restart array holds 3 offsets: 0 and the 17th and 33rd entries
    (block,), _ = _parse(data)
    contents = data[block[0] : block[0] + block[1]]
    assert struct.unpack_from("<I", contents, len(contents) - 4)[0] == 3
    restarts = struct.unpack_from("<3I", contents, len(contents) - 16)
    assert restarts[0] == 0
    # at a restart the key is stored whole: shared == 0, unshared == len(key)
    for r in restarts:
        assert contents[r : r + 2] == b"\x00\x06"


def test_footer_layout_and_trailer_crcs_of_a_multi_block_table():
    items = [(b"k%05d" % i, b"value-%d" % i) for i in range(500)]
    data = _write(items, block_size=256)
    footer = data[-FOOTER_SIZE:]
    assert len(footer) == 48
    low, high = struct.unpack("<II", footer[-8:])
    assert (low, high) == (0x8B80FB57, 0xDB477524)
    assert (high << 32) | low == TABLE_MAGIC
    blocks, parsed = _parse(data)  # checks every trailer's masked crc independently
    assert parsed == items
    assert len(blocks) > 10
    assert all(kind == 0 for _, _, kind, _ in blocks)
    # blocks are contiguous, each followed by its 5-byte trailer
    for (off, size, _, _), (next_off, _, _, _) in itertools.pairwise(blocks):
        assert next_off == off + size + 5


# -- shortest_separator / short_successor --------------------------------------------------


@pytest.mark.parametrize(
    ("start", "limit", "expected"),
    [
        (b"abc", b"abz", b"abd"),
        (b"abc", b"abd", b"abc"),  # c+1 is not < d
        (b"abc", b"c", b"b"),
        (b"abc", b"b", b"abc"),
        (b"ab", b"abc", b"ab"),  # prefix: unchanged
        (b"", b"a", b""),
        (b"the quick brown fox", b"the who", b"the r"),
        (b"\x00\x00", b"\x00\x05", b"\x00\x01"),
        (b"\xff\x00\x07", b"\xff\x05", b"\xff\x01"),
        (b"a\xfe", b"a\xff", b"a\xfe"),
        (b"a\xfe\xff", b"a\xff", b"a\xfe\xff"),
        (b"\x00", b"\x01", b"\x00"),
        (b"\x00\xff", b"\x02", b"\x01"),
    ],
)
def test_shortest_separator(start, limit, expected):
    assert shortest_separator(start, limit) == expected
    assert start <= expected < limit


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (b"abc", b"b"),
        (b"", b""),
        (b"\xff", b"\xff"),
        (b"\xff\xff", b"\xff\xff"),
        (b"\xff\xffa", b"\xff\xffb"),
        (b"\xfe\xff", b"\xff"),
        (b"\x00", b"\x01"),
        (b"\xff\x00\x00", b"\xff\x01"),
    ],
)
def test_short_successor(key, expected):
    assert short_successor(key) == expected
    assert short_successor(key) >= key


@given(st.binary(max_size=12), st.binary(max_size=12))
def test_separator_property(a, b):
    if a == b:
        return
    start, limit = min(a, b), max(a, b)
    sep = shortest_separator(start, limit)
    assert start <= sep < limit
    assert len(sep) <= len(start)


@given(st.binary(max_size=12))
def test_successor_property(key):
    succ = short_successor(key)
    assert succ >= key
    assert len(succ) <= len(key)


# -- round trips ---------------------------------------------------------------------------


def test_round_trip_empty_and_one():
    assert list(_read(_write([])).items()) == []
    reader = _read(_write([(b"", b"header")]))
    assert list(reader.items()) == [(b"", b"header")]
    assert reader.get(b"") == b"header"
    assert reader.get(b"\x00") is None


def test_round_trip_thousands_over_many_blocks():
    items = [(b"model/layer_%05d/kernel" % i, b"%d" % (i * 7) * (i % 5)) for i in range(3000)]
    data = _write(items, block_size=512)
    reader = _read(data)
    assert reader.num_blocks > 20
    assert list(reader.items()) == items
    assert data == _reference_table(items, block_size=512)
    for key, value in items[::97] + items[-3:]:
        assert reader.get(key) == value
    assert reader.get(b"model/layer_00000") is None  # a prefix of the first key
    assert reader.get(b"model/layer_02999/kernel\x00") is None  # after the last key
    assert reader.get(b"model/layer_01000/kernek") is None  # between two keys
    assert reader.get(b"zzz") is None
    assert reader.get(b"") is None


def test_values_larger_than_twice_the_block_size_get_their_own_block():
    big = bytes(range(256)) * 2  # 512 bytes >= 2 * 200
    items = [(b"a", b"1"), (b"b", b"2"), (b"c", big), (b"d", b"3"), (b"e", big + big)]
    data = _write(items, block_size=200)
    assert data == _reference_table(items, block_size=200)
    blocks, parsed = _parse(data)
    assert parsed == items
    assert [key for *_, key in blocks] == [b"b", b"c", b"d", b"f"]  # separators, successor
    reader = _read(data)
    assert reader.num_blocks == 4
    assert list(reader.items()) == items
    assert reader.get(b"c") == big
    assert reader.get(b"e") == big + big


def test_keys_sharing_long_prefixes():
    prefix = b"p" * 1000
    items = [(prefix + bytes([i]) * (i % 3 + 1), b"v%d" % i) for i in range(1, 200)]
    items.sort()
    data = _write(items, block_size=4096)
    assert len(data) < 80_000  # prefix compression: far less than 200 * 1000 bytes
    assert list(_read(data).items()) == items
    assert data == _reference_table(items, block_size=4096)


def test_binary_keys_with_zero_and_ff_bytes():
    keys = sorted(
        {b"", b"\x00", b"\x00\x00", b"\x00\xff", b"\x01", b"\xfe\xff", b"\xff", b"\xff\x00",
         b"\xff\xff", b"\xff\xff\xff", b"a\x00b", b"a\xffb"}
    )  # fmt: skip
    items = [(k, k[::-1] + b"!") for k in keys]
    for block_size in (16, 64, DEFAULT_BLOCK_SIZE):
        data = _write(items, block_size=block_size)
        reader = _read(data)
        assert list(reader.items()) == items
        for key, value in items:
            assert reader.get(key) == value
        assert data == _reference_table(items, block_size=block_size)


def test_restart_interval_parameter():
    items = [(b"%04d" % i, b"x") for i in range(50)]
    for interval in (1, 2, 7, 16, 100):
        data = _write(items, restart_interval=interval)
        assert data == _reference_table(items, restart_interval=interval)
        assert list(_read(data).items()) == items


@settings(max_examples=80, deadline=None)
@given(
    st.dictionaries(st.binary(max_size=24), st.binary(max_size=120), max_size=60),
    st.integers(16, 600),
    st.integers(1, 16),
)
def test_round_trip_property(mapping, block_size, restart_interval):
    items = sorted(mapping.items())
    data = _write(items, block_size=block_size, restart_interval=restart_interval)
    assert data == _reference_table(items, block_size, restart_interval)
    reader = _read(data)
    assert list(reader.items()) == items
    for key, value in items:
        assert reader.get(key) == value
        assert reader.get(key + b"\x00") == mapping.get(key + b"\x00")


def test_writer_rejects_unsorted_or_duplicate_keys():
    writer = TableWriter(io.BytesIO())
    writer.add(b"b", b"")
    with pytest.raises(ValueError):
        writer.add(b"b", b"")
    with pytest.raises(ValueError):
        writer.add(b"a", b"")
    writer.add(b"c", b"")
    writer.finish()
    with pytest.raises(ValueError):
        writer.add(b"d", b"")


# -- TableReader.get and open -------------------------------------------------------------


def test_get_in_every_block():
    items = [(b"%06d" % (i * 10), b"v%d" % i) for i in range(1000)]
    reader = _read(_write(items, block_size=128))
    assert reader.num_blocks > 50
    for key, value in items:
        assert reader.get(key) == value
        assert reader.get(key + b"5") is None  # between this key and the next


def test_open_reads_a_file(tmp_path):
    path = tmp_path / "t.index"
    path.write_bytes(_write([(b"a", b"1"), (b"b", b"2")]))
    reader = TableReader.open(path)
    assert reader.name == str(path)
    assert dict(reader.items()) == {b"a": b"1", b"b": b"2"}


def test_open_missing_file(tmp_path):
    with pytest.raises(CheckpointNotFoundError) as info:
        TableReader.open(tmp_path / "missing.index")
    assert str(tmp_path / "missing.index") in str(info.value)
    assert isinstance(info.value, FileNotFoundError)


# -- bad tables ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 47])
def test_too_short(size):
    data = _write([(b"a", b"1")])
    with pytest.raises(DataLossError, match=r"x\.index"):
        TableReader(data[:size], "x.index")


def test_bad_magic():
    data = bytearray(_write([(b"a", b"1")]))
    data[-1] ^= 0x01
    with pytest.raises(DataLossError, match="magic") as info:
        TableReader(bytes(data), "x.index")
    assert "x.index" in str(info.value)


def test_magic_words_swapped_is_bad_magic():
    data = _write([(b"a", b"1")])
    swapped = data[:-8] + data[-4:] + data[-8:-4]
    with pytest.raises(DataLossError, match="magic"):
        TableReader(swapped, "x.index")


def test_every_truncation_fails_cleanly():
    data = _write([(b"k%03d" % i, b"v" * i) for i in range(60)], block_size=256)
    for n in range(len(data)):
        with pytest.raises(CheckpointError) as info:
            list(TableReader(data[:n], "x.index").items())
        assert "x.index" in str(info.value)


def test_every_byte_flip_is_detected_or_harmless():
    items = [(b"k%03d" % i, b"v%d" % i) for i in range(30)]
    data = _write(items, block_size=128)
    for i in range(len(data)):
        for bit in (0x01, 0x80):
            bad = bytearray(data)
            bad[i] ^= bit
            try:
                got = list(TableReader(bytes(bad), "x.index").items())
            except CheckpointError as exc:
                assert "x.index" in str(exc)
            else:
                # Only the unread parts (metaindex block, footer padding) may change.
                assert got == items, i


def test_block_checksum_mismatch_and_verify_off():
    data = bytearray(_write([(b"a", b"1"), (b"b", b"2")]))
    data[4] ^= ord("1") ^ ord("9")  # the value of "a"
    with pytest.raises(DataLossError, match="checksum"):
        list(TableReader(bytes(data), "x.index").items())
    unverified = TableReader(bytes(data), "x.index", verify_checksums=False)
    assert list(unverified.items()) == [(b"a", b"9"), (b"b", b"2")]


def test_keys_out_of_order_are_rejected():
    block = _block([(b"b", b"1"), (b"a", b"2")])
    data = _assemble([block], [b"c"])
    with pytest.raises(DataLossError, match="order"):
        list(TableReader(data, "x.index").items())
    data = _assemble([_block([(b"b", b"1")]), _block([(b"a", b"2")])], [b"b", b"b"])
    with pytest.raises(DataLossError, match="order"):
        list(TableReader(data, "x.index").items())


def test_block_handle_past_the_end():
    data = _assemble([_block([(b"a", b"1")])], [b"b"])
    # rewrite the index entry's handle to point far away, with a valid index trailer
    index = _block([(b"b", _varint(10_000) + _varint(13))], 1)
    meta = _block([])
    out = data[:18] + meta + _trailer(meta) + index + _trailer(index)
    out += _footer((18, 8), (31, len(index)))
    with pytest.raises(DataLossError, match=r"x\.index"):
        list(TableReader(out, "x.index").items())


def test_unknown_compression_type():
    contents = _block([(b"a", b"1")])
    data = _assemble([contents], [b"b"], kind=7)
    with pytest.raises(UnsupportedError, match="compression") as info:
        list(TableReader(data, "x.index").items())
    assert "x.index" in str(info.value)


# -- Snappy --------------------------------------------------------------------------------


def test_hand_built_snappy_table():
    items = [(b"weights/layer_%03d" % i, b"\x00" * 40 + b"%d" % i) for i in range(100)]
    chunks = [items[:50], items[50:]]
    blocks = [bytes(cramjam.snappy.compress_raw(_block(c))) for c in chunks]
    assert all(len(b) < len(_block(c)) for b, c in zip(blocks, chunks))
    data = _assemble(blocks, [items[49][0], short_successor(items[-1][0])], kind=1)
    assert data[len(blocks[0])] == 1  # type byte of the first trailer
    reader = TableReader(data, "snappy.index")
    assert reader.num_blocks == 2
    assert list(reader.items()) == items
    assert reader.get(items[75][0]) == items[75][1]
    assert reader.get(b"weights/layer_100") is None
    # and with a compressed index block too
    data = _assemble(blocks, [items[49][0], items[-1][0]], kind=1, index_kind=1)
    assert list(TableReader(data, "snappy.index").items()) == items


def test_snappy_block_with_valid_crc_but_corrupt_contents():
    compressed = bytearray(cramjam.snappy.compress_raw(_block([(b"a", b"x" * 100)])))
    compressed[0] = 0xFF  # an absurd uncompressed-length preamble; trailer crc recomputed
    data = _assemble([bytes(compressed)], [b"b"], kind=1)
    with pytest.raises(DataLossError, match="Snappy") as info:
        list(TableReader(data, "x.index").items())
    assert "x.index" in str(info.value)


@pytest.mark.parametrize("claimed", [1 << 32, 23 * 15])
def test_snappy_block_claiming_more_than_it_can_hold_is_refused_before_decompressing(
    tmp_path, claimed
):
    """A 15-byte Snappy block whose preamble claims 4 GiB (or just more than 15 bytes can
    expand to) is a DataLossError naming the file, raised before the decompressor is asked
    to allocate the claimed length (which aborts a process under an address-space limit)."""
    body = _varint(claimed)
    body += b"\x00" * (15 - len(body))
    data = _assemble([body], [b"b"], kind=1)
    path = tmp_path / "x.index"
    path.write_bytes(data)
    with pytest.raises(DataLossError, match="claims") as info:
        list(TableReader.open(path).items())
    assert info.value.path == str(path)


def test_real_snappy_compressed_corpus_index():
    data = HALF_PLUS_TWO_CPU.read_bytes()
    blocks, parsed = _parse(data)  # independent reader: trailers and Snappy
    assert [kind for _, _, kind, _ in blocks] == [1]
    reader = TableReader(data, str(HALF_PLUS_TWO_CPU))
    items = list(reader.items())
    assert items == parsed
    assert [k for k, _ in items] == [b"", b"a", b"a2", b"b", b"c", b"c2"]
    assert items[0][1] == bytes.fromhex("08011a020801")  # the bundle header
    for key, value in items:
        assert reader.get(key) == value


def test_every_snappy_corpus_index_matches_the_independent_reader():
    seen = 0
    for path in sorted(CORPUS.rglob("*.index")):
        data = path.read_bytes()
        blocks, parsed = _parse(data)
        if not any(kind == 1 for _, _, kind, _ in blocks):
            continue
        assert list(TableReader(data, str(path)).items()) == parsed, path
        seen += 1
    assert seen >= 5


def test_uncompressed_corpus_indexes_are_rewritten_byte_for_byte():
    # TensorFlow's TableBuilder with default options: every uncompressed index in the
    # corpus is reproduced exactly from its entries.
    seen = 0
    for path in sorted(CORPUS.rglob("*.index")):
        data = path.read_bytes()
        blocks, parsed = _parse(data)
        if any(kind != 0 for _, _, kind, _ in blocks):
            continue
        assert _write(parsed) == data, path
        seen += 1
    assert seen >= 20


@pytest.mark.skipif(
    not (FIXTURES / "many_keys" / "ckpt.index").is_file(), reason="fixtures not generated"
)
def test_tensorflow_multi_block_index_is_rewritten_byte_for_byte():
    data = (FIXTURES / "many_keys" / "ckpt.index").read_bytes()
    reader = TableReader(data, "many_keys")
    assert reader.num_blocks >= 3
    items = list(reader.items())
    assert _write(items) == data
