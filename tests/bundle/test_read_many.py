"""Reading many tensors at once (CheckpointReader.get_tensors, load_tensors,
BundleReader.read_many) gives exactly what get_tensor gives, through every path: the owned
arena (dense), the per-tensor reads (sparse), memory-map views, multithreaded chunked reads
and checksums (tfckpt.bundle.batch), the large-tensor path of get_tensor and the general
path (strings, slices, big-endian)."""

from __future__ import annotations

import json
import mmap
import os
import threading

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tfckpt
from tests.conftest import FIXTURES
from tfckpt import checksum
from tfckpt.bundle import batch
from tfckpt.bundle.reader import BundleReader
from tfckpt.errors import CheckpointError, DataLossError, TensorNotFoundError
from tfckpt.storage.source import LocalFile

with open(FIXTURES / "MANIFEST.json", encoding="utf-8") as _f:
    FIXTURE_PREFIXES = [e["path"] for e in json.load(_f)]

DATA = ".data-00000-of-00001"


def _same(a, b, what=""):
    """``a`` and ``b`` are the same value as get_tensor returns them: type, dtype, shape
    and bytes (object arrays element by element)."""
    assert type(a) is type(b), (what, type(a), type(b))
    if isinstance(a, bytes):
        assert a == b, what
        return
    if isinstance(a, np.generic):
        assert a.dtype == b.dtype, what
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes(), what
        return
    assert a.dtype == b.dtype, (what, a.dtype, b.dtype)
    assert a.shape == b.shape, (what, a.shape, b.shape)
    if a.dtype == object:
        assert all(type(x) is bytes for x in a.reshape(-1).tolist()), what
        assert a.reshape(-1).tolist() == b.reshape(-1).tolist(), what
    else:
        assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes(), what


def _same_as_value(got, value, what=""):
    """``got`` (from a tfckpt reader) holds ``value`` (what was saved)."""
    value = np.asarray(value) if not isinstance(value, bytes) else value
    if isinstance(value, bytes) or (value.dtype == object and value.ndim == 0):
        assert got == (value if isinstance(value, bytes) else value[()]), what
        return
    if value.ndim == 0:
        assert isinstance(got, np.generic), (what, type(got))
        got = np.asarray(got)
    assert got.shape == value.shape, what
    if value.dtype == object:
        assert got.reshape(-1).tolist() == value.reshape(-1).tolist(), what
    else:
        assert got.dtype == value.dtype, (what, got.dtype, value.dtype)
        assert got.tobytes() == np.ascontiguousarray(value).tobytes(), what


def _memory_mapped(array):
    base = array
    while base is not None:
        if isinstance(base, mmap.mmap):
            return True
        if isinstance(base, memoryview):
            return isinstance(base.obj, mmap.mmap)
        base = getattr(base, "base", None)
    return False


def _readable(reader):
    """Names get_tensor can read, and the error class of each one it cannot."""
    ok, errors = [], {}
    for name in list(reader):
        try:
            reader.get_tensor(name)
        except CheckpointError as exc:
            errors[name] = type(exc)
        else:
            ok.append(name)
    return ok, errors


def _plain_numeric(reader, name):
    """Stored whole, numeric, little-endian: what copy=False maps rather than copies."""
    backend = reader._backend
    return (
        isinstance(backend, BundleReader)
        and not backend.big_endian
        and reader.get_variable_to_dtype_map()[name].name != "string"
        and not backend.entry(name).slices
    )


# -- every fixture ---------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", FIXTURE_PREFIXES)
def test_get_tensors_equals_get_tensor_on_fixtures(prefix):
    path = os.path.join(FIXTURES, prefix)
    with tfckpt.load_checkpoint(path) as reader:
        names, errors = _readable(reader)
        assert names
        expected = {name: reader.get_tensor(name) for name in names}
        for copy in (True, False):
            got = reader.get_tensors(names, copy=copy)
            assert list(got) == names
            for name in names:
                _same(got[name], expected[name], f"{prefix}:{name} copy={copy}")
                _same(reader.get_tensor(name, copy=copy), expected[name], name)
        if not errors:
            everything = reader.get_tensors()
            assert list(everything) == reader.keys()
        for name, kind in errors.items():
            with pytest.raises(kind):
                reader.get_tensors([names[0], name])
            with pytest.raises(kind):
                reader.get_tensors([name], copy=False)
        # Subsets, in any order.
        subset = names[::-3]
        got = reader.get_tensors(subset)
        assert list(got) == subset
        for name in subset:
            _same(got[name], expected[name], name)
        assert reader.get_tensors([]) == {}
    loaded = tfckpt.load_tensors(path, names)
    assert list(loaded) == names
    for name in names:
        _same(loaded[name], expected[name], name)
    if not errors:
        assert list(tfckpt.load_tensors(path, copy=False)) == names


