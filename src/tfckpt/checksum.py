"""CRC32C (Castagnoli) as TensorFlow uses it, with its masking.

Source: tensorflow/core/lib/hash/crc32c.h (``Mask``/``Unmask``).  A masked CRC is stored
wherever a CRC sits next to the data it covers (table block trailers, bundle entries,
string-tensor length checksums), so that a CRC of a CRC does not look valid.  The
``crc32c`` package computes it with the CPU's CRC32 instruction where there is one.
"""

from __future__ import annotations

from typing import Any

import crc32c as _crc32c
import numpy as np

_MASK_DELTA = 0xA282EAD8
_U32 = 0xFFFFFFFF


def crc32c(data: Any, value: int = 0) -> int:
    """CRC32C of a bytes-like object, extending ``value`` (0 starts a new checksum)."""
    return _crc32c.crc32c(data, value)


def mask(crc: int) -> int:
    """Masks a CRC for storage next to the data it covers."""
    return ((((crc >> 15) | (crc << 17)) & _U32) + _MASK_DELTA) & _U32


def unmask(masked: int) -> int:
    """Inverts :func:`mask`."""
    rot = (masked - _MASK_DELTA) & _U32
    return ((rot >> 17) | (rot << 15)) & _U32


def mask_array(crcs: np.ndarray) -> np.ndarray:
    """:func:`mask` of every element (int64 or uint32 in, int64 out)."""
    crc = crcs.astype(np.int64)
    return ((((crc >> 15) | (crc << 17)) & _U32) + _MASK_DELTA) & _U32


def unmask_array(masked: np.ndarray) -> np.ndarray:
    """:func:`unmask` of every element (uint32 in, int64 out)."""
    rot = (masked.astype(np.int64) - _MASK_DELTA) & _U32
    return ((rot >> 17) | (rot << 15)) & _U32


# CRC combination, so that pieces of one buffer can be checked in parallel: the CRC of
# A + B from crc(A), crc(B) and len(B), by multiplying crc(A) by x^(8 len(B)) modulo the
# Castagnoli polynomial (the method of zlib's crc32_combine, on the reflected polynomial).
_POLY_REFLECTED = 0x82F63B78
_X_POW_2K: list[int] = []  # x^(2^k) mod P, k = 0..63


def _multiply_mod_p(a: int, b: int) -> int:
    product = 0
    m = 1 << 31
    while m:
        if a & m:
            product ^= b
        b = (b >> 1) ^ _POLY_REFLECTED if b & 1 else b >> 1
        m >>= 1
    return product


def _x_pow_8n(n: int) -> int:
    if not _X_POW_2K:
        power = 1 << 30  # x^1 (bit 31 is x^0 in the reflected representation)
        for _ in range(64):
            _X_POW_2K.append(power)
            power = _multiply_mod_p(power, power)
    result = 1 << 31  # x^0
    k = 3  # 8n = n * 2^3
    while n:
        if n & 1:
            result = _multiply_mod_p(_X_POW_2K[k], result)
        n >>= 1
        k += 1
    return result


def crc32c_combine(crc_a: int, crc_b: int, length_b: int) -> int:
    """The CRC32C of ``A + B`` given ``crc32c(A)``, ``crc32c(B)`` and ``len(B)``."""
    return _multiply_mod_p(_x_pow_8n(length_b), crc_a) ^ crc_b
