"""Shapes that TensorFlow accepts but NumPy cannot hold."""

from __future__ import annotations

import math

from tfckpt.dtypes import DType
from tfckpt.errors import UnsupportedError

MAX_RANK = 64  # NumPy's limit (TensorFlow allows up to 254 dimensions)


def check_numpy_shape(shape: tuple[int, ...], dtype: DType, path: str, name: str) -> None:
    """UnsupportedError for more than 64 dimensions, or a zero dimension beside others
    whose product overflows (without a zero, an overflowing element count cannot match the
    bytes stored, which the callers report as data loss)."""
    if len(shape) > MAX_RANK:
        raise UnsupportedError(
            f"a {len(shape)}-dimensional tensor; NumPy arrays have at most {MAX_RANK} dimensions",
            path=path,
            tensor=name,
        )
    itemsize = 8 if dtype.name == "string" else dtype.size  # strings: object pointers
    if 0 in shape and math.prod(d for d in shape if d) * itemsize >= 1 << 63:
        raise UnsupportedError(
            f"shape {list(shape)} is too large for a NumPy array", path=path, tensor=name
        )
