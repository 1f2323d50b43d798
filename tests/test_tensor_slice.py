"""TensorSlice (core/framework/tensor_slice.cc) and slice keys (saved_tensor_slice_util.cc)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import FIXTURES
from tfckpt import ordered_code
from tfckpt.proto.tensor_slice_pb2 import TensorSliceProto
from tfckpt.tensor_slice import FULL_EXTENT, TensorSlice, decode_slice_key, encode_slice_key

# Keys and slice protos written by TensorFlow 2.21 (tf.compat.v1.train.Saver with
# fixed_size_partitioner; see fixtures/partitioned): (name, slice text, key, proto hex).
TF_WRITTEN = [
    (
        "model/cube",
        "0,2:0,3:3,2",
        b"\x00model/cube\x00\x01\x01\x03\x80\x82\x80\x83\x83\x82",
        "0a0210020a0210030a0408031002",
    ),
    (
        "model/embedding",
        "7,3:0,4",
        b"\x00model/embedding\x00\x01\x01\x02\x87\x83\x80\x84",
        "0a04080710030a021004",
    ),
    ("model/vocab", "4,3", b"\x00model/vocab\x00\x01\x01\x01\x84\x83", "0a0408041003"),
    ("model/vocab", "0,4", b"\x00model/vocab\x00\x01\x01\x01\x80\x84", "0a021004"),
]


@st.composite
def slices(draw, max_rank=5):
    rank = draw(st.integers(0, max_rank))
    starts, lengths = [], []
    for _ in range(rank):
        if draw(st.booleans()):
            starts.append(0)
            lengths.append(FULL_EXTENT)
        else:
            starts.append(draw(st.integers(0, 1 << 40)))
            lengths.append(draw(st.integers(1, 1 << 40)))
    return TensorSlice(tuple(starts), tuple(lengths))


names = st.text(
    st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=20
)  # any UTF-8 encodable text, including "\x00" and non-ASCII


# -- TensorSlice ---------------------------------------------------------------------------


def test_full():
    s = TensorSlice.full(3)
    assert s.starts == (0, 0, 0)
    assert s.lengths == (-1, -1, -1)
    assert s.rank == 3
    assert s.is_full()
    assert str(s) == "-:-:-"
    assert s.bounds([4, 5, 6]) == ((0, 4), (0, 5), (0, 6))
    assert s.covers([4, 5, 6])


@pytest.mark.parametrize(
    ("text", "starts", "lengths"),
    [
        ("-", (0,), (-1,)),
        ("0,5", (0,), (5,)),
        ("0,5:-", (0, 0), (5, -1)),
        ("-:3,4", (0, 3), (-1, 4)),
        ("1,2:3,4:-:10,1", (1, 3, 0, 10), (2, 4, -1, 1)),
    ],
)
def test_parse_and_str(text, starts, lengths):
    s = TensorSlice.parse(text)
    assert (s.starts, s.lengths) == (starts, lengths)
    assert str(s) == text
    assert TensorSlice.parse(str(s)) == s


@given(slices(max_rank=5).filter(lambda s: s.rank > 0))
def test_parse_str_round_trip(s):
    assert TensorSlice.parse(str(s)) == s


def test_parse_str_round_trip_rank_0():
    # TensorSlice::DebugString of a rank-0 slice is "" and TensorSlice::Parse("") gives
    # rank 0 (str_util::Split with SkipEmpty), so text form must round-trip at rank 0 too.
    s = TensorSlice.full(0)
    assert str(s) == ""
    assert TensorSlice.parse("") == s


@pytest.mark.parametrize("bad", ["0", "0,1,2", "a,b", "1,x", "0,5;-", "-1,2", "0,-2", "3,-1"])
def test_parse_rejects(bad):
    with pytest.raises(ValueError):
        TensorSlice.parse(bad)


@pytest.mark.parametrize(
    ("starts", "lengths"),
    [((0,), (-2,)), ((-1,), (3,)), ((2,), (-1,)), ((0, 0), (1,))],
)
def test_invalid_extents(starts, lengths):
    with pytest.raises(ValueError):
        TensorSlice(starts, lengths)


def test_from_extents():
    s = TensorSlice.from_extents([(2, 3), None, (0, 1)])
    assert s == TensorSlice((2, 0, 0), (3, -1, 1))
    assert TensorSlice.from_extents([]) == TensorSlice.full(0)


def test_bounds_shape_in_covers():
    s = TensorSlice.parse("2,3:-")
    assert s.bounds([10, 4]) == ((2, 5), (0, 4))
    assert s.shape_in([10, 4]) == (3, 4)
    assert not s.covers([10, 4])
    with pytest.raises(ValueError):
        s.bounds([4, 4])  # 2 + 3 > 4
    with pytest.raises(ValueError):
        s.bounds([10])  # rank mismatch
    assert TensorSlice.parse("0,3:0,4").covers([3, 4])
    assert TensorSlice.parse("0,3:-").covers([3, 4])
    assert not TensorSlice.parse("0,3:0,3").covers([3, 4])
    assert TensorSlice.full(0).covers([])
    assert not TensorSlice.parse("0,2:-").is_full()


def test_frozen_and_hashable():
    s = TensorSlice.parse("0,2:-")
    assert {s, TensorSlice((0, 0), (2, -1))} == {s}
    with pytest.raises(AttributeError):
        s.starts = (1, 1)  # type: ignore[misc]


# -- protos --------------------------------------------------------------------------------


def test_to_proto_leaves_full_extents_empty():
    proto = TensorSliceProto()
    TensorSlice.parse("-:3,4").to_proto(proto)
    assert len(proto.extent) == 2
    assert not proto.extent[0].HasField("length")
    assert proto.extent[0].start == 0
    assert proto.extent[1].HasField("length")
    assert (proto.extent[1].start, proto.extent[1].length) == (3, 4)
    assert TensorSlice.from_proto(proto) == TensorSlice.parse("-:3,4")


def test_from_proto_length_zero_is_rejected():
    # An explicit length of 0 is not a full extent, and TensorSlice::BuildTensorSlice
    # rejects non-positive lengths.
    proto = TensorSliceProto()
    extent = proto.extent.add()
    extent.start = 0
    extent.length = 0  # oneof: set even though it is the default value
    with pytest.raises(ValueError):
        TensorSlice.from_proto(proto)


def test_from_proto_empty_is_rank_0():
    assert TensorSlice.from_proto(TensorSliceProto()) == TensorSlice.full(0)


@given(slices())
def test_proto_round_trip(s):
    proto = TensorSliceProto()
    s.to_proto(proto)
    assert len(proto.extent) == s.rank
    back = TensorSliceProto.FromString(proto.SerializeToString())
    assert TensorSlice.from_proto(back) == s


@pytest.mark.parametrize(("name", "text", "key", "proto_hex"), TF_WRITTEN)
def test_proto_bytes_as_tensorflow_writes_them(name, text, key, proto_hex):
    proto = TensorSliceProto()
    TensorSlice.parse(text).to_proto(proto)
    assert proto.SerializeToString().hex() == proto_hex
    assert TensorSlice.from_proto(TensorSliceProto.FromString(bytes.fromhex(proto_hex))) == (
        TensorSlice.parse(text)
    )


# -- slice keys ----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "text", "key", "proto_hex"), TF_WRITTEN)
def test_slice_keys_as_tensorflow_writes_them(name, text, key, proto_hex):
    assert encode_slice_key(name, TensorSlice.parse(text)) == key
    assert decode_slice_key(key) == (name, TensorSlice.parse(text))


def test_slice_key_structure():
    key = encode_slice_key("a/b", TensorSlice.parse("0,2:-"))
    # NumIncreasing(0), String("a/b"), NumIncreasing(2), then (start, length) per dimension.
    assert key == b"\x00" + b"a/b\x00\x01" + b"\x01\x02" + b"\x80\x82" + b"\x80\x7f"
    assert key[0] == 0
    # A full extent is start 0, length -1.
    full = encode_slice_key("x", TensorSlice.full(1))
    assert full.endswith(
        ordered_code.write_signed_num_increasing(0) + ordered_code.write_signed_num_increasing(-1)
    )
    assert full == b"\x00x\x00\x01\x01\x01\x80\x7f"


def test_slice_key_escapes_name_bytes():
    key = encode_slice_key("a\x00b", TensorSlice.parse("1,1"))
    assert key == b"\x00a\x00\xffb\x00\x01\x01\x01\x81\x81"
    assert decode_slice_key(key) == ("a\x00b", TensorSlice.parse("1,1"))
    key = encode_slice_key("\u00ff", TensorSlice.parse("1,1"))  # UTF-8 c3 bf
    assert key.startswith(b"\x00\xc3\xbf\x00\x01")


@given(names, slices())
def test_slice_key_round_trip(name, s):
    key = encode_slice_key(name, s)
    assert key[:1] == b"\x00"
    assert decode_slice_key(key) == (name, s)


@given(names, slices(), st.text(min_size=1, max_size=10).filter(lambda t: t[0] != "\x00"))
def test_slice_keys_sort_before_ordinary_names(name, s, other):
    assert encode_slice_key(name, s) < other.encode("utf-8")


@settings(deadline=None)
@given(st.lists(st.tuples(names, slices(max_rank=3)), min_size=2, max_size=6))
def test_slice_keys_group_by_name(items):
    # All slices of one tensor are adjacent in key order, and names keep their order.
    keys = sorted((encode_slice_key(n, s), n) for n, s in items)
    seen: list[str] = []
    for _, name in keys:
        if not seen or seen[-1] != name:
            assert name not in seen
            seen.append(name)
    assert seen == sorted(set(seen), key=lambda n: n.encode("utf-8"))


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"plain_name",
        b"\x01\x01a\x00\x01\x00",  # NumIncreasing(1) instead of 0
        b"\x00abc",  # unterminated name
        b"\x00a\x00\x01",  # no rank
        b"\x00a\x00\x01\x01\x02\x80\x7f",  # rank 2, one dimension
        b"\x00a\x00\x01\x01\x01\x80\x7f\x00",  # trailing byte
        b"\x00a\x00\x01\x01\x01\x7f\x82",  # start -1
        b"\x00a\x00\x01\x01\x01\x80\x7e",  # length -2
    ],
)
def test_decode_slice_key_rejects(bad):
    with pytest.raises(ValueError):
        decode_slice_key(bad)


@pytest.mark.skipif(
    not (FIXTURES / "partitioned" / "ckpt.index").is_file(), reason="fixtures not generated"
)
def test_every_tensorflow_slice_key_in_the_fixtures_round_trips():
    from tfckpt.proto import tensor_bundle_pb2
    from tfckpt.table.reader import TableReader

    seen = 0
    for path in sorted(FIXTURES.glob("*/*.index")):
        table = dict(TableReader.open(path).items())
        for key in table:
            if key[:1] != b"\x00":
                continue
            name, s = decode_slice_key(key)
            assert encode_slice_key(name, s) == key
            full = tensor_bundle_pb2.BundleEntryProto.FromString(table[name.encode()])
            listed = [TensorSlice.from_proto(p) for p in full.slices]
            assert s in listed
            seen += 1
    assert seen > 0


def test_slice_key_of_a_name_that_is_not_utf8():
    """Names decoded from an index with surrogateescape (bytes that are not UTF-8) encode
    back to the same bytes in a slice key, instead of raising UnicodeEncodeError (found by
    the fuzzer: a partitioned tensor with such a name)."""
    name = b"w\xff".decode("utf-8", "surrogateescape")
    key = encode_slice_key(name, TensorSlice((0,), (1,)))
    assert b"w\xff" in key
