"""Partial reads: ``reader.get_slice(name)[index]`` against NumPy indexing of the full value.

Covers unpartitioned and partitioned tensors (irregular 2-D and 3-D partitions written with
``BundleWriter.add_slice``) of many dtypes, both byte orders, 0-d tensors and empty
dimensions; the errors of unsupported or out-of-range indexes; that a partial read does not
look at bytes outside the selection (corrupting other rows leaves it correct while
``get_tensor`` reports the corruption); and, on Linux, that only the pages holding the
selected elements are read from disk (counted with ``mincore``).

Expected values are built with NumPy / ml_dtypes only, never through tfckpt.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
import sys
import time

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tfckpt
from tfckpt.errors import DataLossError, TensorNotFoundError
from tfckpt.tensor_slice import TensorSlice

DATA = "{}.data-00000-of-00001"

# -- values -------------------------------------------------------------------------------

DTYPES = [
    "float32",
    "float64",
    "float16",
    "bfloat16",
    "int4",
    "uint4",
    "int8",
    "uint8",
    "int16",
    "int32",
    "int64",
    "uint16",
    "uint32",
    "uint64",
    "complex64",
    "complex128",
    "bool",
    "float8_e4m3fn",
    "float8_e5m2",
]


def np_dtype(name: str) -> np.dtype:
    try:
        return np.dtype(name)
    except TypeError:
        return np.dtype(getattr(ml_dtypes, name))


def values(name: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Distinct-looking values of ``name`` (element i is a function of i)."""
    n = int(np.prod(shape, dtype=np.int64))
    i = np.arange(n)
    dt = np_dtype(name)
    if name == "bool":
        flat = ((i * 7 + seed) % 3) == 0
    elif name in ("int4", "uint4", "int2", "uint2"):
        info = ml_dtypes.iinfo(dt)
        span = int(info.max) - int(info.min) + 1
        flat = ((i * 5 + seed) % span + int(info.min)).astype(dt)
    elif name.startswith("float8") or name == "float4_e2m1fn":
        patterns = 16 if name == "float4_e2m1fn" else 256
        flat = ((i * 37 + seed) % patterns).astype(np.uint8).view(dt)
    elif dt.kind == "c":
        flat = (i * 0.5 - 3 + seed) + 1j * (-i * 0.25 + 7)
    elif dt.kind == "f" or name == "bfloat16":
        flat = (i * 0.5 - n / 4 + seed).astype(np.float32)
        flat = np.where(i % 11 == 5, -0.0, flat)
        flat = np.where(i % 13 == 7, np.nan, flat)
        flat = np.where(i % 17 == 3, np.inf, flat)
    else:  # integers: random bits, with the extremes first
        raw = np.random.default_rng(seed).integers(0, 256, n * dt.itemsize, dtype=np.uint8)
        flat = raw.view(dt).copy()
        info = np.iinfo(dt)
        flat[: min(n, 2)] = [info.min, info.max][: min(n, 2)]
    return np.array(np.asarray(flat).astype(dt).reshape(shape), order="C")


def same(actual, expected, what: str = "") -> None:
    """Exact equality, NaN- and -0.0-safe; scalars vs scalars, arrays (incl. 0-d) vs arrays."""
    if isinstance(expected, np.ndarray):
        assert isinstance(actual, np.ndarray), f"{what}: {type(actual)} is not an ndarray"
        assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    else:
        assert not isinstance(actual, np.ndarray), f"{what}: got an array, expected a scalar"
    a, b = np.asarray(actual), np.asarray(expected)
    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} != {b.dtype}"
    if b.dtype == object:
        assert a.tolist() == b.tolist(), what
    else:
        assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes(), what


# -- checkpoints --------------------------------------------------------------------------

UNPARTITIONED_SHAPES = [(), (7,), (5, 6), (3, 4, 5), (0,), (4, 0, 3), (2, 3, 0)]

