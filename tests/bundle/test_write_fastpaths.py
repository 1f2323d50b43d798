"""The write path's fast helpers agree with the straightforward encodings they replace.

Hand-serialized BundleEntryProtos against protobuf, the unrolled varint against the loop,
the XOR shared-prefix BlockBuilder against the byte loop of block_builder.cc, chunked and
vectorised string encodings against the scalar ones, NumpyState's piecewise ``.npy`` bytes
against ``numpy.save``, and the BundleWriter fast paths against what they must store.
"""

from __future__ import annotations

import io
import struct
import warnings

import crc32c
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tfckpt
from tfckpt import checksum
from tfckpt.bundle import strings as strings_module
from tfckpt.bundle import writer as writer_module
from tfckpt.bundle.strings import (
    decode_strings,
    encode_string_chunks,
    encode_strings,
    lengths_checksum,
)
from tfckpt.bundle.writer import BundleWriter, StringPieces, entry_bytes
from tfckpt.objects.numpy_state import serialize_pieces
from tfckpt.proto import tensor_bundle_pb2
from tfckpt.table.block import BlockBuilder
from tfckpt.table.format import encode_varint

U64 = st.integers(0, 2**64 - 1)
I63 = st.integers(0, 2**63 - 1)


def _varint_loop(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# -- varints --------------------------------------------------------------------------------


@pytest.mark.parametrize("k", range(64))
def test_varint_at_powers_of_two(k):
    for value in (2**k - 1, 2**k, 2**k + 1):
        assert encode_varint(value) == _varint_loop(value)


@given(U64)
def test_varint_matches_loop(value):
    assert encode_varint(value) == _varint_loop(value)


# -- BundleEntryProto by hand ---------------------------------------------------------------


def _proto_entry(enum, shape, offset, size, crc) -> bytes:
    entry = tensor_bundle_pb2.BundleEntryProto()
    entry.dtype = enum
    entry.shape.SetInParent()
    for d in shape:
        entry.shape.dim.add().size = d
    entry.offset = offset
    entry.size = size
    entry.crc32c = checksum.mask(crc)
    return entry.SerializeToString(deterministic=True)


@settings(max_examples=300)
@given(
    enum=st.integers(1, 33),
    shape=st.lists(st.one_of(st.integers(0, 3), st.integers(0, 2**40)), max_size=8),
    offset=I63,
    size=st.one_of(st.just(0), I63),
    crc=st.integers(0, 2**32 - 1),
)
def test_entry_bytes_match_protobuf(enum, shape, offset, size, crc):
    expected = _proto_entry(enum, tuple(shape), offset, size, crc)
    assert entry_bytes(enum, tuple(shape), offset, size, crc) == expected


def test_entry_bytes_zero_fields_omitted_as_protobuf_does():
    zero_mask_crc = checksum.unmask(0)  # a CRC whose masked value is 0: field omitted
    for args in [(1, (), 0, 0, 0), (7, (), 0, 0, zero_mask_crc), (19, (0, 0), 5, 0, 1)]:
        assert entry_bytes(*args) == _proto_entry(*args)
    assert entry_bytes(1, (), 0, 0, zero_mask_crc) == b"\x08\x01\x12\x00"


# -- BlockBuilder's shared prefix -----------------------------------------------------------


def _reference_block(entries, restart_interval) -> bytes:
    """block_builder.cc, byte loop for the shared prefix."""
    buf = bytearray()
    restarts = [0]
    counter = 0
    last = b""
    for key, value in entries:
        shared = 0
        if counter < restart_interval:
            while shared < min(len(last), len(key)) and last[shared] == key[shared]:
                shared += 1
        else:
            restarts.append(len(buf))
            counter = 0
        buf += _varint_loop(shared) + _varint_loop(len(key) - shared) + _varint_loop(len(value))
        buf += key[shared:] + value
        last = key
        counter += 1
    for r in restarts:
        buf += struct.pack("<I", r)
    return bytes(buf + struct.pack("<I", len(restarts)))


@settings(max_examples=200)
@given(
    keys=st.sets(st.binary(max_size=300), min_size=1, max_size=60),
    value_sizes=st.lists(st.sampled_from([0, 1, 127, 128, 300]), min_size=1),
    restart_interval=st.sampled_from([1, 2, 16]),
)
def test_block_builder_matches_byte_loop(keys, value_sizes, restart_interval):
    entries = [
        (key, b"v" * value_sizes[i % len(value_sizes)]) for i, key in enumerate(sorted(keys))
    ]
    builder = BlockBuilder(restart_interval)
    for key, value in entries:
        builder.add(key, value)
    assert builder.finish() == _reference_block(entries, restart_interval)


def test_block_builder_prefixes_and_high_bytes():
    entries = [(k, b"x") for k in [b"", b"\x00", b"\x00\x00", b"a", b"a\xff", b"ab", b"\xff" * 3]]
    builder = BlockBuilder(16)
    for key, value in entries:
        builder.add(key, value)
    assert builder.finish() == _reference_block(entries, 16)


# -- string tensors -------------------------------------------------------------------------

STRING_LISTS = st.lists(st.binary(max_size=200), max_size=50)


@settings(max_examples=100)
@given(strings=STRING_LISTS, big_endian=st.booleans())
def test_string_chunks_match_joined_encoding(strings, big_endian):
    chunks, crc = encode_string_chunks(strings, big_endian)
    pieces, expected_crc = encode_strings(strings, big_endian)
    assert b"".join(chunks) == b"".join(pieces)
    assert crc == expected_crc


@pytest.mark.parametrize("count", [0, 1, 4095, 4096, 4097, 3 * 4096 + 5])
def test_string_chunks_across_chunk_boundaries(count):
    strings = [bytes([i % 256]) * (i % 70) for i in range(count)]
    chunks, crc = encode_string_chunks(strings)
    data = b"".join(chunks)
    assert (data, crc) == (b"".join(encode_strings(strings)[0]), encode_strings(strings)[1])
    assert decode_strings(data, count) == (strings, crc)


def test_string_chunks_accept_bytes_like_and_reject_the_rest():
    mixed = [b"ab", bytearray(b"cd"), memoryview(b"ef"), np.bytes_(b"gh")]
    chunks, crc = encode_string_chunks(mixed)
    assert (b"".join(chunks), crc) == _joined([b"ab", b"cd", b"ef", b"gh"])
    for bad in (["text"], [1], [memoryview(np.zeros(2, np.int32))]):
        with pytest.raises(TypeError):
            encode_string_chunks(bad)


def _joined(strings):
    pieces, crc = encode_strings(strings)
    return b"".join(pieces), crc


@settings(max_examples=200)
@given(
    lengths=st.lists(st.one_of(st.integers(0, 2**32 - 1), U64), max_size=40),
    big_endian=st.booleans(),
)
def test_lengths_checksum_vectorised_matches_struct(lengths, big_endian):
    order = ">" if big_endian else "<"
    packed = b"".join(struct.pack(order + ("I" if n <= 0xFFFFFFFF else "Q"), n) for n in lengths)
    array = np.array(lengths, np.uint64)
    assert lengths_checksum(array, big_endian) == crc32c.crc32c(packed)


def test_mixed_width_lengths_layout():
    values = np.array([1, 2**32, 3], np.uint64)
    out = strings_module._mixed_width_lengths(values, "<")
    assert out.tobytes() == struct.pack("<IQI", 1, 2**32, 3)
    assert strings_module._mixed_width_lengths(values, ">").tobytes() == struct.pack(
        ">IQI", 1, 2**32, 3
    )


# -- NumpyState pieces ----------------------------------------------------------------------


def _npy(value) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # format 3.0's warning
        np.save(buffer, value, allow_pickle=False)
    return buffer.getvalue()


with warnings.catch_warnings():
    warnings.simplefilter("ignore", PendingDeprecationWarning)  # np.matrix: np.save's asanyarray
    _MATRICES = [np.matrix([[1, 2], [3, 4]]), np.matrix([[1, 2], [3, 4]]).T]

NPY_CASES = [
    np.arange(12.0).reshape(3, 4),
    np.arange(12.0).reshape(3, 4).T,  # Fortran-contiguous
    np.arange(24).reshape(4, 6)[::2, 1::2],  # neither
    np.float32(3),
    np.array(5, ">i4"),
    np.zeros((0, 5)),
    np.asfortranarray(np.zeros((3, 0))),
    np.zeros((2, 3), [("a", "<i4"), ("b", ">f8")]),
    np.zeros((2,), "S5"),
    np.array(["ab", "c"]),
    np.ones((2, 2), bool),
    np.arange(4).astype(ml_dtypes.bfloat16),
    np.arange(6, dtype=np.complex128),
    *_MATRICES,
    np.zeros(2, [(f"field_{i}", "<i4") for i in range(5000)]),  # header in format 2.0
    np.zeros(2, [("é€", "<i4")]),  # format 3.0
]


@pytest.mark.parametrize("value", NPY_CASES, ids=lambda v: f"{v.dtype}-{np.shape(v)}"[:40])
@pytest.mark.filterwarnings("ignore:Stored array in format 3.0")
def test_serialize_pieces_equal_numpy_save(value):
    pieces = serialize_pieces(value).pieces
    assert b"".join(bytes(memoryview(p)) for p in pieces) == _npy(value)


def test_serialize_pieces_do_not_copy_a_contiguous_array():
    array = np.arange(1000, dtype=np.float64)
    header, data = serialize_pieces(array).pieces
    assert isinstance(header, bytes)
    assert np.shares_memory(data, array)


def test_serialize_pieces_reject_object_arrays():
    with pytest.raises(tfckpt.InvalidArgumentError, match="pickling"):
        serialize_pieces(np.array([object()]), "x")


# -- BundleWriter fast paths ----------------------------------------------------------------


def test_array_mutated_after_add_keeps_the_added_values(tmp_path):
    array = np.arange(10, dtype=np.float32)
    with BundleWriter(tmp_path / "m") as writer:
        writer.add("a", array)
        array[:] = -1
        writer.add("b", array)
    reader = tfckpt.load_checkpoint(tmp_path / "m")
    np.testing.assert_array_equal(reader.get_tensor("a"), np.arange(10, dtype=np.float32))
    np.testing.assert_array_equal(reader.get_tensor("b"), -np.ones(10, np.float32))


@pytest.mark.parametrize("big_endian", [False, True])
def test_fast_and_converted_paths_write_the_same_files(tmp_path, big_endian):
    values = {
        "f32": np.arange(6, dtype=np.float32).reshape(2, 3),
        "u8": np.arange(5, dtype=np.uint8),
        "bf16": np.arange(4).astype(ml_dtypes.bfloat16),
        "c64": np.array([1 + 2j], np.complex64),
        "scalar": np.array(3.5),
        "empty": np.zeros((0, 4), np.int16),
    }
    with BundleWriter(tmp_path / "fast", big_endian=big_endian) as writer:
        for name, value in values.items():
            writer.add(name, value)
    with BundleWriter(tmp_path / "slow", big_endian=big_endian) as writer:
        writer._native = {}  # every tensor through to_array
        for name, value in values.items():
            writer.add(name, value)
    for suffix in (".index", ".data-00000-of-00001"):
        fast = (tmp_path / f"fast{suffix}").read_bytes()
        assert fast == (tmp_path / f"slow{suffix}").read_bytes()
    reader = tfckpt.load_checkpoint(tmp_path / "fast")
    for name, value in values.items():
        np.testing.assert_array_equal(reader.get_tensor(name), value)


def test_large_tensor_checksummed_in_a_thread(tmp_path, monkeypatch):
    monkeypatch.setattr(writer_module, "_PARALLEL_CRC", 1024)
    value = np.random.default_rng(0).random(10_000)
    pieces = StringPieces([b"head", np.arange(5000, dtype=np.uint8)])
    with BundleWriter(tmp_path / "m") as writer:
        writer.add("x", value)
        writer.add("p", pieces)
    data = (tmp_path / "m.data-00000-of-00001").read_bytes()
    assert data[: value.nbytes] == value.tobytes()
    reader = tfckpt.load_checkpoint(tmp_path / "m")
    np.testing.assert_array_equal(reader.get_tensor("x"), value)  # CRC checked
    assert reader.get_tensor("p") == b"head" + np.arange(5000, dtype=np.uint8).tobytes()


def test_string_pieces_equal_a_joined_scalar_string(tmp_path):
    with BundleWriter(tmp_path / "pieces") as writer:
        writer.add("s", StringPieces([b"ab", np.frombuffer(b"cd", np.uint8), b""]))
    with BundleWriter(tmp_path / "joined") as writer:
        writer.add("s", b"abcd")
    for suffix in (".index", ".data-00000-of-00001"):
        pieces = (tmp_path / f"pieces{suffix}").read_bytes()
        assert pieces == (tmp_path / f"joined{suffix}").read_bytes()


def test_string_pieces_are_string_tensors_only(tmp_path):
    with BundleWriter(tmp_path / "m") as writer:
        writer.add("ok", StringPieces([b"x"]), dtype="string")
        with pytest.raises(tfckpt.InvalidArgumentError, match="string tensor"):
            writer.add("bad", StringPieces([b"x"]), dtype="float32")


def test_slice_after_whole_tensor_is_rejected(tmp_path):
    with BundleWriter(tmp_path / "m") as writer:
        writer.add("t", np.zeros(4, np.float32))
        with pytest.raises(tfckpt.InvalidArgumentError, match="already added whole"):
            writer.add_slice("t", [8], "0,4", np.zeros(4, np.float32))


def test_many_small_tensors_index_entries_decode_as_protobuf(tmp_path):
    values = {f"model/layer_{i}/w": np.full(i % 7, i, np.float32) for i in range(300)}
    tfckpt.save_tensors(tmp_path / "m", values)
    reader = tfckpt.load_checkpoint(tmp_path / "m")
    assert reader.get_variable_to_shape_map() == {k: list(v.shape) for k, v in values.items()}
    for name, value in values.items():
        np.testing.assert_array_equal(reader.get_tensor(name), value)
