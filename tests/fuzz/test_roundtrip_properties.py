"""Property-based round trips: whatever tfckpt writes, every read path gives back exactly.

Random dtypes (every numeric storage type, ml_dtypes' included), shapes (0-d, empty,
up to rank 4), bit patterns (NaNs, infinities and denormals included: compared bytewise),
tensor names (any non-empty Unicode text), strings (any bytes, lengths across the varint
boundaries), partitions (random cuts along a random axis) and byte orders are written
with ``BundleWriter`` and read back with ``get_tensor`` (owned and ``copy=False``),
``load_tensors``, ``get_slice`` with a random basic index and ``get_bytes_view``.
Examples are derandomized, so CI runs are reproducible.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import ml_dtypes
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tfckpt

SETTINGS = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
NUMERIC = [
    np.dtype(t)
    for t in (
        "float16",
        "float32",
        "float64",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "bool",
        "complex64",
        "complex128",
    )
] + [
    np.dtype(getattr(ml_dtypes, t))
    for t in ("bfloat16", "float8_e5m2", "float8_e4m3fn", "int4", "uint4")
]
_counter = itertools.count()


def _fresh(tmp_path: Path) -> Path:
    directory = tmp_path / f"example{next(_counter)}"
    directory.mkdir()
    return directory / "ckpt"


def _bits(dtype: np.dtype, shape: tuple[int, ...], data: st.DataObject) -> np.ndarray:
    """An array of any bit pattern the dtype can hold (booleans and 4-bit types: valid
    values only, as NumPy and ml_dtypes keep them)."""
    count = int(np.prod(shape))
    raw = np.frombuffer(
        data.draw(st.binary(min_size=count * dtype.itemsize, max_size=count * dtype.itemsize)),
        np.uint8,
    )
    if dtype.kind == "b":
        raw = raw & 1
    elif dtype.name in ("int4", "uint4"):
        raw = raw & 0x07
    return raw.view(dtype).reshape(shape).copy()


def _same(got: object, expected: object) -> None:
    """Equal type, shape, dtype and bytes (a string element: equal bytes)."""
    if isinstance(expected, bytes):
        assert isinstance(got, bytes) and got == expected
        return
    expected = np.asarray(expected)
    array = np.asarray(got)
    assert array.shape == expected.shape
    if expected.dtype == object:
        assert array.tolist() == expected.tolist()
        return
    assert array.dtype == expected.dtype
    assert np.ascontiguousarray(array).tobytes() == np.ascontiguousarray(expected).tobytes()


shapes = st.lists(st.integers(0, 4), max_size=4).map(tuple)
names = st.text(
    st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20
)  # (lone surrogates: see the report; the writer refuses them with UnicodeEncodeError)


@st.composite
def basic_indexes(draw: st.DrawFn, shape: tuple[int, ...]) -> object:
    """A basic index valid for ``shape``: integers, slices with any step, an ellipsis."""
    items: list[object] = []
    for dim in shape:
        if dim and draw(st.booleans()):
            items.append(draw(st.integers(-dim, dim - 1)))
        else:
            start = draw(st.none() | st.integers(-dim - 1, dim + 1))
            stop = draw(st.none() | st.integers(-dim - 1, dim + 1))
            step = draw(st.sampled_from([None, 1, 2, -1, -3]))
            items.append(slice(start, stop, step))
    if items and draw(st.booleans()):
        return (Ellipsis, *items[1:])
    return tuple(items)


def _read_every_way(prefix: Path, name: str, expected: np.ndarray, index: object) -> None:
    with tfckpt.load_checkpoint(prefix) as reader:
        for copy in (True, False):
            _same(reader.get_tensor(name, copy=copy), expected)
        _same(reader.get_slice(name)[index], expected[index])
        assert reader.get_variable_to_shape_map()[name] == list(expected.shape)
    for copy in (True, False):
        _same(tfckpt.load_tensors(prefix, copy=copy)[name], expected)


@SETTINGS
@given(st.sampled_from(NUMERIC), shapes, st.booleans(), names, st.data())
def test_numeric_tensors_round_trip(tmp_path, dtype, shape, big_endian, name, data):
    """Any numeric dtype, shape, bit pattern, byte order and name reads back bit for bit,
    whole, as views, in bulk and in part."""
    value = _bits(dtype, shape, data)
    prefix = _fresh(tmp_path)
    with tfckpt.BundleWriter(prefix, big_endian=big_endian) as writer:
        writer.add(name, value)
    _read_every_way(prefix, name, value, data.draw(basic_indexes(shape)))


strings = st.binary(max_size=300) | st.sampled_from(
    [b"", b"\x00", b"x" * 127, b"y" * 128, b"z" * 16384]
)


@SETTINGS
@given(shapes, st.booleans(), st.data())
def test_string_tensors_round_trip(tmp_path, shape, big_endian, data):
    """String tensors of any bytes (lengths across the one/two/three-byte varint
    boundaries) and shape read back equal; a scalar's bytes also through get_bytes_view."""
    count = int(np.prod(shape))
    value = np.empty(shape, object)
    value.reshape(-1)[:] = data.draw(st.lists(strings, min_size=count, max_size=count))
    prefix = _fresh(tmp_path)
    with tfckpt.BundleWriter(prefix, big_endian=big_endian) as writer:
        writer.add("s", value)
    _read_every_way(prefix, "s", value, data.draw(basic_indexes(shape)))
    if shape == ():
        with tfckpt.load_checkpoint(prefix) as reader:
            assert bytes(reader.get_bytes_view("s")) == value[()]


