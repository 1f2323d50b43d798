"""Reading part of a tensor: NumPy basic indexing that touches only the bytes it needs.

A request (integers, slices with any step, ``...``) is turned into the selected coordinates
of each dimension.  For every stored piece of the tensor (the whole tensor, or each slice of
a partitioned one) the selected coordinates that fall inside the piece are copied from a
read-only memory map of the data file, so only the pages holding selected elements are read.
Checksums cover whole tensors and cannot be checked on a part: partial reads do not verify
them (read the whole tensor for that).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

Bounds = tuple[tuple[int, int], ...]


def normalize_index(index: Any, shape: Sequence[int]) -> tuple[list[slice], list[int]]:
    """Per-dimension slices (with resolved start/stop/step) and the axes indexed by ints."""
    if not isinstance(index, tuple):
        index = (index,)
    if any(i is Ellipsis for i in index):
        if sum(i is Ellipsis for i in index) > 1:
            raise IndexError("an index can only have a single ellipsis ('...')")
        at = next(n for n, i in enumerate(index) if i is Ellipsis)
        fill = len(shape) - (len(index) - 1)
        index = index[:at] + (slice(None),) * fill + index[at + 1 :]
    if len(index) > len(shape):
        raise IndexError(
            f"too many indices: tensor is {len(shape)}-dimensional, {len(index)} were indexed"
        )
    index = index + (slice(None),) * (len(shape) - len(index))
    slices: list[slice] = []
    int_axes: list[int] = []
    for axis, (item, dim) in enumerate(zip(index, shape)):
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            position = int(item) + dim if item < 0 else int(item)
            if not 0 <= position < dim:
                raise IndexError(
                    f"index {int(item)} is out of bounds for axis {axis} with size {dim}"
                )
            slices.append(slice(position, position + 1, 1))
            int_axes.append(axis)
        elif isinstance(item, slice):
            slices.append(slice(*item.indices(dim)))
        else:
            raise TypeError(
                f"partial reads take integers, slices and '...'; got {type(item).__name__} "
                "(read the whole tensor for fancy indexing)"
            )
    return slices, int_axes


def _overlap(selection: slice, start: int, stop: int) -> tuple[slice, slice] | None:
    """For coordinates range(selection) inside [start, stop): (output slice, piece slice)."""
    coords = range(selection.start, selection.stop, selection.step)
    if not coords:
        return None
    step = selection.step
    first = coords[0]
    if step > 0:
        k0 = max(0, -(-(start - first) // step))
        k1 = min(len(coords), -(-(stop - first) // step))
    else:
        k0 = max(0, -(-(first - (stop - 1)) // -step))
        k1 = min(len(coords), -(-(first - start + 1) // -step))
    if k0 >= k1:
        return None
    src_first = coords[k0] - start
    src_last = coords[k1 - 1] - start
    src_stop = src_last + (1 if step > 0 else -1)
    return slice(k0, k1), slice(src_first, None if src_stop < 0 else src_stop, step)


def gather(
    pieces: Sequence[tuple[Bounds, Any]],
    slices: list[slice],
    int_axes: list[int],
    dtype: np.dtype[Any],
) -> np.ndarray:
    """Copies the selected region out of ``pieces``: (bounds, array-like view) pairs."""
    out_shape = tuple(len(range(s.start, s.stop, s.step)) for s in slices)
    out = np.empty(out_shape, dtype)
    for bounds, view in pieces:
        dest: list[slice] = []
        src: list[slice] = []
        for selection, (start, stop) in zip(slices, bounds):
            found = _overlap(selection, start, stop)
            if found is None:
                break
            dest.append(found[0])
            src.append(found[1])
        else:
            out[tuple(dest)] = view()[tuple(src)] if callable(view) else view[tuple(src)]
    if int_axes:
        out = out.reshape(tuple(n for axis, n in enumerate(out_shape) if axis not in int_axes))
    return out
