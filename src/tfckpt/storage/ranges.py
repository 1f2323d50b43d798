"""Planning ranged reads: which requests fetch a set of byte ranges of one file.

Ranges closer together than ``gap`` bytes are fetched by one request (the bytes between
them are read and dropped: over a network a round trip costs more than a short gap), and
requests longer than ``piece`` bytes are split, so that several run at once and no single
response holds more than ``piece`` bytes (what bounds the memory in flight).

Example::

    >>> [(r.start, r.end) for r in plan([(0, 10), (12, 4), (100, 8)], gap=8, piece=64)]
    [(0, 16), (100, 108)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Copy:
    """``size`` bytes of a response, from ``start`` in it, go to ``into`` in range
    ``target`` (an index into the ranges planned)."""

    target: int
    into: int
    start: int
    size: int


@dataclass
class Request:
    """One ranged read of bytes ``start`` to ``end`` (exclusive) and where they go."""

    start: int
    end: int
    copies: list[Copy] = field(default_factory=list)

    @property
    def size(self) -> int:
        return self.end - self.start


def plan(ranges: Sequence[tuple[int, int]], *, gap: int, piece: int) -> list[Request]:
    """The requests that fetch every ``(offset, size)`` range, in offset order.

    Ranges may overlap or repeat; empty ranges need no request.  Raises ValueError for a
    negative offset or size, or a ``piece`` below 1.
    """
    if piece < 1:
        raise ValueError(f"piece must be at least 1 byte, got {piece}")
    order = sorted((i for i, (_, size) in enumerate(ranges) if size), key=lambda i: ranges[i][0])
    runs: list[tuple[int, int, list[int]]] = []  # (start, end, members)
    for i in order:
        offset, size = ranges[i]
        if offset < 0 or size < 0:
            raise ValueError(f"range {i} is ({offset}, {size}): offsets and sizes must be >= 0")
        if runs and offset <= runs[-1][1] + gap:
            start, end, members = runs[-1]
            runs[-1] = (start, max(end, offset + size), members)
            members.append(i)
        else:
            runs.append((offset, offset + size, [i]))
    requests: list[Request] = []
    for start, end, members in runs:
        pieces = [Request(cut, min(cut + piece, end)) for cut in range(start, end, piece)]
        for i in members:
            offset, size = ranges[i]
            first = (offset - start) // piece
            last = (offset + size - 1 - start) // piece
            for request in pieces[first : last + 1]:
                lo = max(offset, request.start)
                hi = min(offset + size, request.end)
                request.copies.append(Copy(i, lo - offset, lo - request.start, hi - lo))
        requests.extend(p for p in pieces if p.copies)  # (a piece inside a gap: nothing)
    return requests