# Irregular partitions: (full shape, [(start, length) or None per dim] per slice).
PARTITIONS = {
    "grid": (
        (7, 9),
        [
            [(0, 3), (0, 4)],
            [(0, 3), (4, 5)],
            [(3, 4), (0, 2)],
            [(3, 2), (2, 7)],
            [(5, 2), (2, 7)],
        ],
    ),
    "cube": (
        (4, 5, 6),
        [
            [(0, 2), None, (0, 3)],
            [(0, 2), None, (3, 3)],
            [(2, 2), (0, 1), None],
            [(2, 2), (1, 4), (0, 4)],
            [(2, 2), (1, 4), (4, 2)],
        ],
    ),
    "rows": ((10, 3), [[(0, 1), None], [(1, 6), None], [(7, 3), None]]),
    "cols_empty_rows": ((0, 6), [[None, (0, 2)], [None, (2, 4)]]),
}
PARTITIONED_DTYPES = ["float32", "bfloat16", "int4", "complex128", "bool", "int64", "float16"]


def _region(extents, shape):
    return tuple(
        slice(0, dim) if e is None else slice(e[0], e[0] + e[1]) for e, dim in zip(extents, shape)
    )


def build(prefix: str, *, big_endian: bool = False) -> dict[str, np.ndarray]:
    """Writes the test checkpoint; returns the expected full value of every tensor."""
    expected: dict[str, np.ndarray] = {}
    rng = np.random.default_rng(5)
    with tfckpt.BundleWriter(prefix, big_endian=big_endian) as writer:
        for seed, dtype in enumerate(DTYPES):
            for shape in UNPARTITIONED_SHAPES:
                name = f"{dtype}/{'x'.join(map(str, shape)) or 'scalar'}"
                expected[name] = values(dtype, shape, seed)
                writer.add(name, expected[name])
        for seed, dtype in enumerate(PARTITIONED_DTYPES):
            for label, (shape, slices) in PARTITIONS.items():
                name = f"part/{dtype}/{label}"
                full = values(dtype, shape, seed + 100)
                expected[name] = full
                for k in rng.permutation(len(slices)):  # slices in a random order
                    extents = slices[k]
                    writer.add_slice(name, shape, extents, full[_region(extents, shape)])
        words = np.empty((3, 4), object)
        words[...] = [[b"w%d%d" % (r, c) * c for c in range(4)] for r in range(3)]
        expected["strings"] = words
        writer.add("strings", words)
    return expected


class Ckpt(tuple):
    """(reader, expected values), with a short repr for Hypothesis' failure reports."""

    def __repr__(self) -> str:
        return f"<ckpt {self[0].prefix!r}>"


@pytest.fixture(scope="module", params=[False, True], ids=["little_endian", "big_endian"])
def ckpt(request, tmp_path_factory):
    prefix = str(tmp_path_factory.mktemp("partial") / "ckpt")
    expected = build(prefix, big_endian=request.param)
    reader = tfckpt.load_checkpoint(prefix)
    yield Ckpt((reader, expected))
    reader.close()


def _names() -> list[str]:
    names = []
    for dtype in DTYPES:
        for shape in UNPARTITIONED_SHAPES:
            names.append(f"{dtype}/{'x'.join(map(str, shape)) or 'scalar'}")
    for dtype in PARTITIONED_DTYPES:
        for label in PARTITIONS:
            names.append(f"part/{dtype}/{label}")
    return names


NAMES = _names()


# -- index strategy -----------------------------------------------------------------------


