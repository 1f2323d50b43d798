"""Fetching the extents of one data file: the strategies of the read pipeline.

One extent is read with one positional read, or in parallel pieces when it is large.

Reading tensor by tensor costs a system call, an allocation and its page faults per
tensor; for tens of thousands of small tensors that overhead is most of the time.  Here
the tensors of a data file are laid out in one *arena* (a single allocation, which NumPy
backs with huge pages where the OS allows) mirroring their place in the file, the arena is
filled with a few large positional reads, and each tensor becomes an array over its part
of the arena.  Reads and CRC32C checks run in a few threads when there is enough data to
share (both release the GIL for large buffers), chunk by chunk, so that each chunk's
checksums run while its bytes are still in cache; for many small tensors, one thread reads
while another checks the chunks already read.

The arrays are writable and belong to the caller, but they share the arena: its memory is
returned when the last of them is gone.

Sources without memory maps (remote files) take another path: each extent gets its own
buffer, filled by the source's ``read_ranges`` (which coalesces neighbouring ranges and
fetches them concurrently); ``copy=False`` gives these owned arrays too.
"""

from __future__ import annotations

import itertools
import queue
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np

from tfckpt import checksum
from tfckpt.bundle.threads import shared_pool, workers
from tfckpt.storage.source import ByteSource, LocalFile

# A chunk is what one thread reads and checks in one go.
CHUNK_BYTES = 8 << 20
# Below this much data, one thread is faster than handing work to others.
PARALLEL_BYTES = 32 << 20
# Mean tensor size from which zero-copy checksums are spread over threads.
LARGE_TENSOR_BYTES = 256 << 10
# An arena may include unread gaps between tensors up to this fraction of its size.
MAX_GAP_FRACTION = 0.1

_crc32c = checksum.crc32c
Mismatch = Callable[[int, int], None]  # (index in the group, actual crc32c); raises


@dataclass
class Group:
    """Extents of one data file to read, as parallel columns (ranges already checked):
    each becomes an array of its storage dtype and shape."""

    storage: list[np.dtype[Any]]
    shapes: list[list[int]]
    offsets: np.ndarray
    sizes: np.ndarray
    crcs: np.ndarray  # unmasked


def _map(function: Callable[[Any], Any], items: list[Any], total_bytes: int) -> list[Any]:
    if total_bytes >= PARALLEL_BYTES and len(items) > 1 and workers() > 1:
        return list(shared_pool().map(function, items))
    return [function(item) for item in items]


