"""Partial reads where there is no memory map (remote files): only the byte ranges holding
the selected elements are fetched.

A stored piece of a tensor is a C-order array of ``shape`` at ``offset`` in its file.  For a
selection (one slice per dimension, as :func:`tfckpt.partial.gather` asks for), the bytes
holding the selected elements are found dimension by dimension from the innermost, runs
less than ``gap`` bytes apart merged at each step (their number stays small: at most
``MAX_RANGES``), fetched with one ``read_ranges`` call, and the selection gathered from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tfckpt.storage.source import ByteSource

MAX_RANGES = 4096  # ranges one partial read asks for, at most (merged beyond that)
GAP_BYTES = 1 << 20  # selected bytes closer than this are fetched by one range
_GATHER_ELEMENTS = 1 << 20  # elements gathered per step (bounds the index arrays)


def selected_ranges(
    shape: Sequence[int],
    itemsize: int,
    coords: Sequence[np.ndarray],
    gap: int = GAP_BYTES,
    max_ranges: int = MAX_RANGES,
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted, disjoint ``[start, end)`` byte ranges, relative to the piece, that hold every
    element whose coordinates are in ``coords`` (one ascending array per dimension).

    Example::

        >>> starts, ends = selected_ranges([4, 1000], 4, [np.array([1, 2]), np.arange(10)], 0)
        >>> list(zip(starts.tolist(), ends.tolist()))
        [(4000, 4040), (8000, 8040)]
    """
    starts = np.zeros(1, np.int64)
    ends = np.full(1, itemsize, np.int64)
    stride = itemsize
    for size, chosen in zip(reversed(shape), reversed(coords)):
        # Combining with this dimension multiplies the count: keep the product bounded.
        starts, ends = _cap(starts, ends, max(1, max_ranges // max(1, len(chosen))))
        base = chosen.astype(np.int64) * stride
        starts = (base[:, None] + starts[None, :]).ravel()
        ends = (base[:, None] + ends[None, :]).ravel()
        starts, ends = _merge(starts, ends, gap)
        stride *= int(size)
    return _cap(starts, ends, max_ranges)


def _merge(starts: np.ndarray, ends: np.ndarray, gap: int) -> tuple[np.ndarray, np.ndarray]:
    if len(starts) < 2:
        return starts, ends
    breaks = starts[1:] > ends[:-1] + gap
    return starts[np.r_[True, breaks]], ends[np.r_[breaks, True]]


def _cap(starts: np.ndarray, ends: np.ndarray, most: int) -> tuple[np.ndarray, np.ndarray]:
    """At most about ``most`` ranges: the smallest gaps between them merged away."""
    if len(starts) <= most:
        return starts, ends
    gaps = starts[1:] - ends[:-1]
    breaks = np.zeros(len(gaps), bool)
    if most > 1:  # keep the (most - 1) widest gaps
        breaks[np.argpartition(gaps, len(gaps) - (most - 1))[len(gaps) - (most - 1) :]] = True
    return starts[np.r_[True, breaks]], ends[np.r_[breaks, True]]


class RangedPiece:
    """A stored piece of a tensor on a source without views; ``piece[slices]`` fetches the
    byte ranges holding the selected elements and returns them as an owned array.

    Example::

        part = RangedPiece(source, offset=128, shape=(1000, 64), dtype=np.dtype("<f4"))
        rows = part[slice(10, 20, 1), slice(0, 64, 1)]
    """

    def __init__(
        self, source: ByteSource, offset: int, shape: Sequence[int], dtype: np.dtype[Any]
    ) -> None:
        self.source = source
        self.offset = offset
        self.shape = tuple(int(n) for n in shape)
        self.dtype = dtype

    def __getitem__(self, index: tuple[slice, ...]) -> np.ndarray:
        coords = [np.arange(n)[s] for n, s in zip(self.shape, index)]  # in the order asked
        out_shape = tuple(len(c) for c in coords)
        if 0 in out_shape:
            return np.empty(out_shape, self.dtype)
        itemsize = self.dtype.itemsize
        ascending = [np.sort(c) for c in coords]
        starts, ends = selected_ranges(self.shape, itemsize, ascending, GAP_BYTES, MAX_RANGES)
        buffers = self.source.read_ranges(
            list(zip((starts + self.offset).tolist(), (ends - starts).tolist()))
        )
        strides = [itemsize * int(np.prod(self.shape[d + 1 :])) for d in range(len(self.shape))]
        if len(buffers) == 1:
            return self._lattice(buffers[0], int(starts[0]), ascending, strides, index)
        compact = np.concatenate([np.frombuffer(b, np.uint8) for b in buffers]).view(self.dtype)
        into = np.concatenate(([0], np.cumsum(ends - starts)[:-1]))  # each range in compact
        out = np.empty(out_shape, self.dtype)
        flat = out.reshape(-1)
        for first in range(0, flat.size, _GATHER_ELEMENTS):
            last = min(flat.size, first + _GATHER_ELEMENTS)
            where = np.unravel_index(np.arange(first, last), out_shape)
            byte = sum(c[w] * s for c, w, s in zip(coords, where, strides))
            j = np.searchsorted(starts, byte, side="right") - 1
            flat[first:last] = compact[(into[j] + byte - starts[j]) // itemsize]
        return out

    def _lattice(
        self,
        buffer: bytearray,
        start: int,
        ascending: list[np.ndarray],
        strides: list[int],
        index: tuple[slice, ...],
    ) -> np.ndarray:
        """The selection as a strided view of one fetched range (from ``start``), its axes
        flipped where the slice steps backwards."""
        first = sum(int(c[0]) * s for c, s in zip(ascending, strides))
        steps = [int(c[1] - c[0]) * s if len(c) > 1 else s for c, s in zip(ascending, strides)]
        base = np.frombuffer(buffer, np.uint8)[first - start :]
        view = np.lib.stride_tricks.as_strided(
            base.view(self.dtype),  # (ranges start and end on element boundaries)
            shape=tuple(len(c) for c in ascending),
            strides=tuple(steps),
            writeable=False,
        )
        flips = tuple(slice(None, None, -1) if s.step < 0 else slice(None) for s in index)
        return view[flips]