@pytest.mark.parametrize("prefix", FIXTURE_PREFIXES)
def test_copy_semantics_on_fixtures(prefix):
    path = os.path.join(FIXTURES, prefix)
    with tfckpt.load_checkpoint(path) as reader:
        names, _ = _readable(reader)
        owned = reader.get_tensors(names, copy=True)
        views = reader.get_tensors(names, copy=False)
        for name in names:
            value = owned[name]
            if isinstance(value, np.ndarray):
                assert value.flags.writeable, name
                assert not _memory_mapped(value), name
            if isinstance(views[name], np.ndarray) and _plain_numeric(reader, name):
                assert not views[name].flags.writeable, name
                assert _memory_mapped(views[name]), name
        # Writing into owned arrays changes neither the file nor the other arrays.
        before = {name: reader.get_tensor(name) for name in names}
        for name in names:
            value = owned[name]
            if isinstance(value, np.ndarray) and value.dtype != object and value.size:
                value.reshape(-1).view(np.uint8)[:] ^= 0xFF
        for name in names:
            _same(reader.get_tensor(name), before[name], name)
            _same(views[name], before[name], name)


def test_fixtures_scalars_come_back_as_scalars():
    with tfckpt.load_checkpoint(FIXTURES / "shapes" / "ckpt") as reader:
        shapes = reader.get_variable_to_shape_map()
        scalars = [n for n, s in shapes.items() if s == []]
        assert scalars
        for copy in (True, False):
            got = reader.get_tensors(scalars, copy=copy)
            for name in scalars:
                assert isinstance(got[name], np.generic), name
                assert not isinstance(got[name], np.ndarray)
    with tfckpt.load_checkpoint(FIXTURES / "strings" / "ckpt") as reader:
        shapes = reader.get_variable_to_shape_map()
        scalars = [n for n, s in shapes.items() if s == []]
        assert scalars
        for name, value in reader.get_tensors(scalars).items():
            assert type(value) is bytes, name


def test_read_many_equals_read_on_fixtures():
    for prefix in FIXTURE_PREFIXES:
        path = FIXTURES / prefix
        if not os.path.exists(f"{path}.index"):
            continue  # V1
        with BundleReader(path) as reader:
            keys = reader.names()
            names = [n for n in keys if reader.dtype(n).name != "variant"]
            for copy in (True, False):
                got = reader.read_many(names, copy=copy)
                assert list(got) == names
                for name in names:
                    _same(got[name], reader.read(name, copy=copy), f"{prefix}:{name}")


# -- names -----------------------------------------------------------------------------------


@pytest.fixture
def small(tmp_path):
    tensors = {
        "a": np.arange(10, dtype=np.float32),
        "b": np.arange(6, dtype=np.int64).reshape(2, 3),
        "c": np.float64(2.5),
        "d": np.array(b"scalar string", dtype=object),
        "e": np.zeros((0, 3), np.int16),
        "f": np.arange(100, dtype=np.uint8),
    }
    prefix = str(tmp_path / "small" / "model")
    tfckpt.save_tensors(prefix, tensors)
    return prefix, tensors


def test_unknown_names(small):
    prefix, _ = small
    with tfckpt.load_checkpoint(prefix) as reader:
        for copy in (True, False):
            with pytest.raises(TensorNotFoundError) as caught:
                reader.get_tensors(["a", "nope", "b"], copy=copy)
            assert caught.value.tensor == "nope"
            assert isinstance(caught.value, KeyError)
    with pytest.raises(TensorNotFoundError):
        tfckpt.load_tensors(prefix, ["nope"])
    with BundleReader(prefix) as reader, pytest.raises(TensorNotFoundError):
        reader.read_many(["a", "nope"])


