"""The last stage of the read pipeline: strings decoded, byte order swapped, partitioned
tensors assembled."""

from __future__ import annotations

import numpy as np

from tfckpt.bundle.entries import Extent, Layout
from tfckpt.bundle.strings import StringDecodeError, decode_strings
from tfckpt.errors import DataLossError


def assemble(layout: Layout, parts: list[tuple[Extent, np.ndarray]]) -> np.ndarray:
    """A partitioned tensor from its slices (the layout checked that they tile it)."""
    storage = object if layout.is_string else layout.dtype.storage_dtype
    out = np.empty(layout.shape, storage)
    for extent, part in parts:
        out[tuple(slice(start, stop) for start, stop in extent.bounds)] = part
    return out


def from_big_endian(array: np.ndarray, owned: bool) -> np.ndarray:
    # byte_swap_tensor.cc: each element is swapped, complex numbers component by component.
    storage = array.dtype
    unit = storage.itemsize // 2 if storage.kind == "c" else storage.itemsize
    raw = array if owned else array.copy()
    raw.reshape(-1).view(f"u{unit}").byteswap(inplace=True)
    return raw


def decode_string_extent(
    raw: np.ndarray, extent: Extent, big_endian: bool, path: str, name: str
) -> tuple[np.ndarray, int | None]:
    """The strings of one extent as an object array of bytes, and the entry CRC the decoder
    computed (None for an empty extent stored without bytes, which TensorFlow tolerates
    although it writes 4 checksum bytes even then).  Raises DataLossError naming the tensor
    when the layout of lengths and bytes does not hold together."""
    out = np.empty(extent.shape, dtype=object)
    if extent.size == 0 and not out.size:
        return out, None
    try:
        strings, crc = decode_strings(raw, out.size, big_endian)
    except StringDecodeError as exc:
        raise DataLossError(f"corrupt string tensor: {exc}", path=path, tensor=name) from None
    out.reshape(-1)[:] = strings
    return out, crc
