"""TensorFlow's order-preserving key encoding (the parts checkpoints use).

Source: tensorflow/core/lib/strings/ordered_code.cc.

* ``NumIncreasing(n)``: one length byte (the number of significant big-endian bytes of the
  unsigned value; 0 for n == 0) followed by those bytes.
* ``String(s)``: ``s`` with ``\\x00`` escaped as ``\\x00\\xff`` and ``\\xff`` as ``\\xff\\x00``,
  terminated by ``\\x00\\x01``.
* ``SignedNumIncreasing(n)``: a 1-10 byte two's complement encoding whose leading bits hold
  the sign and the length, so that encodings sort like the numbers.
"""

from __future__ import annotations

# Header bits of the first two bytes for each encoding length 1..10 (kLengthToHeaderBits).
_HEADER_BITS = (
    (0x00, 0x00), (0x80, 0x00), (0xC0, 0x00), (0xE0, 0x00), (0xF0, 0x00), (0xF8, 0x00),
    (0xFC, 0x00), (0xFE, 0x00), (0xFF, 0x00), (0xFF, 0x80), (0xFF, 0xC0),
)  # fmt: skip
# Header bits overlapping the payload, per length (kLengthToMask).
_LENGTH_TO_MASK = (
    0, 0x80, 0xC000, 0xE00000, 0xF0000000, 0xF800000000, 0xFC0000000000,
    0xFE000000000000, 0xFF00000000000000, 0x8000000000000000, 0,
)  # fmt: skip
_U64 = (1 << 64) - 1


class OrderedCodeError(ValueError):
    """The bytes are not a valid ordered-code encoding."""


def write_num_increasing(value: int) -> bytes:
    if value < 0:
        raise ValueError("NumIncreasing encodes unsigned numbers only")
    payload = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return bytes((len(payload),)) + payload


def read_num_increasing(buf: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(buf):
        raise OrderedCodeError("NumIncreasing: no length byte")
    length = buf[pos]
    end = pos + 1 + length
    if length > 8 or end > len(buf):
        raise OrderedCodeError("NumIncreasing: bad length")
    return int.from_bytes(buf[pos + 1 : end], "big"), end


def write_string(value: bytes) -> bytes:
    return _escape(value) + b"\x00\x01"


def _escape(value: bytes) -> bytes:
    out = bytearray()
    for byte in value:
        if byte == 0x00:
            out += b"\x00\xff"
        elif byte == 0xFF:
            out += b"\xff\x00"
        else:
            out.append(byte)
    return bytes(out)


def read_string(buf: bytes, pos: int) -> tuple[bytes, int]:
    out = bytearray()
    end = len(buf)
    while pos < end:
        byte = buf[pos]
        if byte == 0x00 or byte == 0xFF:
            if pos + 1 >= end:
                break
            nxt = buf[pos + 1]
            if byte == 0x00 and nxt == 0x01:
                return bytes(out), pos + 2
            if byte == 0x00 and nxt == 0xFF:
                out.append(0x00)
            elif byte == 0xFF and nxt == 0x00:
                out.append(0xFF)
            else:
                raise OrderedCodeError("String: bad escape sequence")
            pos += 2
        else:
            out.append(byte)
            pos += 1
    raise OrderedCodeError("String: missing terminator")


def _signed_length(value: int) -> int:
    x = ~value if value < 0 else value
    bits = x.bit_length() + 1  # plus the sign bit
    return (bits + 6) // 7  # n bytes hold 7n - 1 bits of magnitude


def write_signed_num_increasing(value: int) -> bytes:
    if not -(1 << 63) <= value < (1 << 63):
        raise ValueError("SignedNumIncreasing encodes 64-bit integers only")
    length = _signed_length(value)
    if length == 1:
        return bytes(((_HEADER_BITS[1][0] ^ value) & 0xFF,))
    raw = bytearray((value & ((1 << 80) - 1)).to_bytes(10, "big"))  # sign-extended
    begin = 10 - length
    raw[begin] ^= _HEADER_BITS[length][0]
    raw[begin + 1] ^= _HEADER_BITS[length][1]
    return bytes(raw[begin:])


def read_signed_num_increasing(buf: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(buf):
        raise OrderedCodeError("SignedNumIncreasing: no data")
    xor_mask = _U64 if not buf[pos] & 0x80 else 0
    first = buf[pos] ^ (xor_mask & 0xFF)
    if first != 0xFF:
        length = 8 - (first ^ 0xFF).bit_length()
        if pos + length > len(buf):
            raise OrderedCodeError("SignedNumIncreasing: truncated")
        x = xor_mask
        for i in range(length):
            x = ((x << 8) | buf[pos + i]) & _U64
    else:
        length = 8
        if pos + length > len(buf):
            raise OrderedCodeError("SignedNumIncreasing: truncated")
        second = buf[pos + 1] ^ (xor_mask & 0xFF)
        if second >= 0x80:
            if second < 0xC0:
                length = 9
            elif second == 0xC0 and (buf[pos + 2] ^ (xor_mask & 0xFF)) < 0x80:
                length = 10
            else:
                raise OrderedCodeError("SignedNumIncreasing: too long")
            if pos + length > len(buf):
                raise OrderedCodeError("SignedNumIncreasing: truncated")
        x = int.from_bytes(buf[pos + length - 8 : pos + length], "big")
    x ^= _LENGTH_TO_MASK[length]
    if x >= 1 << 63:
        x -= 1 << 64
    return x, pos + length
