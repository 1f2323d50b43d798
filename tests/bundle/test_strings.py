"""String tensors in bundle data files (tfckpt.bundle.strings).

The expected bytes and checksums are computed here independently from FORMAT-NOTES.md: every
element's length as varint64, then a fixed32 masked crc32c of the lengths (each length as
uint32 little-endian, uint64 when it does not fit), then the bytes; the entry's crc runs over
the lengths (same rule), the 4 stored checksum bytes and the string bytes.
"""

from __future__ import annotations

import struct

import crc32c
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tfckpt
from tfckpt.bundle.strings import (
    StringDecodeError,
    decode_strings,
    decode_varints,
    encode_strings,
    encode_varints,
    lengths_checksum,
)


def _mask(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _lengths_bytes(lengths, big_endian=False) -> bytes:
    order = ">" if big_endian else "<"
    return b"".join(struct.pack(order + ("I" if n <= 0xFFFFFFFF else "Q"), n) for n in lengths)


def _expected(strings: list[bytes], big_endian=False) -> tuple[bytes, int]:
    """(stored bytes, unmasked entry crc) per FORMAT-NOTES."""
    lengths = [len(s) for s in strings]
    lcrc = crc32c.crc32c(_lengths_bytes(lengths, big_endian))
    stored = struct.pack(">I" if big_endian else "<I", _mask(lcrc))
    payload = b"".join(strings)
    data = b"".join(_varint(n) for n in lengths) + stored + payload
    entry_crc = crc32c.crc32c(payload, crc32c.crc32c(stored, lcrc))
    return data, entry_crc


def _encode(strings, big_endian=False) -> tuple[bytes, int]:
    pieces, crc = encode_strings(strings, big_endian)
    return b"".join(pieces), crc


# -- exact layout ---------------------------------------------------------------------------


def test_exact_bytes_small():
    data, crc = _encode([b"ab", b""])
    lcrc = crc32c.crc32c(struct.pack("<II", 2, 0))
    assert data == b"\x02\x00" + struct.pack("<I", _mask(lcrc)) + b"ab"
    assert crc == crc32c.crc32c(b"ab", crc32c.crc32c(struct.pack("<I", _mask(lcrc)), lcrc))


def test_exact_bytes_no_strings():
    data, crc = _encode([])
    # No lengths: the checksum of nothing (0), masked, and no bytes.
    assert data == struct.pack("<I", _mask(0))
    assert crc == crc32c.crc32c(struct.pack("<I", _mask(0)))
    assert decode_strings(data, 0) == ([], crc)


def test_pieces_are_lengths_checksum_payload():
    pieces, _ = encode_strings([b"x" * 200, b"yz"])
    assert len(pieces) == 3
    assert pieces[0] == _varint(200) + _varint(2) == b"\xc8\x01\x02"
    assert len(pieces[1]) == 4
    assert pieces[2] == b"x" * 200 + b"yz"


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize(
    "strings",
    [
        [b""],
        [b"hello"],
        [b"", b"", b""],
        [b"\x00\xff\x80", "é".encode(), b"\n"],
        [b"a" * 127, b"b" * 128, b"c" * 300],
        [bytes(range(256)) * 70],  # 17920 bytes: a 3-byte varint
    ],
)
def test_matches_independent_encoding(strings, big_endian):
    data, crc = _encode(strings, big_endian)
    assert (data, crc) == _expected(strings, big_endian)
    assert decode_strings(data, len(strings), big_endian) == (strings, crc)


def test_big_endian_differs_only_in_the_checksum():
    little, _ = _encode([b"abc", b"de"])
    big, _ = _encode([b"abc", b"de"], big_endian=True)
    assert little[:2] == big[:2] == b"\x03\x02"
    assert little[6:] == big[6:] == b"abcde"
    assert little[2:6] != big[2:6]
    lcrc = crc32c.crc32c(struct.pack(">II", 3, 2))
    assert big[2:6] == struct.pack(">I", _mask(lcrc))


# -- varints at their edges -------------------------------------------------------------

EDGES = [0, 1, 127, 128, 255, 16383, 16384, 2**21 - 1, 2**21, 2**28 - 1, 2**28, 2**32 - 1,
         2**32, 2**35, 2**56, 2**63, 2**64 - 1]  # fmt: skip


@pytest.mark.parametrize("n", EDGES)
def test_varint_edges(n):
    encoded = encode_varints(np.array([n], np.uint64))
    assert encoded == _varint(n)
    assert len(encoded) == max(1, (n.bit_length() + 6) // 7)
    values, used = decode_varints(np.frombuffer(encoded + b"\x05\x06", np.uint8), 1)
    assert used == len(encoded)
    assert values.tolist() == [n]


def test_varint_many_mixed():
    values = np.array(EDGES * 3, np.uint64)
    encoded = encode_varints(values)
    assert encoded == b"".join(_varint(int(v)) for v in values)
    back, used = decode_varints(np.frombuffer(encoded, np.uint8), len(values))
    assert used == len(encoded)
    assert back.tolist() == values.tolist()


@given(st.lists(st.integers(0, 2**64 - 1), max_size=40))
def test_varint_round_trip(values):
    array = np.array(values, np.uint64)
    encoded = encode_varints(array)
    assert encoded == b"".join(_varint(v) for v in values)
    back, used = decode_varints(np.frombuffer(encoded, np.uint8), len(values))
    assert (back.tolist(), used) == (values, len(encoded))


def test_varint_too_long_or_missing():
    with pytest.raises(StringDecodeError):
        decode_varints(np.frombuffer(b"\x80" * 11 + b"\x01", np.uint8), 1)
    with pytest.raises(StringDecodeError):
        decode_varints(np.frombuffer(b"\x01\x80", np.uint8), 2)
    with pytest.raises(StringDecodeError):
        decode_varints(np.frombuffer(b"", np.uint8), 1)


@pytest.mark.parametrize("n", [0, 127, 128, 16383, 16384, 2**21])
def test_strings_of_edge_lengths(n):
    strings = [b"\xab" * n, b"z"]
    data, crc = _encode(strings)
    assert data.startswith(_varint(n) + b"\x01")
    assert (data, crc) == _expected(strings)
    back, back_crc = decode_strings(data, 2)
    assert back == strings and back_crc == crc


@pytest.mark.parametrize("n", [2**28, 2**32 - 1, 2**32, 2**40])
def test_lengths_checksum_rule_for_large_lengths(n):
    # (no strings this long are built: the rule only needs the lengths)
    lengths = np.array([3, n, 0], np.uint64)
    expected = crc32c.crc32c(_lengths_bytes([3, n, 0]))
    assert lengths_checksum(lengths) == expected
    expected_big = crc32c.crc32c(_lengths_bytes([3, n, 0], big_endian=True))
    assert lengths_checksum(lengths, big_endian=True) == expected_big
    if n > 0xFFFFFFFF:  # the length is hashed as 8 bytes
        assert expected == crc32c.crc32c(struct.pack("<IQI", 3, n, 0))


def test_lengths_checksum_empty():
    assert lengths_checksum(np.zeros(0, np.uint64)) == 0


# -- round trips ---------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=30), st.booleans())
def test_round_trip(strings, big_endian):
    data, crc = _encode(strings, big_endian)
    assert (data, crc) == _expected(strings, big_endian)
    back, back_crc = decode_strings(data, len(strings), big_endian)
    assert back == strings
    assert back_crc == crc
    assert all(type(s) is bytes for s in back)


def test_decode_from_memoryview():
    data, crc = _encode([b"abc", b"", b"defg"])
    assert decode_strings(memoryview(data), 3) == ([b"abc", b"", b"defg"], crc)


# -- corruption ----------------------------------------------------------------------------


def test_corrupt_lengths_checksum_raises():
    data, _ = _encode([b"abc", b"de"])
    for i in range(2, 6):  # the 4 checksum bytes
        bad = bytearray(data)
        bad[i] ^= 0x01
        with pytest.raises(StringDecodeError, match="checksum"):
            decode_strings(bytes(bad), 2)


def test_corrupt_length_raises():
    data, _ = _encode([b"abc", b"de"])
    bad = bytearray(data)
    bad[0] = 2  # lengths 2, 2: the lengths' checksum no longer matches
    with pytest.raises(StringDecodeError):
        decode_strings(bytes(bad), 2)


def test_corrupt_payload_changes_entry_crc_only():
    data, crc = _encode([b"abc", b"de"])
    bad = bytearray(data)
    bad[-1] ^= 0x20
    strings, bad_crc = decode_strings(bytes(bad), 2)
    assert strings == [b"abc", b"dE"]
    assert bad_crc != crc  # the caller's entry-crc check catches it


@pytest.mark.parametrize("cut", range(0, 11))
def test_truncated_raises(cut):
    data, _ = _encode([b"abc", b"de"])  # 2 + 4 + 5 = 11 bytes
    with pytest.raises(StringDecodeError):
        decode_strings(data[:cut], 2)


def test_extra_bytes_raise():
    data, _ = _encode([b"abc", b"de"])
    with pytest.raises(StringDecodeError):
        decode_strings(data + b"!", 2)


def test_wrong_count_raises():
    data, _ = _encode([b"abc", b"de"])
    with pytest.raises(StringDecodeError):
        decode_strings(data, 3)
    with pytest.raises(StringDecodeError):
        decode_strings(data, 1)


def test_string_decode_error_is_value_error():
    assert issubclass(StringDecodeError, ValueError)


def test_lengths_whose_sum_wraps_around_are_rejected():
    """Lengths 2**64-1 and 2 sum to 1 in uint64: the layout must be rejected, not sliced."""
    lengths = [2**64 - 1, 2]
    lcrc = crc32c.crc32c(_lengths_bytes(lengths))
    stored = struct.pack("<I", _mask(lcrc))
    data = _varint(lengths[0]) + _varint(lengths[1]) + stored + b"x"
    with pytest.raises(StringDecodeError):
        decode_strings(data, 2)


# -- through the bundle --------------------------------------------------------------------


def test_data_file_holds_the_independent_encoding(tmp_path):
    strings = [b"", b"a" * 128, b"\x00\xff", "ü".encode()]
    prefix = tfckpt.save_tensors(
        tmp_path / "s", {"s": np.array(strings, dtype=object).reshape(2, 2)}
    )
    data = (tmp_path / "s.data-00000-of-00001").read_bytes()
    expected, crc = _expected(strings)
    assert data == expected
    from tfckpt.bundle.reader import BundleReader

    with BundleReader(prefix) as reader:
        entry = reader.entry("s")
        assert (entry.offset, entry.size, entry.crc32c) == (0, len(expected), _mask(crc))
        assert reader.read("s").tolist() == [strings[:2], strings[2:]]


def test_bundle_corrupt_lengths_checksum_names_tensor(tmp_path):
    tfckpt.save_tensors(tmp_path / "s", {"f": np.ones(2, np.float32), "s": [b"abc", b"de"]})
    path = tmp_path / "s.data-00000-of-00001"
    data = bytearray(path.read_bytes())
    data[8 + 2] ^= 0x01  # after the 8 float bytes and 2 varints: the lengths' checksum
    path.write_bytes(bytes(data))
    reader = tfckpt.load_checkpoint(tmp_path / "s")
    assert reader.get_tensor("f").tolist() == [1.0, 1.0]
    with pytest.raises(tfckpt.DataLossError) as info:
        reader.get_tensor("s")
    assert info.value.tensor == "s"
    assert str(path) in str(info.value)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.binary(max_size=300), max_size=400),
    st.sampled_from([None, 1, 7, 64]),
)
def test_split_strings_matches_slicing(strings, chunk):
    """The struct-based splitter gives exactly the slices, across chunk boundaries too."""
    import tfckpt.bundle.strings as module

    lengths = np.array([len(s) for s in strings], np.uint64)
    body = np.frombuffer(b"".join(strings) + b"tail", np.uint8)
    old = module._SPLIT_CHUNK
    try:
        if chunk is not None:
            module._SPLIT_CHUNK = chunk
        assert module.split_strings(body, lengths) == strings
    finally:
        module._SPLIT_CHUNK = old


def test_split_strings_long_and_nul_terminated_strings():
    import tfckpt.bundle.strings as module

    strings = [b"\x00" * 5, b"", b"a\x00", b"x" * (module._MAX_TABLE_LENGTH + 1)] * 40
    lengths = np.array([len(s) for s in strings], np.uint64)
    assert module.split_strings(b"".join(strings), lengths) == strings
    assert module.split_strings(b"".join(strings[:-1]), lengths[:-1]) == strings[:-1]