def test_hidden_slice_keys_are_not_found(tmp_path):
    prefix = str(tmp_path / "m")
    with tfckpt.BundleWriter(prefix) as writer:
        writer.add_slice("p", [4], "0,2", np.arange(2.0))
        writer.add_slice("p", [4], "2,2", np.arange(2.0, 4.0))
    with tfckpt.load_checkpoint(prefix) as reader:
        assert reader.keys() == ["p"]
        hidden = [n for n in reader._backend.entries.keys if n != "p"]
        assert len(hidden) == 2
        with pytest.raises(TensorNotFoundError):
            reader.get_tensors(hidden[:1])
        assert reader.get_tensors()["p"].tolist() == [0, 1, 2, 3]


def test_subsets_keep_the_order_asked_for(small):
    prefix, tensors = small
    with tfckpt.load_checkpoint(prefix) as reader:
        for names in (["f", "a"], ["c"], ["e", "d", "c", "b", "a", "f"], ["b", "b"]):
            got = reader.get_tensors(names)
            assert list(got) == list(dict.fromkeys(names))
            for name in names:
                _same_as_value(got[name], tensors[name], name)
        got = reader.get_tensors(iter(["d", "a"]))  # any iterable
        assert list(got) == ["d", "a"]
    assert list(tfckpt.load_tensors(prefix, ("f", "c"), copy=False)) == ["f", "c"]


def test_load_tensors_defaults(small):
    prefix, tensors = small
    got = tfckpt.load_tensors(prefix)
    assert list(got) == sorted(tensors)
    for name, value in tensors.items():
        _same_as_value(got[name], value, name)
    assert isinstance(got["c"], np.float64)
    assert got["d"] == b"scalar string"
    got = tfckpt.load_tensors(os.path.dirname(prefix) + "/model", copy=False)
    assert not got["a"].flags.writeable
    assert list(got) == sorted(tensors)


def _mapping_closed(array):
    """Whether the memory map under ``array`` was closed (reading it would then crash the
    process, so the tests look before they touch the data)."""
    base = array
    while base is not None:
        if isinstance(base, mmap.mmap):
            return base.closed
        if isinstance(base, memoryview):
            return isinstance(base.obj, mmap.mmap) and base.obj.closed
        base = getattr(base, "base", None)
    return False


def test_get_tensor_views_outlive_the_reader(small):
    prefix, _ = small
    with tfckpt.load_checkpoint(prefix) as reader:
        view = reader.get_tensor("f", copy=False)
    assert _memory_mapped(view)
    assert not _mapping_closed(view)
    assert view.tolist() == list(range(100))


@pytest.mark.parametrize("how", ["load_tensors", "get_tensors"])
def test_bulk_views_outlive_the_reader(small, how):
    """load_tensors(copy=False) documents views "that stay valid after the call"."""
    prefix, tensors = small
    if how == "load_tensors":
        got = tfckpt.load_tensors(prefix, copy=False)
    else:
        with tfckpt.load_checkpoint(prefix) as reader:
            got = reader.get_tensors(["f", "a"], copy=False)
    # (Booleans first: pytest's assertion message would repr, i.e. read, the array.)
    closed = {name: _mapping_closed(got[name]) for name in ("f", "a")}
    assert closed == {"f": False, "a": False}, "the memory map under the views was closed"
    for name in ("f", "a"):
        _same_as_value(got[name], tensors[name], name)


# -- corruption ------------------------------------------------------------------------------


def _flip(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x40]))


def _offset_of(prefix, name):
    with BundleReader(prefix) as reader:
        entry = reader.entry(name)
        return entry.offset, entry.size


READERS = {
    "get_tensor": lambda r, n: r.get_tensor(n),
    "get_tensor_view": lambda r, n: r.get_tensor(n, copy=False),
    "get_tensors": lambda r, n: r.get_tensors(),
    "get_tensors_view": lambda r, n: r.get_tensors(copy=False),
    "get_tensors_one": lambda r, n: r.get_tensors([n]),
}


