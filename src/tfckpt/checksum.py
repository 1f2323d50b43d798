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


def unmask_array(masked: np.ndarray) -> np.ndarray:
    """:func:`unmask` of every element (uint32 in, int64 out)."""
    rot = (masked.astype(np.int64) - _MASK_DELTA) & _U32
    return ((rot >> 17) | (rot << 15)) & _U32
