"""TensorFlow's ordered code (core/lib/strings/ordered_code.cc), as slice keys use it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfckpt import ordered_code as oc

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
int64s = st.integers(min_value=INT64_MIN, max_value=INT64_MAX)
uint64s = st.integers(min_value=0, max_value=(1 << 64) - 1)

# -- NumIncreasing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x00"),
        (1, b"\x01\x01"),
        (2, b"\x01\x02"),
        (255, b"\x01\xff"),
        (256, b"\x02\x01\x00"),
        (0x1234, b"\x02\x12\x34"),
        (0x10000, b"\x03\x01\x00\x00"),
        ((1 << 64) - 1, b"\x08" + b"\xff" * 8),
    ],
)
def test_num_increasing_known(value, encoded):
    assert oc.write_num_increasing(value) == encoded
    assert oc.read_num_increasing(encoded, 0) == (value, len(encoded))
    # at an offset, followed by more data
    assert oc.read_num_increasing(b"zz" + encoded + b"\x07", 2) == (value, 2 + len(encoded))


@given(uint64s)
def test_num_increasing_round_trip(value):
    encoded = oc.write_num_increasing(value)
    assert len(encoded) == 1 + (value.bit_length() + 7) // 8
    assert oc.read_num_increasing(encoded, 0) == (value, len(encoded))


@given(uint64s, uint64s)
def test_num_increasing_sorts_as_numbers(a, b):
    ea, eb = oc.write_num_increasing(a), oc.write_num_increasing(b)
    assert (ea < eb) == (a < b)
    assert (ea == eb) == (a == b)


def test_num_increasing_rejects_negative():
    with pytest.raises(ValueError):
        oc.write_num_increasing(-1)


@pytest.mark.parametrize("bad", [b"", b"\x02\x01", b"\x09" + b"\x00" * 9, b"\x05"])
def test_num_increasing_bad_input(bad):
    with pytest.raises(oc.OrderedCodeError):
        oc.read_num_increasing(bad, 0)


def test_ordered_code_error_is_value_error():
    assert issubclass(oc.OrderedCodeError, ValueError)


# -- String --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (b"", b"\x00\x01"),
        (b"abc", b"abc\x00\x01"),
        (b"\x00", b"\x00\xff\x00\x01"),
        (b"\xff", b"\xff\x00\x00\x01"),
        (b"a\x00b\xffc", b"a\x00\xffb\xff\x00c\x00\x01"),
        (b"\x00\x01", b"\x00\xff\x01\x00\x01"),
        (b"\xff\xff", b"\xff\x00\xff\x00\x00\x01"),
        (b"\x01\xfe", b"\x01\xfe\x00\x01"),
    ],
)
def test_string_known(value, encoded):
    assert oc.write_string(value) == encoded
    assert oc.read_string(encoded, 0) == (value, len(encoded))
    assert oc.read_string(b"\x05" + encoded + b"tail", 1) == (value, 1 + len(encoded))


@given(st.binary(max_size=64))
def test_string_round_trip(value):
    encoded = oc.write_string(value)
    assert encoded.endswith(b"\x00\x01")
    assert oc.read_string(encoded, 0) == (value, len(encoded))


@given(st.binary(max_size=24), st.binary(max_size=24))
def test_string_sorts_as_strings(a, b):
    ea, eb = oc.write_string(a), oc.write_string(b)
    assert (ea < eb) == (a < b)
    assert (ea == eb) == (a == b)


@given(st.binary(max_size=16), st.binary(max_size=16), st.binary(max_size=8))
def test_string_followed_by_more_sorts_by_string_first(a, b, tail):
    # Keys are String(name) + more fields: the name decides the order.
    if a != b:
        assert (oc.write_string(a) + tail < oc.write_string(b)) == (a < b)


@pytest.mark.parametrize(
    "bad",
    [b"", b"abc", b"abc\x00", b"a\x00\x02", b"a\xff\x01\x00\x01", b"a\xff", b"\x00\x00\x01"],
)
def test_string_bad_input(bad):
    with pytest.raises(oc.OrderedCodeError):
        oc.read_string(bad, 0)


# -- SignedNumIncreasing -------------------------------------------------------------------

KNOWN_SIGNED = [
    (0, b"\x80"),
    (1, b"\x81"),
    (63, b"\xbf"),
    (64, b"\xc0\x40"),
    (-1, b"\x7f"),
    (-64, b"\x40"),
    (-65, b"\x3f\xbf"),
    (8191, b"\xdf\xff"),
    (8192, b"\xe0\x20\x00"),
    (-8193, b"\x1f\xdf\xff"),
    ((1 << 48) - 1, b"\xfe" + b"\xff" * 6),
    (1 << 48, b"\xff\x01" + b"\x00" * 6),
    ((1 << 55) - 1, b"\xff\x7f" + b"\xff" * 6),
    (1 << 55, b"\xff\x80\x80" + b"\x00" * 6),
    (-(1 << 55) - 1, b"\x00\x7f\x7f" + b"\xff" * 6),
    (INT64_MAX, b"\xff\xc0\x7f" + b"\xff" * 7),
    (INT64_MIN, b"\x00\x3f\x80" + b"\x00" * 7),
]


def _reference_signed(value: int) -> bytes:
    """Independent encoder following ordered_code.cc's description.

    Non-negative n: the shortest length L (1..10) with n < 2**(7L-1), written as L big-endian
    bytes whose top bits are L ones and a zero (the header), the value below them.
    Negative n: the bitwise complement of the encoding of ~n.
    """
    if value < 0:
        return bytes(b ^ 0xFF for b in _reference_signed(~value))
    length = next(n for n in range(1, 11) if value < 1 << (7 * n - 1))
    header = ((1 << length) - 1) << (8 * length - length)
    assert header & value == 0
    return (header | value).to_bytes(length, "big")


@pytest.mark.parametrize(("value", "encoded"), KNOWN_SIGNED)
def test_signed_known(value, encoded):
    assert oc.write_signed_num_increasing(value) == encoded
    assert oc.read_signed_num_increasing(encoded, 0) == (value, len(encoded))
    assert oc.read_signed_num_increasing(b"\x00" + encoded + b"\x80", 1) == (
        value,
        1 + len(encoded),
    )


@pytest.mark.parametrize(("value", "encoded"), KNOWN_SIGNED)
def test_reference_encoder_agrees_with_known(value, encoded):
    assert _reference_signed(value) == encoded


@pytest.mark.parametrize("length", range(1, 11))
def test_signed_length_boundaries(length):
    # The largest value of each length and the smallest of the next.
    top = (1 << (7 * length - 1)) - 1
    candidates = {top, -top - 1, top + 1, -top - 2}
    for value in {min(max(v, INT64_MIN), INT64_MAX) for v in candidates}:
        encoded = oc.write_signed_num_increasing(value)
        assert encoded == _reference_signed(value), value
        assert oc.read_signed_num_increasing(encoded, 0) == (value, len(encoded))
    assert len(oc.write_signed_num_increasing(min(top, INT64_MAX))) == length


@settings(max_examples=300, deadline=None)
@given(int64s)
def test_signed_round_trip(value):
    encoded = oc.write_signed_num_increasing(value)
    assert 1 <= len(encoded) <= 10
    assert encoded == _reference_signed(value)
    assert oc.read_signed_num_increasing(encoded, 0) == (value, len(encoded))
    assert oc.read_signed_num_increasing(encoded + b"\xff\x00", 0) == (value, len(encoded))


@settings(max_examples=300)
@given(int64s, int64s)
def test_signed_sorts_as_numbers(a, b):
    ea, eb = oc.write_signed_num_increasing(a), oc.write_signed_num_increasing(b)
    assert (ea < eb) == (a < b)
    assert (ea == eb) == (a == b)


@given(st.lists(int64s, min_size=2, max_size=20))
def test_signed_sorting_a_list(values):
    encoded = sorted(oc.write_signed_num_increasing(v) for v in values)
    assert [oc.read_signed_num_increasing(e, 0)[0] for e in encoded] == sorted(values)


@pytest.mark.parametrize("value", [INT64_MAX + 1, INT64_MIN - 1, 1 << 70])
def test_signed_rejects_out_of_range(value):
    with pytest.raises(ValueError):
        oc.write_signed_num_increasing(value)


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"\xc0",  # says two bytes, has one
        b"\x3f",  # negative, two bytes, has one
        b"\xff\x00\x00",  # eight bytes, has three
        b"\xff\x80" + b"\x00" * 5,  # nine bytes, has seven
        b"\xff\xc0\x00",  # ten bytes, has three
        b"\xff\xe0" + b"\x00" * 9,  # longer than ten bytes
    ],
)
def test_signed_bad_input(bad):
    with pytest.raises(oc.OrderedCodeError):
        oc.read_signed_num_increasing(bad, 0)