@st.composite
def partitions(draw: st.DrawFn) -> tuple[tuple[int, ...], int, list[tuple[int, int]]]:
    """A shape of rank 1-3, an axis, and (start, length) cuts of that axis into slices."""
    shape = tuple(draw(st.lists(st.integers(1, 6), min_size=1, max_size=3)))
    axis = draw(st.integers(0, len(shape) - 1))
    cuts = sorted(draw(st.sets(st.integers(1, shape[axis] - 1))) if shape[axis] > 1 else set())
    bounds = [0, *cuts, shape[axis]]
    return shape, axis, [(a, b - a) for a, b in itertools.pairwise(bounds)]


@SETTINGS
@given(partitions(), st.sampled_from([*NUMERIC[:6], np.dtype(object)]), st.booleans(), st.data())
def test_partitioned_tensors_round_trip(tmp_path, partition, dtype, big_endian, data):
    """A tensor written as random slices along one axis (numeric or strings, either byte
    order) lists as one tensor with its slices, and reads back assembled and in part."""
    shape, axis, cuts = partition
    if dtype.kind == "O":
        value = np.empty(shape, object)
        value.reshape(-1)[:] = [bytes([i % 256]) * (i % 5) for i in range(value.size)]
    else:
        value = _bits(dtype, shape, data)
    prefix = _fresh(tmp_path)
    with tfckpt.BundleWriter(prefix, big_endian=big_endian) as writer:
        for start, length in cuts:
            extents = [None] * len(shape)
            extents[axis] = (start, length)
            region = tuple(
                slice(start, start + length) if d == axis else slice(None)
                for d in range(len(shape))
            )
            writer.add_slice("p", shape, extents, value[region])
    _read_every_way(prefix, "p", value, data.draw(basic_indexes(shape)))
    with tfckpt.load_checkpoint(prefix) as reader:
        assert reader.keys() == ["p"]
        assert len(reader.get_tensor_slices("p")) == (len(cuts) if len(cuts) > 1 else 0)


@SETTINGS
@given(st.dictionaries(names, st.sampled_from(NUMERIC), min_size=1, max_size=6), st.data())
def test_many_names_round_trip(tmp_path, named, data):
    """Checkpoints of several tensors with arbitrary Unicode names list exactly those names
    in key order, and each reads back."""
    values = {name: _bits(dtype, (2,), data) for name, dtype in named.items()}
    prefix = _fresh(tmp_path)
    tfckpt.save_tensors(prefix, values)
    with tfckpt.load_checkpoint(prefix) as reader:
        assert reader.keys() == sorted(values, key=lambda n: n.encode("utf-8"))
    loaded = tfckpt.load_tensors(prefix)
    for name, value in values.items():
        _same(loaded[name], value)