@pytest.mark.parametrize("how", list(READERS))
@pytest.mark.parametrize("victim", ["a", "b", "f"])
def test_flipped_byte_is_data_loss_naming_tensor_and_file(small, how, victim):
    prefix, tensors = small
    offset, size = _offset_of(prefix, victim)
    _flip(prefix + DATA, offset + size // 2)
    with tfckpt.load_checkpoint(prefix) as reader, pytest.raises(DataLossError) as caught:
        READERS[how](reader, victim)
    assert caught.value.tensor == victim
    assert caught.value.path == prefix + DATA
    assert victim in str(caught.value) and prefix + DATA in str(caught.value)
    assert "checksum" in str(caught.value)
    with tfckpt.load_checkpoint(prefix, verify_checksums=False) as reader:
        value = READERS[how](reader, victim)
        if isinstance(value, dict):
            value = value[victim]
        assert np.asarray(value).tobytes() != tensors[victim].tobytes()


def test_flipped_string_byte_is_data_loss(small):
    prefix, _ = small
    offset, size = _offset_of(prefix, "d")
    _flip(prefix + DATA, offset + size - 1)
    with tfckpt.load_checkpoint(prefix) as reader:
        for copy in (True, False):
            with pytest.raises(DataLossError) as caught:
                reader.get_tensors(copy=copy)
            assert caught.value.tensor == "d"


@pytest.mark.parametrize("how", list(READERS))
def test_truncated_data_file_is_data_loss(small, how):
    prefix, _ = small
    offset, size = _offset_of(prefix, "f")
    with open(prefix + DATA, "r+b") as f:
        f.truncate(offset + size - 1)
    with tfckpt.load_checkpoint(prefix) as reader, pytest.raises(DataLossError) as caught:
        READERS[how](reader, "f")
    assert caught.value.tensor == "f"
    assert prefix + DATA in str(caught.value)


def test_missing_data_file(small):
    prefix, _ = small
    os.remove(prefix + DATA)
    with tfckpt.load_checkpoint(prefix) as reader, pytest.raises(tfckpt.CheckpointNotFoundError):
        reader.get_tensors()


# -- the multithreaded, chunked path ---------------------------------------------------------


DTYPES = [
    np.float32,
    np.float64,
    np.float16,
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.uint8,
    np.uint16,
    np.uint32,
    np.uint64,
    np.bool_,
    np.complex64,
    np.complex128,
    ml_dtypes.bfloat16,
    ml_dtypes.float8_e4m3fn,
    ml_dtypes.int4,
]


def _many(rng, count=60):
    tensors = {}
    for i in range(count):
        dtype = np.dtype(DTYPES[i % len(DTYPES)])
        shape = [(), (0,), (7,), (3, 5), (257,), (4, 1, 33), (1000,)][i % 7]
        tensors[f"t{i:03d}/{dtype.name}"] = _random_array(rng, dtype, shape)
    tensors["big"] = rng.standard_normal(20000).astype(np.float32)
    tensors["big_bf16"] = rng.standard_normal(5000).astype(ml_dtypes.bfloat16)
    return tensors


def _t(i):
    """The name _many gives tensor ``i``."""
    return f"t{i:03d}/{np.dtype(DTYPES[i % len(DTYPES)]).name}"


@pytest.fixture
def threaded(monkeypatch):
    """Tiny thresholds so that every read is split into many chunks on several threads."""
    monkeypatch.setattr(batch, "PARALLEL_BYTES", 1)
    monkeypatch.setattr(batch, "CHUNK_BYTES", 64)
    monkeypatch.setattr(batch, "workers", lambda: 4)
    # Zero-copy checksums are threaded only for large mean tensor sizes (since 17c6cd7).
    monkeypatch.setattr(batch, "LARGE_TENSOR_BYTES", 1, raising=False)
    threads = set()
    calls = []
    original = LocalFile.readinto

    def spy(self, offset, buffer):
        threads.add(threading.current_thread().name)
        calls.append(offset)
        return original(self, offset, buffer)

    monkeypatch.setattr(LocalFile, "readinto", spy)
    return threads, calls


@pytest.fixture
def many(tmp_path):
    tensors = _many(np.random.default_rng(5))
    prefix = str(tmp_path / "many" / "model")
    tfckpt.save_tensors(prefix, tensors)
    return prefix, tensors


def test_threaded_chunked_reads_are_correct(many, threaded):
    prefix, tensors = many
    threads, calls = threaded
    with tfckpt.load_checkpoint(prefix) as reader:
        for copy in (True, False):
            got = reader.get_tensors(copy=copy)
            assert list(got) == sorted(tensors)
            for name, value in tensors.items():
                _same_as_value(got[name], value, name)
                if copy and value.ndim:
                    assert got[name].flags.writeable and not _memory_mapped(got[name])
        assert len(calls) > 20  # many chunks
        assert any(t.startswith("tfckpt-read") for t in threads), threads
        subset = ["big", _t(1), _t(30)]
        assert list(reader.get_tensors(subset)) == subset


def test_threaded_large_get_tensor(many, threaded):
    """get_tensor's large-tensor path: pieces read and checksummed in parallel, CRCs
    combined (uneven piece sizes)."""
    prefix, tensors = many
    threads, _ = threaded
    with tfckpt.load_checkpoint(prefix) as reader:
        for name in ["big", _t(4), _t(6), _t(2), _t(0)]:
            _same_as_value(reader.get_tensor(name), tensors[name], name)
        assert any(t.startswith("tfckpt-read") for t in threads), threads
        for name in ["big", _t(6), _t(0), _t(13)]:
            view = reader.get_tensor(name, copy=False)
            _same_as_value(view, tensors[name], name)


@pytest.mark.parametrize("name", ["big_bf16", _t(14), _t(16)])
def test_threaded_large_get_tensor_view_of_ml_dtypes(many, threaded, name):
    prefix, tensors = many
    with tfckpt.load_checkpoint(prefix) as reader:
        _same_as_value(reader.get_tensor(name, copy=False), tensors[name], name)


@pytest.mark.parametrize("how", list(READERS))
@pytest.mark.parametrize("victim", ["big", _t(6), _t(59)])
def test_threaded_crc_mismatch_detected(many, threaded, how, victim):
    prefix, _ = many
    offset, size = _offset_of(prefix, victim)
    _flip(prefix + DATA, offset + size - 1)
    with tfckpt.load_checkpoint(prefix) as reader, pytest.raises(DataLossError) as caught:
        READERS[how](reader, victim)
    assert caught.value.tensor == victim
    assert prefix + DATA in str(caught.value)


def test_threaded_two_bad_tensors_report_one_of_them(many, threaded):
    prefix, _ = many
    bad = [_t(3), "big"]
    for name in bad:
        offset, _ = _offset_of(prefix, name)
        _flip(prefix + DATA, offset)
    with tfckpt.load_checkpoint(prefix) as reader:
        for copy in (True, False):
            with pytest.raises(DataLossError) as caught:
                reader.get_tensors(copy=copy)
            assert caught.value.tensor in bad


def test_threaded_truncated(many, threaded):
    prefix, _ = many
    with open(prefix + DATA, "r+b") as f:
        f.truncate(os.path.getsize(prefix + DATA) - 3)
    with tfckpt.load_checkpoint(prefix) as reader:
        for copy in (True, False):
            with pytest.raises(DataLossError):
                reader.get_tensors(copy=copy)


@pytest.fixture
def checked_behind(monkeypatch):
    """Tiny chunks and a "many small tensors" verdict: owned bulk reads take the path where
    this thread reads and a pool thread checksums the chunks already read."""
    monkeypatch.setattr(batch, "CHUNK_BYTES", 64)
    monkeypatch.setattr(batch, "workers", lambda: 2)
    monkeypatch.setattr(batch, "LARGE_TENSOR_BYTES", 1 << 40)
    checker_threads = set()
    original = batch._crc32c

    def spy(data, *rest):
        checker_threads.add(threading.current_thread().name)
        return original(data, *rest)

    monkeypatch.setattr(batch, "_crc32c", spy)
    return checker_threads


def test_checked_behind_reads_are_correct(many, checked_behind):
    prefix, tensors = many
    with tfckpt.load_checkpoint(prefix) as reader:
        got = reader.get_tensors()
    assert list(got) == sorted(tensors)
    for name, value in tensors.items():
        _same_as_value(got[name], value, name)
    assert checked_behind and all(t.startswith("tfckpt-read") for t in checked_behind)


@pytest.mark.parametrize("victim", [_t(0), _t(30), _t(59), "big"])
def test_checked_behind_detects_a_bad_tensor_in_any_chunk(many, checked_behind, victim):
    prefix, _ = many
    offset, size = _offset_of(prefix, victim)
    _flip(prefix + DATA, offset + size - 1)
    with tfckpt.load_checkpoint(prefix) as reader, pytest.raises(DataLossError) as caught:
        reader.get_tensors()
    assert caught.value.tensor == victim
    assert prefix + DATA in str(caught.value)
    with tfckpt.load_checkpoint(prefix, verify_checksums=False) as reader:
        reader.get_tensors()  # unverified: read in this thread, no error


def test_checked_behind_truncated_file_stops_the_checker(many, checked_behind):
    prefix, _ = many
    with open(prefix + DATA, "r+b") as f:
        f.truncate(os.path.getsize(prefix + DATA) // 2)
    for _ in range(3):  # a checker left waiting would hold a pool thread for good
        with tfckpt.load_checkpoint(prefix) as reader, pytest.raises(DataLossError):
            reader.get_tensors()
    pool = batch.shared_pool()
    assert pool.submit(lambda: 1).result(timeout=10) == 1


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=3000), st.binary(max_size=3000), st.binary(max_size=50))
def test_crc32c_combine(a, b, c):
    combined = checksum.crc32c_combine(checksum.crc32c(a), checksum.crc32c(b), len(b))
    assert combined == checksum.crc32c(a + b)
    three = checksum.crc32c_combine(combined, checksum.crc32c(c), len(c))
    assert three == checksum.crc32c(a + b + c)