def _split(size: int) -> list[tuple[int, int]]:
    parts = max(1, min(workers() * 2, size // CHUNK_BYTES))
    cuts = [size * i // parts for i in range(parts + 1)]
    return list(itertools.pairwise(cuts))


def _read_large(shard: LocalFile, array: np.ndarray, offset: int, verify: bool) -> int | None:
    """Fills the fresh, contiguous ``array`` from ``offset`` in parallel pieces; returns
    the CRC32C of its bytes when ``verify`` (combined from the pieces' CRCs)."""
    memory = array.reshape(-1).view(np.uint8).data
    pieces = _split(memory.nbytes)

    def run(bounds: tuple[int, int]) -> int:
        lo, hi = bounds
        shard.readinto(offset + lo, memory[lo:hi])
        return _crc32c(memory[lo:hi]) if verify else 0

    return _combine(pieces, _map(run, pieces, memory.nbytes)) if verify else None


def crc(data: Any) -> int:
    """CRC32C of a buffer, computed in parallel pieces when it is large."""
    if isinstance(data, np.ndarray):  # ml_dtypes arrays export no buffer: view as bytes
        data = data.reshape(-1).view(np.uint8)
    memory = memoryview(data).cast("B")
    if memory.nbytes < PARALLEL_BYTES or workers() < 2:
        return _crc32c(memory)
    pieces = _split(memory.nbytes)
    return _combine(pieces, _map(lambda b: _crc32c(memory[b[0] : b[1]]), pieces, memory.nbytes))


def _combine(pieces: list[tuple[int, int]], crcs: list[int]) -> int:
    total = crcs[0]
    for (lo, hi), crc in zip(pieces[1:], crcs[1:]):
        total = checksum.crc32c_combine(total, crc, hi - lo)
    return total


def _chunk_bounds(offsets: np.ndarray, sizes: np.ndarray, start: int) -> list[tuple[int, int]]:
    """Index ranges (in offset order) of tensors whose starts share a CHUNK_BYTES window."""
    chunk = (offsets - start) // CHUNK_BYTES
    cuts = np.flatnonzero(np.diff(chunk)) + 1
    bounds = [0, *cuts.tolist(), len(offsets)]
    return list(itertools.pairwise(bounds))


def _report(bad: list[tuple[int, int]], order: np.ndarray, on_mismatch: Mismatch) -> None:
    if bad:
        position, actual = min(bad)
        on_mismatch(int(order[position]), actual)


def read_owned(
    shard: ByteSource, group: Group, verify: bool, on_mismatch: Mismatch
) -> list[np.ndarray]:
    """Reads the group's extents into writable arrays (several share one arena)."""
    if not group.storage:
        return []
    if not isinstance(shard, LocalFile):
        return _read_ranges(shard, group, verify, on_mismatch)
    if len(group.storage) == 1 and int(group.sizes[0]) >= PARALLEL_BYTES and workers() > 1:
        array = np.empty(group.shapes[0], group.storage[0])
        actual = _read_large(shard, array, int(group.offsets[0]), verify)
        if actual is not None and actual != int(group.crcs[0]):
            on_mismatch(0, actual)
        return [array]
    order = np.argsort(group.offsets, kind="stable")
    offsets = group.offsets[order]
    sizes = group.sizes[order]
    start = int(offsets[0])
    end = int((offsets + sizes).max())
    payload = int(sizes.sum())
    if end - start > payload * (1 + MAX_GAP_FRACTION) + CHUNK_BYTES:
        return _read_each(shard, group, verify, on_mismatch)  # sparse: a few of many
    arena = np.empty(end - start, np.uint8)
    memory = arena.data
    local = (offsets - start).tolist()
    stops = (offsets - start + sizes).tolist()
    crcs = group.crcs[order].tolist()

    def check(bounds: tuple[int, int]) -> list[tuple[int, int]]:
        first, last = bounds
        if not verify:
            return []
        return [
            (i, actual)
            for i in range(first, last)
            if (actual := _crc32c(memory[local[i] : stops[i]])) != crcs[i]
        ]

    def fill(bounds: tuple[int, int]) -> None:
        first, last = bounds
        lo, hi = local[first], max(stops[first:last])
        shard.readinto(start + lo, memory[lo:hi])

    def read(bounds: tuple[int, int]) -> list[tuple[int, int]]:
        fill(bounds)
        return check(bounds)

    chunks = _chunk_bounds(offsets, sizes, start)
    many_small = payload < LARGE_TENSOR_BYTES * len(local)
    if many_small and verify and len(chunks) > 1 and workers() > 1:
        # Many small tensors: this thread reads chunk after chunk (the GIL is free during
        # each read) while one pool thread checksums the chunks already read, and the
        # arrays are made meanwhile.  (Reading and checking in several threads at once was
        # slower and erratic here: concurrent page faults into the new arena contend in the
        # kernel, and the small checksums' GIL hand-offs stall the readers.)
        checked = _check_behind(fill, check, chunks)
        arrays = _arrays(group, arena, start)
        found = checked.result()
    else:
        # Large tensors: threads read and check chunks in parallel (both release the GIL).
        results = _map(read, chunks, 0 if many_small else end - start)
        found = [item for chunk_found in results for item in chunk_found]
        arrays = _arrays(group, arena, start)
    _report(found, order, on_mismatch)
    return arrays


def _arrays(group: Group, arena: np.ndarray, start: int) -> list[np.ndarray]:
    new = np.ndarray
    return [
        new(shape, storage, arena, offset)
        for storage, shape, offset in zip(
            group.storage, group.shapes, (group.offsets - start).tolist()
        )
    ]


def _check_behind(
    fill: Callable[[tuple[int, int]], None],
    check: Callable[[tuple[int, int]], list[tuple[int, int]]],
    chunks: list[tuple[int, int]],
) -> Future[list[tuple[int, int]]]:
    """Fills the chunks in order in this thread while a pool thread checks each one
    filled; returns the future of the checks' findings (all chunks filled on return)."""
    filled: queue.SimpleQueue[tuple[int, int] | None] = queue.SimpleQueue()

    def checker() -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        while (bounds := filled.get()) is not None:
            found.extend(check(bounds))
        return found

    future = shared_pool().submit(checker)
    try:
        for bounds in chunks:
            fill(bounds)
            filled.put(bounds)
    finally:
        filled.put(None)  # a failed read stops the checker too
    return future


def _read_each(
    shard: LocalFile, group: Group, verify: bool, on_mismatch: Mismatch
) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    for i, (storage, shape, offset, size, crc) in enumerate(
        zip(
            group.storage,
            group.shapes,
            group.offsets.tolist(),
            group.sizes.tolist(),
            group.crcs.tolist(),
        )
    ):
        array = np.empty(shape, storage)
        if size:
            shard.readinto(offset, array)
        if verify and (actual := _crc32c(array)) != crc:
            on_mismatch(i, actual)
        out.append(array)
    return out


def map_views(
    shard: ByteSource, group: Group, verify: bool, on_mismatch: Mismatch
) -> list[np.ndarray]:
    """Read-only views of the group's extents in the shard's memory map, CRCs checked
    (owned arrays where the source has no memory map)."""
    if not group.storage:
        return []
    if not isinstance(shard, LocalFile):
        return _read_ranges(shard, group, verify, on_mismatch)
    mapped = shard.mapping()
    offsets = group.offsets.tolist()
    sizes = group.sizes.tolist()
    crcs = group.crcs.tolist()
    if verify:
        order = np.argsort(group.offsets, kind="stable")
        in_order = order.tolist()

        def run(bounds: tuple[int, int]) -> list[tuple[int, int]]:
            first, last = bounds
            found = []
            for position in range(first, last):
                i = in_order[position]
                actual = _crc32c(mapped[offsets[i] : offsets[i] + sizes[i]])
                if actual != crcs[i]:
                    found.append((position, actual))
            return found

        start = int(group.offsets[order[0]])
        bounds = _chunk_bounds(group.offsets[order], group.sizes[order], start)
        total = int(group.sizes.sum())
        # Threads only pay off when the checksums themselves are long (they release the
        # GIL); for many small tensors the Python loop dominates and threads contend.
        if total < LARGE_TENSOR_BYTES * len(offsets):
            total = 0
        results = _map(run, bounds, total)
        _report([item for found in results for item in found], order, on_mismatch)
    # The views' base must hold a buffer export of the map (as np.frombuffer's does), so
    # that closing the data file cannot unmap memory they still point into.
    base = np.frombuffer(mapped, np.uint8)
    new = np.ndarray
    return [
        new(shape, storage, base, offset)
        for storage, shape, offset in zip(group.storage, group.shapes, offsets)
    ]


def _read_ranges(
    shard: ByteSource, group: Group, verify: bool, on_mismatch: Mismatch
) -> list[np.ndarray]:
    """Sources without memory maps: one owned buffer per extent, all fetched by one
    ``read_ranges`` call (the source plans and overlaps the requests), CRCs checked."""
    buffers = shard.read_ranges(list(zip(group.offsets.tolist(), group.sizes.tolist())))
    crcs = group.crcs.tolist()
    out = []
    for i, (storage, shape, buffer) in enumerate(zip(group.storage, group.shapes, buffers)):
        if verify and (actual := crc(buffer)) != crcs[i]:
            on_mismatch(i, actual)
        out.append(np.frombuffer(buffer, storage).reshape(shape))
    return out
