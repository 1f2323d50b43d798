"""Planning ranged reads (tfckpt.storage.ranges) and the byte ranges of partial reads
(tfckpt.partial_ranges): pure functions, checked against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tfckpt.partial_ranges as partial_ranges
from tfckpt.partial_ranges import RangedPiece, selected_ranges
from tfckpt.storage.ranges import plan
from tfckpt.storage.source import LocalFile


def _fill(ranges, requests, data):
    """What the planned requests deliver into each range, from ``data``."""
    out = [bytearray(size) for _, size in ranges]
    for request in requests:
        chunk = data[request.start : request.end]
        for copy in request.copies:
            out[copy.target][copy.into : copy.into + copy.size] = chunk[
                copy.start : copy.start + copy.size
            ]
    return out


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 700)), max_size=30),
    st.integers(0, 400),
    st.integers(1, 900),
)
def test_planned_requests_deliver_every_range_exactly(ranges, gap, piece):
    """For any ranges (overlapping, repeated, empty), gap and piece size, the requests
    deliver each range's bytes, no request is longer than ``piece``, none overlaps
    another, and none is made for nothing."""
    data = bytes(np.random.default_rng(0).integers(0, 256, 6000, dtype=np.uint8))
    requests = plan(ranges, gap=gap, piece=piece)
    assert _fill(ranges, requests, data) == [data[o : o + n] for o, n in ranges]
    assert all(0 < r.size <= piece and r.copies for r in requests)
    spans = sorted((r.start, r.end) for r in requests)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))


def test_neighbours_closer_than_the_gap_share_a_request():
    """Ranges less than ``gap`` apart are one request; farther ones are not; a long run is
    cut into ``piece``-sized requests."""
    assert [(r.start, r.end) for r in plan([(0, 10), (12, 4), (100, 8)], gap=8, piece=64)] == [
        (0, 16),
        (100, 108),
    ]
    assert [(r.start, r.end) for r in plan([(0, 100)], gap=0, piece=40)] == [
        (0, 40),
        (40, 80),
        (80, 100),
    ]
    with pytest.raises(ValueError):
        plan([(0, 1)], gap=0, piece=0)


def test_selected_ranges_hold_exactly_the_selected_elements():
    """With no gap allowed, the ranges of a selection are the selected elements' bytes,
    rows merged where they touch."""
    starts, ends = selected_ranges([4, 1000], 4, [np.array([1, 2]), np.arange(10)], gap=0)
    assert list(zip(starts.tolist(), ends.tolist())) == [(4000, 4040), (8000, 8040)]
    starts, ends = selected_ranges([4, 10], 4, [np.array([1, 2]), np.arange(10)], gap=0)
    assert list(zip(starts.tolist(), ends.tolist())) == [(40, 120)]  # whole rows touch


def test_the_number_of_ranges_is_capped():
    """Many scattered elements are merged down to at most ``max_ranges`` ranges, which
    still hold every selected element."""
    coords = [np.arange(0, 1000, 7)]
    starts, ends = selected_ranges([1000], 8, coords, gap=0, max_ranges=10)
    assert len(starts) <= 10
    held = np.zeros(8000, bool)
    for start, end in zip(starts.tolist(), ends.tolist()):
        held[start:end] = True
    assert held[coords[0] * 8].all()


class _Recording:
    """A LocalFile that remembers the ranges read through ``read_ranges``."""

    def __init__(self, path):
        self.file = LocalFile(path)
        self.asked: list[tuple[int, int]] = []

    def read_ranges(self, ranges):
        self.asked.extend(ranges)
        return self.file.read_ranges(ranges)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_ranged_pieces_index_like_numpy(tmp_path_factory, data):
    """RangedPiece[slices] equals NumPy's indexing of the whole array for any shape and
    slices (steps forwards and backwards, empty selections), and with no gap allowed it
    reads exactly the bytes of the selected elements."""
    shape = tuple(data.draw(st.lists(st.integers(1, 6), max_size=3)))
    array = np.arange(int(np.prod(shape)), dtype=np.int32).reshape(shape)
    index = tuple(
        slice(
            *slice(
                data.draw(st.integers(-7, 7)),
                data.draw(st.integers(-7, 7)),
                data.draw(st.sampled_from([1, 2, 3, -1, -2])),
            ).indices(n)
        )
        for n in shape
    )
    path = tmp_path_factory.mktemp("piece") / "data"
    path.write_bytes(b"head" + array.tobytes())
    source = _Recording(path)
    gap = data.draw(st.sampled_from([0, 4, 1 << 20]))
    original = partial_ranges.GAP_BYTES
    partial_ranges.GAP_BYTES = gap
    try:
        got = RangedPiece(source, 4, shape, array.dtype)[index]
    finally:
        partial_ranges.GAP_BYTES = original
    assert got.shape == array[index].shape
    assert np.array_equal(got, array[index])
    if gap == 0:
        assert (
            sum(size for _, size in source.asked)
            == 4 * np.unique(np.arange(array.size).reshape(shape)[index]).size
        )