def test_crc32c_combine_long_lengths():
    a = b"\x01\x02\x03"
    b = bytes(range(256)) * 4099
    assert checksum.crc32c_combine(checksum.crc32c(a), checksum.crc32c(b), len(b)) == (
        checksum.crc32c(a + b)
    )


# -- the sparse path (a few tensors of many) -------------------------------------------------


@pytest.fixture
def spread(tmp_path):
    rng = np.random.default_rng(11)
    tensors = {f"w{i:04d}": rng.standard_normal(256).astype(np.float32) for i in range(200)}
    prefix = str(tmp_path / "spread" / "model")
    tfckpt.save_tensors(prefix, tensors)
    return prefix, tensors


@pytest.mark.parametrize("gap", [0.0, 0.1, 100.0])
@pytest.mark.parametrize("chunk", [64, 4096, 8 << 20])
def test_sparse_and_dense_subsets(spread, monkeypatch, gap, chunk):
    """A few tensors far apart (read one by one when the gaps are too large) or many
    (one arena): the same values either way, owned and writable."""
    monkeypatch.setattr(batch, "MAX_GAP_FRACTION", gap)
    monkeypatch.setattr(batch, "CHUNK_BYTES", chunk)
    prefix, tensors = spread
    with tfckpt.load_checkpoint(prefix) as reader:
        for names in (
            ["w0000", "w0199"],
            ["w0150", "w0003", "w0100"],
            [f"w{i:04d}" for i in range(0, 200, 2)],
            sorted(tensors),
            ["w0007"],
        ):
            for copy in (True, False):
                got = reader.get_tensors(names, copy=copy)
                assert list(got) == names
                for name in names:
                    _same_as_value(got[name], tensors[name], name)
                    assert got[name].flags.writeable == copy
                    assert _memory_mapped(got[name]) == (not copy)


