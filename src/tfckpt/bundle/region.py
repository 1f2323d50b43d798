"""Partial reads of numeric V2 tensors: ``tensor[index]`` from only the bytes it needs.

A partial read uses the tensor's extents as every read does (:class:`tfckpt.bundle.entries.
Layout`, one per stored slice); each is range-checked, then, locally, viewed through the
memory map once its file's size now is known to cover it (a truncated file is DataLossError,
not SIGBUS), or, remotely, read by ranged requests of just the rows the selection touches
(:class:`tfckpt.partial_ranges.RangedPiece`).  :func:`tfckpt.partial.gather` copies the
selection out of the pieces.  No checksum is verified: it covers whole tensors.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tfckpt.bundle.data_files import DataFiles, check_ranges, unpin
from tfckpt.bundle.entries import Extent, Layout
from tfckpt.bundle.finish import from_big_endian
from tfckpt.partial import Bounds, gather
from tfckpt.partial_ranges import RangedPiece
from tfckpt.storage.source import ByteSource, LocalFile


def read_region(
    layout: Layout,
    files: DataFiles,
    selection: list[slice],
    int_axes: list[int],
    big_endian: bool,
) -> np.ndarray:
    """The numeric tensor of ``layout`` at the normalized ``selection`` (``int_axes``
    dropped), an owned array in native byte order.

    Raises:
        DataLossError: an extent lies outside its data file (or past its end now).
        CheckpointNotFoundError: a data file is missing.

    Example::

        selection, int_axes = normalize_index(np.s_[0, 2:4], layout.shape)
        read_region(layout, files, selection, int_axes, big_endian=False)
    """
    name = layout.name
    storage = layout.dtype.storage_dtype
    pieces: list[tuple[Bounds, Any]] = []
    pinned: dict[int, ByteSource] = {}  # held open until the selection is gathered
    current: dict[int, int] = {}  # the local files' sizes now (fstat, once each)
    try:
        for extent in layout.extents:
            source = pinned.get(extent.shard)
            if source is None:
                source = pinned[extent.shard] = files.pin(extent.shard, name)
            offsets, sizes = np.array([extent.offset]), np.array([extent.size])
            check_ranges(source, [name], offsets, sizes)
            if not isinstance(source, LocalFile):  # no map: ranged reads of the selection
                pieces.append(
                    (extent.bounds, RangedPiece(source, extent.offset, extent.shape, storage))
                )
                continue
            if extent.shard not in current:
                current[extent.shard] = source.current_size()
            if extent.size:  # mapped pages past the end would be SIGBUS
                check_ranges(source, [name], offsets, sizes, current[extent.shard])

            def view(source: LocalFile = source, extent: Extent = extent) -> np.ndarray:
                data = source.view(extent.offset, extent.size)
                return np.frombuffer(data, storage).reshape(extent.shape)

            pieces.append((extent.bounds, view))
        out = gather(pieces, selection, int_axes, storage)
    finally:
        for source in pinned.values():
            unpin(source)
    if big_endian and storage.itemsize > 1:
        out = from_big_endian(out, True)
    return out