@st.composite
def basic_index(draw, shape: tuple[int, ...]):
    """A NumPy basic index for ``shape``: ints (incl. negative), slices with any step
    (incl. negative, out-of-range bounds), at most one Ellipsis, possibly fewer items than
    dimensions, sometimes not wrapped in a tuple."""
    items: list = []
    for dim in shape:
        kinds = ["slice", "full"] + (["int"] if dim > 0 else [])
        kind = draw(st.sampled_from(kinds))
        if kind == "int":
            items.append(draw(st.integers(-dim, dim - 1)))
        elif kind == "full":
            items.append(slice(None))
        else:
            bound = st.none() | st.integers(-dim - 3, dim + 3)
            step = st.none() | st.integers(-4, 4).filter(lambda s: s != 0)
            items.append(slice(draw(bound), draw(bound), draw(step)))
    # Drop trailing items (NumPy fills them with ':').
    keep = draw(st.integers(0, len(items)))
    items = items[:keep] if draw(st.booleans()) else items
    # Replace a run of items with an Ellipsis.
    if draw(st.booleans()):
        start = draw(st.integers(0, len(items)))
        stop = draw(st.integers(start, len(items)))
        items = [*items[:start], Ellipsis, *items[stop:]]
    if len(items) == 1 and draw(st.booleans()):
        return items[0]
    if draw(st.booleans()):
        # NumPy integer types are integers too.
        items = [np.int64(i) if isinstance(i, int) else i for i in items]
    return tuple(items)


def _check_random_index(ckpt, name, data):
    reader, expected = ckpt
    full = expected[name]
    view = reader.get_slice(name)
    index = data.draw(basic_index(full.shape), label="index")
    try:
        want = full[index]
    except IndexError:  # e.g. an integer moved by '...' onto an empty axis
        with pytest.raises(IndexError):
            view[index]
        return
    got = view[index]
    same(got, want, f"{name}[{index!r}]")


PARTITIONED_NAMES = [n for n in NAMES if n.startswith("part/")]
UNPARTITIONED_NAMES = [n for n in NAMES if not n.startswith("part/")]
_SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture]}


@pytest.mark.parametrize("name", PARTITIONED_NAMES)
@settings(max_examples=20, **_SETTINGS)
@given(data=st.data())
def test_random_indexing_of_partitioned_tensors_equals_numpy(ckpt, name, data):
    _check_random_index(ckpt, name, data)


@settings(max_examples=400, **_SETTINGS)
@given(data=st.data())
def test_random_indexing_of_whole_tensors_equals_numpy(ckpt, data):
    name = data.draw(st.sampled_from(UNPARTITIONED_NAMES), label="name")
    _check_random_index(ckpt, name, data)