def test_sparse_path_is_taken_and_detects_crc_mismatch(spread, monkeypatch):
    monkeypatch.setattr(batch, "CHUNK_BYTES", 64)
    taken = []
    original = batch._read_each

    def spy(*args):
        taken.append(1)
        return original(*args)

    monkeypatch.setattr(batch, "_read_each", spy)
    prefix, tensors = spread
    offset, _ = _offset_of(prefix, "w0199")
    _flip(prefix + DATA, offset + 5)
    with tfckpt.load_checkpoint(prefix) as reader:
        got = reader.get_tensors(["w0000", "w0100"])
        assert taken
        for name in got:
            _same_as_value(got[name], tensors[name], name)
        with pytest.raises(DataLossError) as caught:
            reader.get_tensors(["w0000", "w0199"])
        assert caught.value.tensor == "w0199"


# -- what tfckpt writes ----------------------------------------------------------------------


def _check_bulk_equals_single(prefix, expected=None):
    with tfckpt.load_checkpoint(prefix) as reader:
        names = reader.keys()
        single = {n: reader.get_tensor(n) for n in names}
        for copy in (True, False):
            got = reader.get_tensors(copy=copy)
            assert list(got) == names
            for name in names:
                _same(got[name], single[name], name)
        if expected is not None:
            assert sorted(names) == sorted(expected)
            for name, value in expected.items():
                _same_as_value(single[name], value, name)
    loaded = tfckpt.load_tensors(prefix)
    for name in names:
        _same(loaded[name], single[name], name)


