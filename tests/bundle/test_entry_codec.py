"""The entry codec (tfckpt.bundle.entry_codec) against protobuf, in both directions.

Decoding is a cache of protobuf's reading, so every decoding test compares the columns with
protobuf's; encoding must give exactly ``SerializeToString(deterministic=True)``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from google.protobuf import unknown_fields
from hypothesis import given, settings
from hypothesis import strategies as st

import tfckpt
from tests.table.test_bulk import SETTINGS, TABLE_FILES, _edits, _mutate, _write_table
from tfckpt import checksum
from tfckpt.bundle.entry_codec import (
    decode_entries,
    encode_entries,
    encode_header,
    partitioned_entry,
)
from tfckpt.errors import DataLossError
from tfckpt.proto import tensor_bundle_pb2
from tfckpt.table.bulk import PADDING
from tfckpt.table.format import (
    encode_varint,
)
from tfckpt.table.reader import TableReader
from tfckpt.tensor_slice import TensorSlice

Entry = tensor_bundle_pb2.BundleEntryProto

# -- decoding: the columns against protobuf --------------------------------------------------


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

