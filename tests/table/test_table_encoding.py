"""The table writer's fast encoders against the loops of TensorFlow's sources.

encode_varint (unrolled) against the varint loop of coding.cc, and BlockBuilder's XOR
shared-prefix computation against the byte loop of block_builder.cc.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfckpt.table.block import BlockBuilder
from tfckpt.table.format import encode_varint

U64 = st.integers(0, 2**64 - 1)


def _varint_loop(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


@pytest.mark.parametrize("k", range(64))
def test_varint_at_powers_of_two(k):
    """Around every power of two, where the varint gains a byte."""
    for value in (2**k - 1, 2**k, 2**k + 1):
        assert encode_varint(value) == _varint_loop(value)


@given(U64)
def test_varint_matches_loop(value):
    """Any uint64."""
    assert encode_varint(value) == _varint_loop(value)


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
    """Any sorted keys, value sizes around the varint limits, any restart interval."""
    entries = [
        (key, b"v" * value_sizes[i % len(value_sizes)]) for i, key in enumerate(sorted(keys))
    ]
    builder = BlockBuilder(restart_interval)
    for key, value in entries:
        builder.add(key, value)
    assert builder.finish() == _reference_block(entries, restart_interval)


def test_block_builder_prefixes_and_high_bytes():
    """Keys that are prefixes of each other and bytes 0x00 and 0xff."""
    entries = [(k, b"x") for k in [b"", b"\x00", b"\x00\x00", b"a", b"a\xff", b"ab", b"\xff" * 3]]
    builder = BlockBuilder(16)
    for key, value in entries:
        builder.add(key, value)
    assert builder.finish() == _reference_block(entries, 16)
