"""The protobuf wire format, field by field, for mutations protobuf's API cannot make.

:func:`split` cuts a serialized message into its top-level fields (number, wire type, the
raw payload); :func:`join` writes them back, optionally with non-minimal varints (each
padded with continuation bytes, which protobuf accepts).  Reordering, duplicating and
padding fields this way gives messages that protobuf reads as the original (or, for a
duplicated scalar, as its last value), so a reader must read them the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

VARINT, FIXED64, LENGTH, START_GROUP, END_GROUP, FIXED32 = 0, 1, 2, 3, 4, 5


@dataclass(frozen=True)
class Field:
    number: int
    wire: int
    value: int | bytes  # varints as ints, everything else as its raw bytes


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("bad varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def varint(value: int, padding: int = 0) -> bytes:
    """``value`` (negative: as its 64-bit two's complement) as a varint, followed by
    ``padding`` redundant continuation groups (a non-minimal encoding)."""
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value or padding:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
        if not value:
            break
    for i in range(padding):
        out.append(0x80 if i < padding - 1 else 0x00)
    return bytes(out)


def split(data: bytes) -> list[Field]:
    """The top-level fields of a serialized message (ValueError if it does not parse)."""
    fields = []
    pos = 0
    while pos < len(data):
        tag, pos = read_varint(data, pos)
        number, wire = tag >> 3, tag & 7
        value: int | bytes
        if wire == VARINT:
            value, pos = read_varint(data, pos)
        elif wire == LENGTH:
            length, pos = read_varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        elif wire in (FIXED32, FIXED64):
            width = 4 if wire == FIXED32 else 8
            value, pos = data[pos : pos + width], pos + width
        else:
            raise ValueError(f"wire type {wire}")
        if pos > len(data):
            raise ValueError("field runs past the end")
        fields.append(Field(number, wire, value))
    return fields


def join(fields: list[Field], padding: int = 0) -> bytes:
    """Serializes ``fields`` in the order given; varints padded with ``padding`` groups."""
    out = bytearray()
    for f in fields:
        out += varint(f.number << 3 | f.wire, padding)
        if f.wire == VARINT:
            assert isinstance(f.value, int)
            out += varint(f.value, padding)
        elif f.wire == LENGTH:
            assert isinstance(f.value, bytes)
            out += varint(len(f.value), padding) + f.value
        else:
            assert isinstance(f.value, bytes)
            out += f.value
    return bytes(out)


def nested_groups(number: int, depth: int) -> bytes:
    """Field ``number`` as ``depth`` groups nested in each other (a deprecated wire type
    that parsers must still skip, recursively, when the field is unknown)."""
    return varint(number << 3 | START_GROUP) * depth + varint(number << 3 | END_GROUP) * depth