def test_save_tensors_all_dtypes(tmp_path):
    rng = np.random.default_rng(3)
    tensors = _many(rng, count=70)
    strings = np.empty((2, 2), object)
    strings[:] = [[b"", b"\x00\xff"], [b"x" * 300, "é".encode()]]
    tensors["strings"] = strings
    tensors["string0"] = b"just bytes"
    tensors["empty_strings"] = np.empty((0, 2), object)
    prefix = str(tmp_path / "m")
    tfckpt.save_tensors(prefix, tensors)
    _check_bulk_equals_single(prefix, tensors)


def test_bundle_writer_slices_and_dtypes(tmp_path):
    prefix = str(tmp_path / "m")
    full = np.arange(40, dtype=np.float32).reshape(10, 4)
    words = np.empty(4, object)
    words[:] = [b"a", b"bb", b"", b"dddd"]
    with tfckpt.BundleWriter(prefix) as writer:
        writer.add("bias", np.arange(3, dtype=np.int64))
        writer.add_slice("emb", [10, 4], "0,3:-", full[:3])
        writer.add_slice("emb", [10, 4], "3,7:-", full[3:])
        writer.add_slice("cols", [10, 4], "-:0,1", full[:, :1])
        writer.add_slice("cols", [10, 4], "-:1,3", full[:, 1:])
        writer.add_slice("words", [4], "0,2", words[:2])
        writer.add_slice("words", [4], "2,2", words[2:])
        writer.add("q", np.arange(4, dtype=np.int8), dtype="qint8")
        writer.add("whole", np.array([[1, 2]], np.int32))
    _check_bulk_equals_single(
        prefix,
        {
            "bias": np.arange(3, dtype=np.int64),
            "emb": full,
            "cols": full,
            "words": words,
            "q": np.arange(4, dtype=np.int8),
            "whole": np.array([[1, 2]], np.int32),
        },
    )
    with tfckpt.load_checkpoint(prefix) as reader:
        got = reader.get_tensors(["emb", "bias"], copy=False)
        assert got["emb"].flags.writeable  # assembled: owned
        assert not got["bias"].flags.writeable


def test_big_endian_bundle(tmp_path):
    rng = np.random.default_rng(8)
    tensors = _many(rng, count=34)
    strings = np.empty(3, object)
    strings[:] = [b"abc", b"", b"\x00" * 200]
    prefix = str(tmp_path / "be")
    with tfckpt.BundleWriter(prefix, big_endian=True) as writer:
        for name, value in tensors.items():
            writer.add(name, value)
        writer.add("strings", strings)
        writer.add_slice("part", [4], "0,1", np.array([1.5], np.float64))
        writer.add_slice("part", [4], "1,3", np.array([2.5, 3.5, 4.5], np.float64))
    expected = dict(tensors, strings=strings, part=np.array([1.5, 2.5, 3.5, 4.5]))
    _check_bulk_equals_single(prefix, expected)
    offset, _ = _offset_of(prefix, "big")
    _flip(prefix + DATA, offset + 3)
    with tfckpt.load_checkpoint(prefix) as reader:
        for copy in (True, False):
            with pytest.raises(DataLossError) as caught:
                reader.get_tensors(copy=copy)
            assert caught.value.tensor == "big"


