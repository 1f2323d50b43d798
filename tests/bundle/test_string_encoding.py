"""The fast string-tensor encoders of tfckpt.bundle.strings against the plain ones.

Chunked joins and vectorised lengths, varints and checksums must give exactly the bytes and
the entry CRC of the straightforward encoding (itself checked against the format in
tests/bundle/test_strings.py), across chunk boundaries, long strings and both byte orders.
"""

from __future__ import annotations

import struct

import crc32c
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfckpt.bundle import strings as strings_module
from tfckpt.bundle.strings import (
    decode_strings,
    encode_string_chunks,
    encode_strings,
    encode_varints,
    lengths_checksum,
    string_lengths,
)
from tfckpt.table.format import encode_varint

U64 = st.integers(0, 2**64 - 1)
STRING_LISTS = st.lists(st.binary(max_size=200), max_size=50)


def _joined(strings):
    pieces, crc = encode_strings(strings)
    return b"".join(pieces), crc


@settings(max_examples=100)
@given(strings=STRING_LISTS, big_endian=st.booleans())
def test_string_chunks_match_joined_encoding(strings, big_endian):
    """Chunks concatenate to the joined encoding, with the same CRC, in both byte orders."""
    chunks, crc = encode_string_chunks(strings, big_endian)
    pieces, expected_crc = encode_strings(strings, big_endian)
    assert b"".join(chunks) == b"".join(pieces)
    assert crc == expected_crc


@pytest.mark.parametrize("count", [0, 1, 4095, 4096, 4097, 3 * 4096 + 5])
def test_string_chunks_across_chunk_boundaries(count):
    """Counts around the join chunk size encode and decode back."""
    strings = [bytes([i % 256]) * (i % 70) for i in range(count)]
    chunks, crc = encode_string_chunks(strings)
    data = b"".join(chunks)
    assert (data, crc) == _joined(strings)
    assert decode_strings(data, count) == (strings, crc)


def test_string_chunks_accept_bytes_like_and_reject_the_rest():
    """bytes-like elements of 1-byte items are taken; str, ints and wider items raise."""
    mixed = [b"ab", bytearray(b"cd"), memoryview(b"ef"), np.bytes_(b"gh")]
    chunks, crc = encode_string_chunks(mixed)
    assert (b"".join(chunks), crc) == _joined([b"ab", b"cd", b"ef", b"gh"])
    for bad in (["text"], [1], [memoryview(np.zeros(2, np.int32))]):
        with pytest.raises(TypeError):
            encode_string_chunks(bad)


@pytest.mark.parametrize("count", [1, 5000])
@pytest.mark.parametrize("long", [0, 128, 255, 256, 300, 70_000])
def test_string_chunks_with_a_long_string(count, long):
    """One string of 256 bytes or more switches the lengths to uint64, same bytes."""
    strings = [bytes([i % 3]) * (i % 9) for i in range(count)]  # NUL bytes included
    strings[count // 2] = b"\0x" * (long // 2) + b"\0" * (long % 2)
    chunks, crc = encode_string_chunks(strings)
    data = b"".join(chunks)
    assert data == _joined(strings)[0]
    assert decode_strings(data, count) == (strings, crc)


@settings(max_examples=200)
@given(
    lengths=st.lists(st.one_of(st.integers(0, 2**32 - 1), U64), max_size=40),
    big_endian=st.booleans(),
)
def test_lengths_checksum_vectorised_matches_struct(lengths, big_endian):
    """The lengths' CRC runs over uint32s, uint64 where a length does not fit."""
    order = ">" if big_endian else "<"
    packed = b"".join(struct.pack(order + ("I" if n <= 0xFFFFFFFF else "Q"), n) for n in lengths)
    array = np.array(lengths, np.uint64)
    assert lengths_checksum(array, big_endian) == crc32c.crc32c(packed)


def test_mixed_width_lengths_layout():
    """Narrow lengths take 4 bytes and wide ones 8, in the requested byte order."""
    values = np.array([1, 2**32, 3], np.uint64)
    out = strings_module._mixed_width_lengths(values, "<")
    assert out.tobytes() == struct.pack("<IQI", 1, 2**32, 3)
    assert strings_module._mixed_width_lengths(values, ">").tobytes() == struct.pack(
        ">IQI", 1, 2**32, 3
    )


@pytest.mark.parametrize(
    ("sizes", "dtype"),
    [([], np.uint8), ([0, 1, 127], np.uint8), ([128, 255], np.uint8), ([255, 256], np.uint64),
     ([300, 0, 70_000], np.uint64)],
)  # fmt: skip
def test_string_lengths_narrow_and_wide(sizes, dtype):
    """Lengths are uint8 while all are below 256, else uint64."""
    lengths = string_lengths([b"\0" * n for n in sizes])
    assert lengths.dtype == dtype
    assert lengths.tolist() == sizes


def test_string_lengths_reject_elements_without_len():
    """An element without len() is a TypeError (the writer then reports it by name)."""
    with pytest.raises(TypeError):
        string_lengths([b"a", 5])


def test_varints_of_uint8_lengths_of_two_bytes():
    """uint8 lengths of 128 and more take two varint bytes."""
    lengths = np.array([0, 127, 128, 200, 255], np.uint8)
    assert encode_varints(lengths) == b"".join(encode_varint(int(n)) for n in lengths)


@pytest.mark.parametrize("position", [0, 1, 4095, 4096, 4097, 9000])
def test_string_chunks_switch_to_wide_lengths_inside_any_chunk(position):
    """The first length of 256 or more may come anywhere (first element, a chunk's first or
    last element, mid-chunk): the lengths measured so far are kept, the rest are uint64, and
    the bytes and the entry CRC (the body's CRC combined behind the head's) are exact."""
    strings = [bytes([i % 251]) * (i % 61) for i in range(10_000)]
    strings[position] = b"w" * 300
    chunks, crc = encode_string_chunks(strings)
    data = b"".join(chunks)
    assert (data, crc) == _joined(strings)
    assert decode_strings(data, len(strings)) == (strings, crc)


def test_string_chunks_of_only_empty_strings_and_of_none():
    """Empty strings (a body of 0 bytes: the CRC is the head's) and no strings at all."""
    for strings in ([b""] * 5000, []):
        chunks, crc = encode_string_chunks(strings)
        assert (b"".join(chunks), crc) == _joined(strings)


def test_string_chunks_reject_a_bad_element_in_a_later_chunk():
    """An element that is not bytes-like past the first chunk is still a TypeError."""
    for bad in ("text", 7):
        strings: list = [b"ok"] * 5000
        strings[4500] = bad
        with pytest.raises(TypeError):
            encode_string_chunks(strings)
