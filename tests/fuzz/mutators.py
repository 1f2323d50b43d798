"""Byte-level mutations of one file: what a disk, a network or a careless tool does to it.

Each mutator takes a random generator, the file's bytes and a donor file (another file of
some seed, for splices) and returns the mutated bytes with a description precise enough
to reproduce it by hand.  Positions favour the places where a table keeps its framing
(the 48-byte footer, block trailers at the end) as often as anywhere else.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable

Mutator = Callable[[random.Random, bytes, bytes], tuple[bytes, str]]

# Byte values and integers that sit on the edges of what parsers accept.
INTERESTING_BYTES = (0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF)
INTERESTING_INTS = (
    0,
    1,
    0x7F,
    0x80,
    0xFF,
    0x100,
    0x7FFF,
    0xFFFF,
    0x7FFFFFFF,
    0x80000000,
    0xFFFFFFFF,
    0x7FFFFFFFFFFFFFFF,
    0x8000000000000000,
    0xFFFFFFFFFFFFFFFF,
)


def position(rng: random.Random, size: int) -> int:
    """A byte position: half the time in the last 64 bytes (footer, trailers), else
    anywhere."""
    if size == 0:
        return 0
    if rng.random() < 0.5:
        return max(0, size - 1 - rng.randrange(min(size, 64)))
    return rng.randrange(size)


def flip_bit(rng: random.Random, data: bytes, donor: bytes) -> tuple[bytes, str]:
    if not data:
        return data, "flip (empty file)"
    at, bit = position(rng, len(data)), rng.randrange(8)
    out = bytearray(data)
    out[at] ^= 1 << bit
    return bytes(out), f"flip bit {bit} of byte {at}"


def set_bytes(rng: random.Random, data: bytes, donor: bytes) -> tuple[bytes, str]:
    if not data:
        return data, "set (empty file)"
    out = bytearray(data)
    changes = []
    for _ in range(rng.choice((1, 1, 2, 4, 8))):
        at = position(rng, len(data))
        value = rng.choice(INTERESTING_BYTES) if rng.random() < 0.7 else rng.randrange(256)
        out[at] = value
        changes.append(f"{at}={value:#04x}")
    return bytes(out), "set bytes " + ",".join(changes)


def set_integer(rng: random.Random, data: bytes, donor: bytes) -> tuple[bytes, str]:
    """An interesting integer written over the file as a little-endian 4 or 8 bytes."""
    width = rng.choice((4, 8))
    if len(data) < width:
        return data, "set integer (file too short)"
    value = rng.choice(INTERESTING_INTS) & ((1 << (8 * width)) - 1)
    at = min(position(rng, len(data)), len(data) - width)
    packed = struct.pack("<I" if width == 4 else "<Q", value)
    return data[:at] + packed + data[at + width :], f"set u{8 * width} {value:#x} at {at}"


def truncate(rng: random.Random, data: bytes, donor: bytes) -> tuple[bytes, str]:
    keep = rng.randrange(len(data)) if data and rng.random() < 0.5 else position(rng, len(data))
    return data[:keep], f"truncate to {keep} of {len(data)} bytes"


def extend(rng: random.Random, data: bytes, donor: bytes) -> tuple[bytes, str]:
    n = rng.choice((1, 7, 48, 4096))
    filler = bytes(n) if rng.random() < 0.5 else rng.randbytes(n)
    return data + filler, f"append {n} bytes"


def delete_range(rng: random.Random, data: bytes, donor: bytes) -> tuple[bytes, str]:
    if not data:
        return data, "delete (empty file)"
    at = position(rng, len(data))
    n = rng.choice((1, 2, 4, 16, 256))
    return data[:at] + data[at + n :], f"delete {n} bytes at {at}"


def insert_range(rng: random.Random, data: bytes, donor: bytes) -> tuple[bytes, str]:
    at = position(rng, len(data))
    n = rng.choice((1, 2, 4, 16))
    filler = bytes([rng.choice(INTERESTING_BYTES)]) * n if rng.random() < 0.5 else rng.randbytes(n)
    return data[:at] + filler + data[at:], f"insert {n} bytes at {at}"


def never_ending_varint(rng: random.Random, data: bytes, donor: bytes) -> tuple[bytes, str]:
    """A run of 0xFF bytes: every varint starting in it has its continuation bit set."""
    at = position(rng, len(data))
    n = rng.choice((6, 11, 32))
    return data[:at] + b"\xff" * n + data[at + n :], f"0xff x{n} at {at}"


def duplicate_range(rng: random.Random, data: bytes, donor: bytes) -> tuple[bytes, str]:
    """A chunk of the file copied over another place of it (a misdirected write)."""
    if len(data) < 2:
        return data, "duplicate (file too short)"
    n = rng.randrange(1, min(len(data), 64) + 1)
    source = rng.randrange(len(data) - n + 1)
    target = rng.randrange(len(data) - n + 1)
    chunk = data[source : source + n]
    return data[:target] + chunk + data[target + n :], f"copy {n} bytes from {source} to {target}"


def splice(rng: random.Random, data: bytes, donor: bytes) -> tuple[bytes, str]:
    """The head of this file joined to the tail of another."""
    cut = rng.randrange(len(data) + 1)
    donor_cut = rng.randrange(len(donor) + 1)
    return data[:cut] + donor[donor_cut:], f"splice at {cut} with a donor's tail from {donor_cut}"


def random_bytes(rng: random.Random, data: bytes, donor: bytes) -> tuple[bytes, str]:
    n = rng.choice((0, 1, 47, 48, 49, 100, len(data)))
    return rng.randbytes(n), f"replace with {n} random bytes"


MUTATORS: tuple[tuple[Mutator, int], ...] = (  # (mutator, weight)
    (flip_bit, 6),
    (set_bytes, 5),
    (set_integer, 3),
    (truncate, 4),
    (extend, 1),
    (delete_range, 2),
    (insert_range, 2),
    (never_ending_varint, 2),
    (duplicate_range, 2),
    (splice, 2),
    (random_bytes, 1),
)


def mutate(rng: random.Random, data: bytes, donor: bytes) -> tuple[bytes, str]:
    """One or a few stacked mutations of ``data``."""
    mutators, weights = zip(*MUTATORS)
    descriptions = []
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        mutator = rng.choices(mutators, weights)[0]
        data, description = mutator(rng, data, donor)
        descriptions.append(description)
    return data, "; ".join(descriptions)