def test_merged_multi_shard_checkpoint(tmp_path):
    rng = np.random.default_rng(9)
    prefix = str(tmp_path / "merged" / "model")
    full = rng.standard_normal((9, 2)).astype(np.float64)
    expected = {"emb": full}
    for shard in range(3):
        with tfckpt.BundleWriter(tfckpt.part_prefix(prefix, shard, 3)) as writer:
            for i in range(10):
                name = f"s{shard}/v{i}"
                value = rng.integers(-100, 100, (i, 3)).astype([np.int32, np.float32][i % 2])
                writer.add(name, value)
                expected[name] = value
            writer.add_slice("emb", [9, 2], f"{shard * 3},3:-", full[shard * 3 : shard * 3 + 3])
    tfckpt.merge_parts(prefix, 3)
    assert sorted(f for f in os.listdir(tmp_path / "merged") if ".data-" in f) == [
        f"model.data-0000{i}-of-00003" for i in range(3)
    ]
    _check_bulk_equals_single(prefix, expected)
    with tfckpt.load_checkpoint(prefix) as reader:
        # Interleaved shards, in the order asked for.
        names = ["s2/v3", "s0/v9", "emb", "s1/v1", "s0/v2", "s2/v0"]
        for copy in (True, False):
            got = reader.get_tensors(names, copy=copy)
            assert list(got) == names
            for name in names:
                _same_as_value(got[name], expected[name], name)
    offset, _ = _offset_of(prefix, "s1/v5")
    _flip(f"{prefix}.data-00001-of-00003", offset + 1)
    with tfckpt.load_checkpoint(prefix) as reader:
        for copy in (True, False):
            with pytest.raises(DataLossError) as caught:
                reader.get_tensors(copy=copy)
            assert caught.value.tensor == "s1/v5"
            assert "data-00001-of-00003" in str(caught.value)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(DTYPES),
            st.lists(st.integers(0, 5), max_size=3),
            st.integers(0, 2**32 - 1),
        ),
        min_size=1,
        max_size=25,
    ),
    st.sampled_from([1, 64, 1 << 30]),
    st.sampled_from([16, 1000, 8 << 20]),
)
def test_random_checkpoints_bulk_equals_single(tmp_path_factory, specs, parallel, chunk):
    tensors = {}
    for i, (dtype, shape, seed) in enumerate(specs):
        dtype = np.dtype(dtype)
        rng = np.random.default_rng(seed)
        tensors[f"n{i}"] = _random_array(rng, dtype, shape)
    prefix = str(tmp_path_factory.mktemp("random") / "m")
    tfckpt.save_tensors(prefix, tensors)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(batch, "PARALLEL_BYTES", parallel)
        patch.setattr(batch, "CHUNK_BYTES", chunk)
        patch.setattr(batch, "workers", lambda: 3)
        with tfckpt.load_checkpoint(prefix) as reader:
            for copy in (True, False):
                got = reader.get_tensors(copy=copy)
                for name, value in tensors.items():
                    _same_as_value(got[name], value, name)
            for name, value in tensors.items():
                _same_as_value(reader.get_tensor(name), value, name)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_threaded_reads_work_in_a_forked_child(tmp_path, monkeypatch):
    """The shared reader pool is rebuilt in a forked child instead of hanging."""
    import multiprocessing

    from tfckpt.bundle import batch

    monkeypatch.setattr(batch, "PARALLEL_BYTES", 1)
    monkeypatch.setattr(batch, "CHUNK_BYTES", 1 << 12)
    monkeypatch.setattr(batch, "LARGE_TENSOR_BYTES", 1)
    arrays = {f"t{i}": np.full(4096, i, np.float32) for i in range(8)}
    prefix = tfckpt.save_tensors(tmp_path / "m", arrays)
    tfckpt.load_tensors(prefix)  # the parent's pool now exists
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:
        sums = pool.apply_async(_sum_all, (prefix,)).get(timeout=60)
    assert sums == {name: float(a.sum()) for name, a in arrays.items()}


def _sum_all(prefix):
    return {name: float(a.sum()) for name, a in tfckpt.load_tensors(prefix).items()}


def _random_array(rng, dtype, shape):
    """Random bytes of ``dtype`` (valid bools and int4s) in ``shape``."""
    raw = rng.integers(0, 256, int(np.prod(shape)) * dtype.itemsize, dtype=np.uint8)
    if dtype == np.bool_:
        raw &= 1
    if dtype == np.dtype(ml_dtypes.int4):
        raw &= 7
    return raw.view(dtype).reshape(shape)