@pytest.mark.parametrize("name", NAMES)
def test_fixed_tricky_indexes_equal_numpy(ckpt, name):
    reader, expected = ckpt
    full = expected[name]
    view = reader.get_slice(name)
    indexes = [(), (Ellipsis,)]
    if full.ndim:
        indexes += [
            slice(None, None, -1),
            slice(-1, None, -2),
            slice(1, -1, 3),
            slice(100, -100, -1),
            (Ellipsis, slice(None, None, -3)),
            (Ellipsis, slice(1, 2)),
        ]
        if full.shape[0]:
            indexes += [0, -1, (-1, Ellipsis), np.int32(full.shape[0] - 1)]
        if all(full.shape):
            indexes += [tuple(-1 for _ in full.shape), tuple(d // 2 for d in full.shape)]
    for index in indexes:
        same(view[index], full[index], f"{name}[{index!r}]")


@pytest.mark.parametrize(
    "shape, index",
    [((), ...), ((5, 6), (1, 2, ...)), ((5, 6), (..., -1, 0))],
    ids=["0d[...]", "2d[1,2,...]", "2d[...,-1,0]"],
)
def test_ellipsis_with_all_integers_gives_a_0d_array_like_numpy(tmp_path, shape, index):
    # NumPy: an index containing '...' returns an array (0-d here), never a scalar; only
    # ``a[()]`` and all-integer indexes without '...' give scalars.
    full = values("float32", shape)
    prefix = str(tmp_path / "ckpt")
    tfckpt.save_tensors(prefix, {"t": full})
    want = full[index]
    assert isinstance(want, np.ndarray) and want.ndim == 0
    with tfckpt.load_checkpoint(prefix) as reader:
        got = reader.get_slice("t")[index]
    same(got, want, f"t{list(shape)}[{index!r}]")


def test_every_tensor_is_covered_by_the_names(ckpt):
    reader, expected = ckpt
    assert sorted(NAMES) == sorted(n for n in expected if n != "strings")
    assert sorted(reader.keys()) == sorted(expected)


@pytest.mark.parametrize("name", NAMES)
def test_whole_selections_equal_the_tensor(ckpt, name):
    reader, expected = ckpt
    full = expected[name]
    view = reader.get_slice(name)
    want_whole = full[()] if full.ndim == 0 else full
    same(view[...], full[...], f"{name}[...]")
    same(view[()], want_whole, f"{name}[()]")
    same(np.asarray(view), full, f"asarray({name})")
    same(reader.get_tensor(name), want_whole, f"get_tensor({name})")
    if full.ndim:
        same(view[:], full[:], f"{name}[:]")
        same(view[::-1], full[::-1], f"{name}[::-1]")


def test_view_metadata(ckpt):
    reader, expected = ckpt
    for name in NAMES:
        full = expected[name]
        view = reader.get_slice(name)
        dtype = name.split("/")[1] if name.startswith("part/") else name.split("/")[0]
        assert view.shape == full.shape and isinstance(view.shape, tuple)
        assert view.get_shape() == list(full.shape)
        assert all(type(d) is int for d in view.get_shape())
        assert isinstance(view.dtype, tfckpt.DType)
        assert view.dtype == tfckpt.as_dtype(dtype)
        assert view.dtype.name == dtype
        assert view.get_dtype() == dtype
        assert view.ndim == full.ndim
        if full.ndim:
            assert len(view) == full.shape[0]
        else:
            with pytest.raises(TypeError):
                len(view)
        assert name in repr(view)


def test_asarray_with_dtype(ckpt):
    reader, expected = ckpt
    view = reader.get_slice("int32/5x6")
    got = np.asarray(view, dtype=np.float64)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, expected["int32/5x6"].astype(np.float64))


def test_get_tensor_slices(ckpt):
    reader, _ = ckpt
    assert reader.get_tensor_slices("float32/5x6") == []
    assert reader.get_tensor_slices("float32/scalar") == []
    assert reader.get_tensor_slices("strings") == []
    for dtype in PARTITIONED_DTYPES:
        for label, (_shape, slices) in PARTITIONS.items():
            got = reader.get_tensor_slices(f"part/{dtype}/{label}")
            assert all(isinstance(s, TensorSlice) for s in got)
            want = {TensorSlice.from_extents(e) for e in slices}
            assert len(got) == len(slices) and set(got) == want, (dtype, label)
    with pytest.raises(TensorNotFoundError):
        reader.get_tensor_slices("nope")


def test_get_slice_of_a_missing_tensor(ckpt):
    reader, _ = ckpt
    with pytest.raises(TensorNotFoundError) as info:
        reader.get_slice("no/such/tensor")
    assert "no/such/tensor" in str(info.value)


def test_string_views_decode_whole(ckpt):
    reader, expected = ckpt
    words = expected["strings"]
    view = reader.get_slice("strings")
    assert view.dtype.name == "string" and view.shape == (3, 4)
    assert view[1, 2] == words[1, 2] and type(view[1, 2]) is bytes
    assert view[-1, ::-2].tolist() == words[-1, ::-2].tolist()
    assert view[..., 1].tolist() == words[..., 1].tolist()
    assert view[:, 1:3].dtype == object
    assert np.asarray(view).tolist() == words.tolist()
    with pytest.raises(TypeError):
        view[[0, 1]]
    with pytest.raises(IndexError):
        view[3]


# -- errors -------------------------------------------------------------------------------

FANCY = [
    [0, 1],
    np.array([0, 1]),
    np.array([True, False, True, False, True]),
    (slice(None), [1, 2]),
    None,
    (0, None),
    True,
    1.0,
    "0",
]


@pytest.mark.parametrize("name", ["float32/5x6", "part/float32/grid", "part/int4/cube"])
@pytest.mark.parametrize("index", FANCY, ids=repr)
def test_fancy_and_other_indexes_are_type_errors(ckpt, name, index):
    reader, _ = ckpt
    with pytest.raises(TypeError) as info:
        reader.get_slice(name)[index]
    assert "fancy" in str(info.value) or "integers, slices" in str(info.value)


@pytest.mark.parametrize(
    "name, index",
    [
        ("float32/5x6", (0, 0, 0)),
        ("float32/5x6", (0, ..., 0, 0)),
        ("float32/scalar", 0),
        ("float32/scalar", (slice(None),)),
        ("part/float32/grid", (1, 2, 3)),
        ("part/float32/cube", (0, 0, 0, slice(None))),
    ],
)
def test_too_many_indices(ckpt, name, index):
    reader, _ = ckpt
    with pytest.raises(IndexError):
        reader.get_slice(name)[index]


@pytest.mark.parametrize(
    "name, index",
    [
        ("float32/5x6", 5),
        ("float32/5x6", -6),
        ("float32/5x6", (0, 6)),
        ("float32/5x6", (slice(None), -7)),
        ("float32/0", 0),
        ("float32/0", -1),
        ("float32/4x0x3", (0, 0)),
        ("part/float32/grid", 7),
        ("part/float32/grid", (-8,)),
        ("part/float32/cube", (0, 0, 6)),
        ("part/float32/cols_empty_rows", 0),
        ("float32/5x6", (..., ...)),
    ],
)
def test_out_of_range_integers(ckpt, name, index):
    reader, _ = ckpt
    with pytest.raises(IndexError):
        reader.get_slice(name)[index]


def test_out_of_range_slices_are_clipped_like_numpy(ckpt):
    reader, expected = ckpt
    for name in ("float32/5x6", "part/complex128/grid"):
        full = expected[name]
        view = reader.get_slice(name)
        for index in [
            (slice(100, 200),),
            (slice(-100, 2),),
            (slice(3, 1),),
            (slice(None), slice(9, 100, 3)),
        ]:
            same(view[index], full[index], f"{name}[{index}]")


# -- partial reads do not depend on other bytes --------------------------------------------


def _corrupt(path: str, offset: int, length: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        data = bytearray(f.read(length))
        f.seek(offset)
        f.write(bytes(b ^ 0x5A for b in data))


@pytest.mark.parametrize("big_endian", [False, True])
def test_corrupt_other_rows_do_not_affect_a_partial_read(tmp_path, big_endian):
    prefix = str(tmp_path / "ckpt")
    full = values("float32", (64, 256))
    with tfckpt.BundleWriter(prefix, big_endian=big_endian) as writer:
        writer.add("w", full)
    row_bytes = 256 * 4
    _corrupt(DATA.format(prefix), 40 * row_bytes, 3 * row_bytes)  # rows 40..42
    with tfckpt.load_checkpoint(prefix) as reader:
        view = reader.get_slice("w")
        same(view[0:40], full[0:40], "rows before the corruption")
        same(view[43:], full[43:], "rows after the corruption")
        same(view[::7][:5], full[::7][:5], "strided rows before")
        same(view[10, 200], full[10, 200], "one element")
        # Partial reads do not verify the checksum: the corrupt rows come back corrupt.
        assert view[40].tobytes() != full[40].tobytes()
        with pytest.raises(DataLossError) as info:
            reader.get_tensor("w")
        assert info.value.tensor == "w"
        with pytest.raises(DataLossError):
            reader.get_tensor("w", copy=False)
        with pytest.raises(DataLossError):
            np.asarray(view)
    # Without checksum verification the whole tensor reads, corrupt rows and all.
    with tfckpt.load_checkpoint(prefix, verify_checksums=False) as reader:
        got = reader.get_tensor("w")
        same(got[:40], full[:40])
        assert got[41].tobytes() != full[41].tobytes()


def test_corrupt_slice_does_not_affect_reads_of_other_slices(tmp_path):
    prefix = str(tmp_path / "ckpt")
    full = values("int64", (12, 5))
    with tfckpt.BundleWriter(prefix) as writer:
        writer.add("before", np.arange(3, dtype=np.int32))  # 12 bytes at offset 0
        writer.add_slice("p", (12, 5), [(0, 4), None], full[0:4])  # offset 12, 160 bytes
        writer.add_slice("p", (12, 5), [(4, 4), None], full[4:8])  # offset 172
        writer.add_slice("p", (12, 5), [(8, 4), None], full[8:12])  # offset 332
    _corrupt(DATA.format(prefix), 172 + 8, 16)  # inside the second slice
    with tfckpt.load_checkpoint(prefix) as reader:
        view = reader.get_slice("p")
        same(view[0:4], full[0:4])
        same(view[8:], full[8:])
        same(view[::-4, 1:], full[::-4, 1:])  # rows 11, 7, 3: row 7 is intact (bytes 20..)
        same(view[4, 3:], full[4, 3:])
        assert view[4, :3].tobytes() != full[4, :3].tobytes()
        with pytest.raises(DataLossError) as info:
            reader.get_tensor("p")
        assert info.value.tensor == "p"
        same(reader.get_tensor("before"), np.arange(3, dtype=np.int32))


def test_corrupt_string_tensor_fails_even_for_a_partial_read(tmp_path):
    # String tensors are decoded whole (and verified) for every partial read.
    prefix = str(tmp_path / "ckpt")
    words = np.array([b"alpha", b"beta", b"gamma"], dtype=object)
    tfckpt.save_tensors(prefix, {"s": words})
    path = DATA.format(prefix)
    size = os.path.getsize(path)
    _corrupt(path, size - 2, 1)  # inside "gamma"
    with tfckpt.load_checkpoint(prefix) as reader, pytest.raises(DataLossError):
        reader.get_slice("s")[0]


def test_listed_slice_without_entry_is_data_loss_for_views_too(tmp_path):
    """A partitioned tensor whose index lists a slice that has no entry is a corrupt
    checkpoint: get_tensor says DataLossError naming the tensor, and so must a view (not
    'tensor not found' about the slice's internal key)."""
    from tfckpt.table.reader import TableReader
    from tfckpt.table.writer import TableWriter
    from tfckpt.tensor_slice import encode_slice_key

    prefix = str(tmp_path / "ckpt")
    full = values("float32", (4, 2))
    with tfckpt.BundleWriter(prefix) as writer:
        writer.add_slice("p", (4, 2), [(0, 2), None], full[:2])
        writer.add_slice("p", (4, 2), [(2, 2), None], full[2:])
    records = dict(TableReader.open(f"{prefix}.index").items())
    del records[encode_slice_key("p", TensorSlice.from_extents([(2, 2), None]))]
    with open(f"{prefix}.index", "wb") as f:
        table = TableWriter(f)
        for key in sorted(records):
            table.add(key, records[key])
        table.finish()
    with tfckpt.load_checkpoint(prefix) as reader:
        assert reader.keys() == ["p"]
        with pytest.raises(DataLossError) as info:
            reader.get_tensor("p")
        assert info.value.tensor == "p"
        view = reader.get_slice("p")
        with pytest.raises(DataLossError) as info:
            view[3]  # needs the missing slice
        assert info.value.tensor == "p", repr(info.value)
        try:
            got = view[0]  # only needs the slice that is there
        except DataLossError as exc:
            assert exc.tensor == "p"
        else:
            same(got, full[0])


# -- only the needed pages are read ----------------------------------------------------------
#
# The kernel reads ahead around every page fault of a memory map (read-around of
# ``read_ahead_kb`` centred on the fault, plus asynchronous readahead after it), so pages
# near the selection become resident although nothing reads them.  The bounds below allow
# for the file system's readahead setting (from sysfs); with the common 128 KiB a 10-row
# read leaves about 3% of the 64 MiB file resident, with 8 MiB up to ~12%.  Everything
# farther from the selection than the readahead can reach must stay unread.

_LINUX = sys.platform.startswith("linux")
PAGE = mmap.PAGESIZE


def _resident_pages(path: str) -> np.ndarray:
    """Per page of ``path``: is it in the page cache?  (libc mincore on a fresh mmap.)"""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    libc.mincore.restype = ctypes.c_int
    size = os.path.getsize(path)
    vec = np.zeros(-(-size // PAGE), np.uint8)
    with open(path, "rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        base = np.frombuffer(mapped, np.uint8)  # only for its address; never touched
        rc = libc.mincore(ctypes.c_void_p(base.ctypes.data), size, vec.ctypes.data)
        del base
        if rc != 0:
            raise OSError(ctypes.get_errno(), "mincore failed")
    finally:
        mapped.close()
    return (vec & 1).astype(bool)


def _readahead_pages(path: str) -> int:
    """The readahead window of the file's backing device, in pages (128 KiB if unknown)."""
    st = os.stat(path)
    dev = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    for candidate in (
        f"/sys/class/bdi/{dev}/read_ahead_kb",
        f"/sys/dev/block/{dev}/queue/read_ahead_kb",
        f"/sys/dev/block/{dev}/../queue/read_ahead_kb",
    ):
        try:
            with open(candidate) as f:
                return max(1, int(f.read().strip()) * 1024 // PAGE)
        except (OSError, ValueError):
            continue
    return 128 * 1024 // PAGE


def _drop_from_page_cache(path: str) -> float:
    """Evicts the file's pages; returns the fraction still resident afterwards.

    Retries briefly: pages still under readahead I/O cannot be evicted until it completes.
    """
    resident = 1.0
    for _ in range(20):
        os.sync()
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
        resident = float(_resident_pages(path).mean())
        if resident == 0.0:
            break
        time.sleep(0.05)
    return resident


def _dropped_or_skip(path: str) -> None:
    resident = _drop_from_page_cache(path)
    if resident > 0.0:
        pytest.skip(
            f"the page cache cannot be dropped for {path} on this file system "
            f"({resident:.1%} of its pages stay resident after POSIX_FADV_DONTNEED)"
        )


def _control_or_skip(prefix: str, data: str) -> None:
    """Reading every tensor whole (get_tensor) must make the whole file resident (so mincore
    sees the reads), and dropping must empty the cache again; else the test would pass
    vacuously."""
    _dropped_or_skip(data)
    with tfckpt.load_checkpoint(prefix) as reader:
        for name in reader:
            reader.get_tensor(name)
    full_read = _resident_pages(data).mean()
    if full_read < 0.99:
        pytest.skip(
            f"mincore reports only {full_read:.0%} of {data} resident after reading every "
            "tensor whole: page residency cannot be measured here"
        )
    _dropped_or_skip(data)


def _pages(start_byte: int, stop_byte: int) -> tuple[int, int]:
    return start_byte // PAGE, -(-stop_byte // PAGE)


def _assert_local(resident: np.ndarray, first: int, stop: int, ra: int) -> None:
    """Pages [first, stop) hold the selection: they are resident, and nothing farther from
    them than readahead reaches (``ra`` before, ``2 * ra`` after) is."""
    assert resident[first:stop].all(), "the selected pages are not resident"
    outside = resident.copy()
    outside[max(0, first - ra) : stop + 2 * ra + 16] = False
    assert not outside.any(), (
        f"{int(outside.sum())} pages outside the readahead window of the selection were read "
        f"(first at page {int(np.flatnonzero(outside)[0])}; selection pages {first}..{stop}, "
        f"readahead {ra} pages)"
    )
    bound = max(0.10 * len(resident), (stop - first) + 3 * ra)
    assert resident.sum() < bound, f"{int(resident.sum())} of {len(resident)} pages resident"


BIG = 4096  # float32 [4096, 4096]: 64 MiB, 16 KiB per row


@pytest.mark.skipif(not _LINUX, reason="page-cache control and mincore are Linux-specific")
def test_partial_read_touches_only_the_needed_pages(tmp_path):
    prefix = str(tmp_path / "big")
    full = np.arange(BIG * BIG, dtype=np.float32).reshape(BIG, BIG)
    tfckpt.save_tensors(prefix, {"w": full})
    data = DATA.format(prefix)
    assert os.path.getsize(data) == 64 << 20
    ra = _readahead_pages(data)
    _control_or_skip(prefix, data)

    with tfckpt.load_checkpoint(prefix) as reader:
        rows = reader.get_slice("w")[100:110, :]
        resident = _resident_pages(data)
    same(rows, full[100:110, :])
    row = BIG * 4
    _assert_local(resident, *_pages(100 * row, 110 * row), ra)
    if ra <= 256 * 1024 // PAGE:  # readahead of at most 256 KiB: the brief's ~3%
        assert resident.mean() < 0.10, f"{resident.mean():.1%} of the data file was read"
    # Far from the selection nothing was read at all.
    assert not resident[len(resident) // 2 :].any()

    # A few elements of one column, spread over the tensor: only their pages (+ readahead).
    _dropped_or_skip(data)
    with tfckpt.load_checkpoint(prefix) as reader:
        column = reader.get_slice("w")[::1024, 7]
        resident = _resident_pages(data)
    same(column, full[::1024, 7])
    for r in range(0, BIG, 1024):
        page = (r * row + 7 * 4) // PAGE
        assert resident[page]
    assert resident.mean() < 0.10 or ra > 256 * 1024 // PAGE


@pytest.mark.skipif(not _LINUX, reason="page-cache control and mincore are Linux-specific")
def test_partial_read_of_a_partitioned_tensor_leaves_other_slices_unread(tmp_path):
    prefix = str(tmp_path / "big")
    full = np.arange(BIG * BIG, dtype=np.float32).reshape(BIG, BIG)
    rows_per_slice = BIG // 4  # 16 MiB per slice
    # Filler tensors between the slices, wider than readahead reaches, so that readahead
    # around a selection in one slice cannot reach into another slice.
    probe = tmp_path / "probe"
    probe.write_bytes(b"x")
    ra = _readahead_pages(str(probe))
    gap = 3 * ra * PAGE
    if gap > 256 << 20:
        pytest.skip(f"readahead of {ra * PAGE >> 20} MiB: the filler would be too large")
    row = BIG * 4
    starts = []  # byte offset of each slice in the data file (data is appended in order)
    offset = 0
    with tfckpt.BundleWriter(prefix) as writer:
        for k in range(4):
            lo = k * rows_per_slice
            starts.append(offset)
            writer.add_slice(
                "w", full.shape, [(lo, rows_per_slice), None], full[lo : lo + rows_per_slice]
            )
            offset += rows_per_slice * row
            if k < 3:
                writer.add(f"filler{k}", np.zeros(gap, np.uint8))
                offset += gap
    data = DATA.format(prefix)
    assert os.path.getsize(data) == offset
    _control_or_skip(prefix, data)

    def slice_pages(k: int) -> tuple[int, int]:
        return _pages(starts[k], starts[k] + rows_per_slice * row)

    for selected_rows, inside in (
        (slice(100, 110), 0),
        (slice(2100, 2103), 2),
        (slice(4090, 4096), 3),
    ):
        _dropped_or_skip(data)
        with tfckpt.load_checkpoint(prefix) as reader:
            assert len(reader.get_tensor_slices("w")) == 4
            got = reader.get_slice("w")[selected_rows, ::-1]
            resident = _resident_pages(data)
        same(got, full[selected_rows, ::-1])
        local = selected_rows.start - inside * rows_per_slice
        first, stop = _pages(
            starts[inside] + local * row,
            starts[inside] + (local + len(range(4096)[selected_rows])) * row,
        )
        _assert_local(resident, first, stop, ra)
        for k in range(4):
            if k != inside:
                lo, hi = slice_pages(k)
                assert not resident[lo:hi].any(), (
                    f"reading rows {selected_rows} (slice {inside}) read "
                    f"{int(resident[lo:hi].sum())} pages of slice {k}"
                )
