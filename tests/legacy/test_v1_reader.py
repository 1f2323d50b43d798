"""Legacy V1 checkpoints (one SSTable of SavedTensorSlices per file) through load_checkpoint.

The fixtures and the corpus' V1 files were written by TensorFlow; the hand-built files here
are assembled with tfckpt.table.TableWriter and the SavedTensorSlices protos, with every
typed ``*_val`` list TensorFlow's SaveSlices uses (saved_tensor_slice_util.h), a tensor
split across two shard files, and corrupt variants of each structure.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import tfckpt
from tests import manifest
from tests.bundle.test_partial_reads import same
from tests.conftest import CORPUS, FIXTURES
from tfckpt.errors import CheckpointError, DataLossError, UnsupportedError
from tfckpt.proto import saved_tensor_slice_pb2
from tfckpt.table.writer import TableWriter
from tfckpt.tensor_slice import TensorSlice, encode_slice_key

# DataType enum values (core/framework/types.proto)
DT = {
    "float32": 1,
    "float64": 2,
    "int32": 3,
    "uint8": 4,
    "int16": 5,
    "int8": 6,
    "string": 7,
    "complex64": 8,
    "int64": 9,
    "bool": 10,
    "qint8": 11,
    "quint8": 12,
    "qint32": 13,
    "uint16": 17,
    "complex128": 18,
    "float16": 19,
    "uint32": 22,
    "uint64": 23,
    "float8_e5m2": 24,
}


# -- building V1 files --------------------------------------------------------------------------


class V1File:
    """Collects the table of contents and the saved slices of one V1 file."""

    def __init__(self) -> None:
        self.meta = saved_tensor_slice_pb2.SavedTensorSlices()
        self.meta.meta.versions.producer = 1
        self.records: dict[bytes, bytes] = {}
        self.with_meta = True

    def add(self, name, dtype, shape, extents, field=None, items=(), *, meta=True, data=True):
        """One slice (``extents``: (start, length) or None per dim) holding ``items`` in the
        TensorProto field ``field``; ``meta``/``data`` False leave out either half."""
        tensor_slice = TensorSlice.from_extents(extents)
        if meta:
            entry = next((t for t in self.meta.meta.tensor if t.name == name), None)
            if entry is None:
                entry = self.meta.meta.tensor.add(name=name, type=dtype)
                entry.shape.SetInParent()
                for size in shape:
                    entry.shape.dim.add().size = size
            tensor_slice.to_proto(entry.slice.add())
        if data:
            saved = saved_tensor_slice_pb2.SavedTensorSlices()
            saved.data.name = name
            tensor_slice.to_proto(saved.data.slice)
            saved.data.data.SetInParent()
            if field is not None:
                getattr(saved.data.data, field).extend(items)
            self.records[encode_slice_key(name, tensor_slice)] = saved.SerializeToString()

    def write(self, path) -> str:
        records = dict(self.records)
        if self.with_meta:
            records[b""] = self.meta.SerializeToString()
        with open(path, "wb") as f:
            table = TableWriter(f)
            for key in sorted(records):
                table.add(key, records[key])
            table.finish()
        return str(path)


def _half_bits(values) -> list[int]:
    return np.array(values, np.float16).view(np.uint16).astype(int).tolist()


F32 = np.array([0.0, -0.0, 1.5, np.inf, -np.inf, np.nan, 1e-45, 3.4028235e38], np.float32)
F16 = np.array([1.0, -0.0, 65504.0, np.inf, np.nan, 6e-8], np.float16)
SPLIT = np.arange(12, dtype=np.float32).reshape(4, 3) * 0.25 - 1
ROWS = np.array([[1, -2], [3, -4], [5, -6]], np.int32)

# name -> (dtype, expected value, TensorProto field, the field's items)
KINDS = {
    "float": ("float32", F32.reshape(2, 4), "float_val", F32.tolist()),
    "double": ("float64", np.array([np.pi, -2.5, 5e-324]), "double_val", [np.pi, -2.5, 5e-324]),
    "int8": ("int8", np.array([-128, 0, 127], np.int8), "int_val", [-128, 0, 127]),
    "int16": ("int16", np.array([-32768, 1, 32767], np.int16), "int_val", [-32768, 1, 32767]),
    "int32": (
        "int32",
        np.array([-(2**31), -1, 2**31 - 1], np.int32),
        "int_val",
        [-(2**31), -1, 2**31 - 1],
    ),
    "uint8": ("uint8", np.array([0, 128, 255], np.uint8), "int_val", [0, 128, 255]),
    "uint16": ("uint16", np.array([0, 1, 65535], np.uint16), "int_val", [0, 1, 65535]),
    "int64": (
        "int64",
        np.array([-(2**63), 0, 2**63 - 1], np.int64),
        "int64_val",
        [-(2**63), 0, 2**63 - 1],
    ),
    "uint32": (
        "uint32",
        np.array([0, 2**32 - 1, 123], np.uint32),
        "uint32_val",
        [0, 2**32 - 1, 123],
    ),
    "uint64": ("uint64", np.array([0, 2**64 - 1], np.uint64), "uint64_val", [0, 2**64 - 1]),
    "bool": (
        "bool",
        np.array([[True, False], [True, True]]),
        "bool_val",
        [True, False, True, True],
    ),
    "half": ("float16", F16, "half_val", _half_bits(F16)),
    "scomplex": (
        "complex64",
        np.array([1 + 2j, -0.5 - 0.25j], np.complex64),
        "scomplex_val",
        [1, 2, -0.5, -0.25],
    ),
    "dcomplex": ("complex128", np.array([3 - 4j], np.complex128), "dcomplex_val", [3, -4]),
    "string": (
        "string",
        np.array([b"", b"a\x00b", b"\xff\xfe", "ü".encode()], dtype=object),
        "string_val",
        [b"", b"a\x00b", b"\xff\xfe", "ü".encode()],
    ),
    "qint8": ("qint8", np.array([-128, 5], np.int8), "int_val", [-128, 5]),
    "quint8": ("quint8", np.array([0, 255], np.uint8), "int_val", [0, 255]),
    "qint32": ("qint32", np.array([-7, 2**31 - 1], np.int32), "int_val", [-7, 2**31 - 1]),
    "scalar": ("int64", np.array(42, np.int64), "int64_val", [42]),
    "empty": ("float32", np.zeros((2, 0), np.float32), "float_val", []),
}
IN_SHARD_1 = {"int64", "uint64", "half", "dcomplex", "string", "quint8"}


def expected_v1() -> dict[str, tuple[str, np.ndarray]]:
    out = {name: (dtype, value) for name, (dtype, value, _, _) in KINDS.items()}
    out["split"] = ("float32", SPLIT)
    out["rows"] = ("int32", ROWS)
    return out


def build_sharded_v1(directory) -> str:
    """``directory/model.ckpt-0000N-of-00002``; returns the prefix ``directory/model.ckpt``."""
    os.makedirs(directory, exist_ok=True)
    shards = [V1File(), V1File()]
    for name, (dtype, value, field, items) in KINDS.items():
        shards[name in IN_SHARD_1].add(
            name, DT[dtype], value.shape, [None] * value.ndim, field, items
        )
    # "split" [4, 3]: rows 0-1 in shard 0 (full column extent spelled out), rows 2-3 in shard 1.
    shards[0].add("split", 1, (4, 3), [(0, 2), (0, 3)], "float_val", SPLIT[:2].ravel().tolist())
    shards[1].add("split", 1, (4, 3), [(2, 2), None], "float_val", SPLIT[2:].ravel().tolist())
    # "rows" [3, 2]: two slices in the same file.
    shards[0].add("rows", 3, (3, 2), [(1, 2), None], "int_val", ROWS[1:].ravel().tolist())
    shards[0].add("rows", 3, (3, 2), [(0, 1), None], "int_val", ROWS[:1].ravel().tolist())
    for k, shard in enumerate(shards):
        shard.write(os.path.join(directory, f"model.ckpt-{k:05d}-of-00002"))
    return os.path.join(directory, "model.ckpt")


def _check_value(reader, name, dtype, want):
    assert reader.get_variable_to_dtype_map()[name].name == dtype, name
    assert reader.get_variable_to_shape_map()[name] == list(want.shape), name
    got = reader.get_tensor(name)
    if want.dtype == object:
        if want.ndim == 0:
            assert type(got) is bytes and got == want[()], name
        else:
            assert got.dtype == object and got.tolist() == want.tolist(), name
            assert all(type(x) is bytes for x in got.reshape(-1)), name
        return
    same(got, want[()] if want.ndim == 0 else want, name)


# -- hand-built files ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sharded_v1(tmp_path_factory):
    return build_sharded_v1(tmp_path_factory.mktemp("v1") / "ckpt")


@pytest.mark.parametrize(
    "path",
    ["prefix", "pattern", "pattern_any_count"],
)
def test_every_value_kind(sharded_v1, path):
    prefix = {
        "prefix": sharded_v1,
        "pattern": sharded_v1 + "-?????-of-00002",
        "pattern_any_count": sharded_v1 + "-*",
    }[path]
    with tfckpt.load_checkpoint(prefix) as reader:
        assert reader.format == "v1"
        expected = expected_v1()
        assert reader.keys() == sorted(expected)
        for name, (dtype, want) in expected.items():
            _check_value(reader, name, dtype, want)


def test_split_tensors_slices_and_partial_reads(sharded_v1):
    with tfckpt.load_checkpoint(sharded_v1) as reader:
        assert set(reader.get_tensor_slices("split")) == {
            TensorSlice.from_extents([(0, 2), (0, 3)]),
            TensorSlice.from_extents([(2, 2), None]),
        }
        assert len(reader.get_tensor_slices("rows")) == 2
        assert reader.get_tensor_slices("float") == []
        view = reader.get_slice("split")
        assert view.shape == (4, 3) and view.dtype.name == "float32"
        same(view[1:3, ::-1], SPLIT[1:3, ::-1])
        same(view[-1, 0], SPLIT[-1, 0])
        same(reader.get_slice("rows")[::2], ROWS[::2])
        assert reader.get_slice("string")[2:].tolist() == [b"\xff\xfe", "ü".encode()]
        with pytest.raises(IndexError):
            view[4]
        with pytest.raises(IndexError):
            view[0, 0, 0]


def test_string_scalar_reads_as_bytes(tmp_path):
    # As for V2 checkpoints (and TensorFlow's reader): a 0-d string tensor is ``bytes``.
    v1 = V1File()
    v1.add("s", DT["string"], (), [], "string_val", [b"one"])
    v1.add("n", DT["int32"], (), [], "int_val", [7])
    path = v1.write(tmp_path / "model.ckpt")
    with tfckpt.load_checkpoint(path) as reader:
        assert reader.get_variable_to_shape_map() == {"n": [], "s": []}
        same(reader.get_tensor("n"), np.int32(7))
        got = reader.get_tensor("s")
        assert type(got) is bytes and got == b"one", repr(got)


def test_string_elements_of_a_view_are_exact_bytes(tmp_path):
    # Trailing NUL bytes are data: a view element must be the stored bytes, as get_tensor
    # returns them (and as a V2 view returns them).
    v1 = V1File()
    items = [b"a", b"x\x00", b"\x00", b"\x00\x00y\x00"]
    v1.add("s", DT["string"], (4,), [None], "string_val", items)
    path = v1.write(tmp_path / "model.ckpt")
    with tfckpt.load_checkpoint(path) as reader:
        assert reader.get_tensor("s").tolist() == items
        view = reader.get_slice("s")
        for i, item in enumerate(items):
            got = view[i]
            assert type(got) is bytes and got == item, (i, got, item)
        assert view[1:].tolist() == items[1:]


@pytest.mark.parametrize("index", [[0, 1], (0, None)], ids=repr)
def test_view_of_a_v1_tensor_refuses_fancy_indexing(sharded_v1, index):
    # TensorView takes integers, slices and '...' only, whatever the checkpoint format.
    with tfckpt.load_checkpoint(sharded_v1) as reader, pytest.raises(TypeError):
        reader.get_slice("split")[index]


def test_one_shard_file_alone(sharded_v1):
    """The path of one shard file reads just that file: its own tensors are whole; a tensor
    whose other slices live in the other file is incomplete."""
    one = sharded_v1 + "-00001-of-00002"
    with tfckpt.load_checkpoint(one) as reader:
        assert reader.format == "v1"
        assert reader.keys() == sorted([*IN_SHARD_1, "split"])
        expected = expected_v1()
        for name in IN_SHARD_1:
            _check_value(reader, name, *expected[name])
        assert reader.get_variable_to_shape_map()["split"] == [4, 3]
        with pytest.raises(DataLossError) as info:
            reader.get_tensor("split")
        assert info.value.tensor == "split"
        assert "6 of 12" in str(info.value)


# -- corrupt files -------------------------------------------------------------------------------


def _single(tmp_path, build) -> str:
    v1 = V1File()
    build(v1)
    return v1.write(tmp_path / "model.ckpt")


def _raises_naming(exc_type, path, tensor, call):
    with pytest.raises(exc_type) as info:
        call()
    exc = info.value
    assert isinstance(exc, CheckpointError)
    assert exc.path == str(path), (exc.path, path)
    assert str(path) in str(exc)
    if tensor is not None:
        assert exc.tensor == tensor
        assert repr(tensor) in str(exc)
    return exc


def test_missing_slice_data(tmp_path):
    path = _single(
        tmp_path,
        lambda v1: (
            v1.add("ok", 1, (2,), [None], "float_val", [1.0, 2.0]),
            v1.add("gone", 1, (2, 2), [(0, 1), None], "float_val", [1.0, 2.0]),
            v1.add("gone", 1, (2, 2), [(1, 1), None], "float_val", [3.0, 4.0], data=False),
        ),
    )
    with tfckpt.load_checkpoint(path) as reader:
        same(reader.get_tensor("ok"), np.array([1.0, 2.0], np.float32))
        exc = _raises_naming(DataLossError, path, "gone", lambda: reader.get_tensor("gone"))
        assert "missing" in str(exc)


@pytest.mark.parametrize(
    "dtype, field, items, count",
    [
        (1, "float_val", [1.0] * 5, 6),
        (1, "float_val", [1.0] * 7, 6),
        (3, "int_val", [], 6),
        (8, "scomplex_val", [1.0] * 11, 6),  # complex: 2 items per element
        (7, "string_val", [b"x"] * 5, 6),
        (1, "double_val", [1.0] * 6, 6),  # the right count in the wrong field
    ],
)
def test_wrong_value_count(tmp_path, dtype, field, items, count):
    path = _single(tmp_path, lambda v1: v1.add("t", dtype, (2, 3), [None, None], field, items))
    with tfckpt.load_checkpoint(path) as reader:
        exc = _raises_naming(DataLossError, path, "t", lambda: reader.get_tensor("t"))
        assert f"expected {count}" in str(exc)


def test_unknown_dtype(tmp_path):
    path = _single(
        tmp_path,
        lambda v1: (
            v1.add("fine", 1, (1,), [None], "float_val", [1.0]),
            v1.add("future", 99, (1,), [None], "float_val", [1.0]),
        ),
    )
    exc = _raises_naming(UnsupportedError, path, "future", lambda: tfckpt.load_checkpoint(path))
    assert "99" in str(exc)


def test_dtype_v1_cannot_hold(tmp_path):
    path = _single(
        tmp_path, lambda v1: v1.add("f8", DT["float8_e5m2"], (2,), [None], "int_val", [1, 2])
    )
    with tfckpt.load_checkpoint(path) as reader:
        assert reader.get_variable_to_dtype_map()["f8"].name == "float8_e5m2"
        with pytest.raises(UnsupportedError) as info:
            reader.get_tensor("f8")
        assert info.value.tensor == "f8" and "float8_e5m2" in str(info.value)


def test_missing_table_of_contents(tmp_path):
    def build(v1):
        v1.add("t", 1, (1,), [None], "float_val", [1.0])
        v1.with_meta = False

    path = _single(tmp_path, build)
    exc = _raises_naming(DataLossError, path, None, lambda: tfckpt.load_checkpoint(path))
    assert "empty key" in str(exc) or "table of contents" in str(exc)


def test_unparseable_table_of_contents(tmp_path):
    path = tmp_path / "model.ckpt"
    with open(path, "wb") as f:
        table = TableWriter(f)
        table.add(b"", b"\xff\xff\xff not a proto")
        table.finish()
    _raises_naming(DataLossError, path, None, lambda: tfckpt.load_checkpoint(path))


def test_unparseable_slice_data(tmp_path):
    def build(v1):
        v1.add("t", 1, (2,), [None], "float_val", [1.0, 2.0])
        v1.records[encode_slice_key("t", TensorSlice.full(1))] = b"\xff\xff\xff garbage"

    path = _single(tmp_path, build)
    with tfckpt.load_checkpoint(path) as reader:
        _raises_naming(DataLossError, path, "t", lambda: reader.get_tensor("t"))


def test_overlapping_and_incomplete_slices(tmp_path):
    def build(v1):
        v1.add("overlap", 3, (4,), [(0, 3)], "int_val", [1, 2, 3])
        v1.add("overlap", 3, (4,), [(2, 2)], "int_val", [3, 4])
        v1.add("hole", 3, (4,), [(0, 1)], "int_val", [1])
        v1.add("hole", 3, (4,), [(2, 2)], "int_val", [3, 4])
        v1.add("outside", 3, (4,), [(3, 2)], "int_val", [1, 2])

    path = _single(tmp_path, build)
    with tfckpt.load_checkpoint(path) as reader:
        assert "overlaps" in str(
            _raises_naming(DataLossError, path, "overlap", lambda: reader.get_tensor("overlap"))
        )
        _raises_naming(DataLossError, path, "outside", lambda: reader.get_tensor("outside"))
        with pytest.raises(DataLossError) as info:
            reader.get_tensor("hole")
        assert info.value.tensor == "hole" and "3 of 4" in str(info.value)


def test_shards_disagreeing_on_a_tensor(tmp_path):
    a, b = V1File(), V1File()
    a.add("t", 1, (4,), [(0, 2)], "float_val", [1.0, 2.0])
    b.add("t", 1, (5,), [(2, 2)], "float_val", [3.0, 4.0])
    a.write(tmp_path / "m-00000-of-00002")
    second = b.write(tmp_path / "m-00001-of-00002")
    _raises_naming(DataLossError, second, "t", lambda: tfckpt.load_checkpoint(tmp_path / "m"))


def test_not_a_table(tmp_path):
    path = tmp_path / "model.ckpt"
    path.write_bytes(b"this is not an SSTable" * 10)
    with pytest.raises(DataLossError) as info:
        tfckpt.load_checkpoint(path)
    assert str(path) in str(info.value)


def test_pattern_matching_nothing_is_not_found(tmp_path):
    with pytest.raises(tfckpt.CheckpointNotFoundError):
        tfckpt.load_checkpoint(tmp_path / "model.ckpt-?????-of-00002")
    with pytest.raises(tfckpt.CheckpointNotFoundError):
        tfckpt.load_checkpoint(tmp_path / "model.ckpt")


# -- TensorFlow's V1 files: fixtures and corpus --------------------------------------------------

FIXTURE_ENTRIES = [e for e in manifest.load(FIXTURES / "MANIFEST.json") if e["format"] == "v1"]
CORPUS_ENTRIES = [e for e in manifest.load(CORPUS / "MANIFEST.json") if e["format"] == "v1"]


def test_v1_files_are_present():
    assert {e["path"] for e in FIXTURE_ENTRIES} == {
        "v1_format/model.ckpt",
        "v1_sharded/model.ckpt-?????-of-00002",
    }
    assert len(CORPUS_ENTRIES) >= 4


@pytest.mark.parametrize(
    "root, entry",
    [pytest.param(FIXTURES, e, id="fixtures/" + e["path"]) for e in FIXTURE_ENTRIES]
    + [pytest.param(CORPUS, e, id="corpus/" + e["path"]) for e in CORPUS_ENTRIES],
)
def test_tensorflow_v1_files_read_as_tensorflow_read_them(root, entry):
    prefix = os.path.join(root, entry["path"])
    with tfckpt.load_checkpoint(prefix) as reader:
        assert reader.format == "v1"
        assert manifest.check_checkpoint(reader, entry) >= 1


def _fixture(path: str) -> dict:
    return next(e for e in FIXTURE_ENTRIES if e["path"] == path)


@pytest.mark.parametrize(
    "path",
    ["v1_sharded/model.ckpt-?????-of-00002", "v1_sharded/model.ckpt", "v1_sharded"],
    ids=["pattern", "prefix", "directory_with_state_file"],
)
def test_sharded_fixture_by_every_path(path):
    entry = _fixture("v1_sharded/model.ckpt-?????-of-00002")
    with tfckpt.load_checkpoint(FIXTURES / path) as reader:
        assert reader.format == "v1"
        manifest.check_checkpoint(reader, entry)
        table = np.arange(16, dtype=np.int32).reshape(8, 2)  # fixed_size_partitioner(2)
        same(reader.get_tensor("table"), table)
        assert len(reader.get_tensor_slices("table")) == 2
        same(reader.get_slice("table")[3:6, ::-1], table[3:6, ::-1])


def test_sharded_fixture_single_shard_path():
    entry = _fixture("v1_sharded/model.ckpt-?????-of-00002")
    expected = entry["tensors"]
    shard0 = {"step", "table", "weights"}  # /cpu:0; dev1_* and table/part_1 on /cpu:1
    for k, names in ((0, shard0), (1, {"dev1_labels", "dev1_mask", "table"})):
        path = FIXTURES / f"v1_sharded/model.ckpt-{k:05d}-of-00002"
        with tfckpt.load_checkpoint(path) as reader:
            assert reader.format == "v1"
            assert set(reader.keys()) == names
            for name in names - {"table"}:
                value = reader.get_tensor(name)
                assert (
                    manifest.value_digest(value, expected[name]["dtype"])
                    == expected[name]["sha256"]
                )
            with pytest.raises(DataLossError) as info:
                reader.get_tensor("table")
            assert info.value.tensor == "table"


def test_format_fixture_by_directory_and_partitions():
    entry = _fixture("v1_format/model.ckpt")
    with tfckpt.load_checkpoint(FIXTURES / "v1_format") as reader:
        assert reader.format == "v1"
        manifest.check_checkpoint(reader, entry)
        part = np.arange(24, dtype=np.float32).reshape(6, 4) * 0.5
        same(reader.get_tensor("partitioned"), part)
        assert len(reader.get_tensor_slices("partitioned")) == 3
        same(reader.get_slice("partitioned")[1:5:3], part[1:5:3])
        words = reader.get_tensor("partitioned_string")
        assert words.tolist() == [b"p%d" % i for i in range(5)]
        same(reader.get_tensor("scalar_int64"), np.array(42, np.int64)[()])


def test_corpus_v1_with_one_shard_naming():
    base = (
        CORPUS
        / "tensorflow-serving/tensorflow_serving/session_bundle/testdata/half_plus_two/00000123"
    )
    with (
        tfckpt.load_checkpoint(base / "export-00000-of-00001") as a,
        tfckpt.load_checkpoint(base / "export") as b,
    ):
        assert a.format == b.format == "v1"
        assert a.keys() == b.keys() and len(a.keys()) == 2
        for name in a:
            same(a.get_tensor(name), b.get_tensor(name))


# -- hostile tables of contents ------------------------------------------------------------------


def test_a_huge_declared_shape_fails_before_allocating(tmp_path):
    """A tiny file declaring a [20000, 20000] string tensor with one 1-element slice: a
    DataLossError (the slices hold 1 of 400,000,000 elements) before the 3 GB object array
    is allocated."""
    import tracemalloc

    path = _single(tmp_path, lambda v1: v1.add("s", 7, (20000, 20000), [(0, 1), (0, 1)],
                                               "string_val", [b"x"]))  # fmt: skip
    with tfckpt.load_checkpoint(path) as reader:
        tracemalloc.start()
        try:
            with pytest.raises(DataLossError) as info:
                reader.get_tensor("s")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert info.value.tensor == "s" and "1 of 400000000" in str(info.value)
    assert peak < 16 << 20, peak


def test_an_invalid_slice_extent_in_the_table_of_contents(tmp_path):
    """A negative slice start in the table of contents is a DataLossError naming the file
    and tensor when the checkpoint is opened, not TensorSlice's ValueError."""
    v1 = V1File()
    v1.add("t", 3, (4,), [(0, 4)], "int_val", [1, 2, 3, 4])
    v1.meta.meta.tensor[0].slice[0].extent[0].start = -1
    path = v1.write(tmp_path / "model.ckpt")
    _raises_naming(DataLossError, path, "t", lambda: tfckpt.load_checkpoint(path))


def test_tensor_content_that_is_not_whole_elements(tmp_path):
    """7 bytes of tensor_content for float32 values: DataLossError, not NumPy's ValueError."""
    v1 = V1File()
    v1.add("t", 1, (2,), [(0, 2)])
    key = next(iter(v1.records))
    saved = saved_tensor_slice_pb2.SavedTensorSlices.FromString(v1.records[key])
    saved.data.data.tensor_content = b"\x00" * 7
    v1.records[key] = saved.SerializeToString()
    path = v1.write(tmp_path / "model.ckpt")
    with tfckpt.load_checkpoint(path) as reader:
        _raises_naming(DataLossError, path, "t", lambda: reader.get_tensor("t"))


def test_more_dimensions_than_numpy_holds(tmp_path):
    """A 65-dimensional tensor: UnsupportedError naming it, not NumPy's ValueError."""
    path = _single(tmp_path, lambda v1: v1.add("t", 3, (1,) * 65, [None] * 65, "int_val", [1]))
    with tfckpt.load_checkpoint(path) as reader:
        assert reader.get_variable_to_shape_map() == {"t": [1] * 65}
        with pytest.raises(UnsupportedError) as info:
            reader.get_tensor("t")
    assert info.value.tensor == "t"


def test_a_state_file_pattern_over_directories_is_not_globbed(tmp_path, monkeypatch):
    """A state file naming "/*/*/*/*/*/*" made latest_checkpoint glob the whole file system
    (28 s here, found by the fuzzer): a pattern is only followed in the file name, as the
    TF1 Saver writes it, so this one names no checkpoint and nothing is listed."""
    import glob as glob_module

    from tfckpt.legacy.naming import v1_files

    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "/*/*/*/*/*/*"\n')
    patterns = []
    original = glob_module.glob

    def spy(pattern, *args, **kwargs):
        patterns.append(pattern)
        return original(pattern, *args, **kwargs)

    monkeypatch.setattr(glob_module, "glob", spy)
    assert tfckpt.latest_checkpoint(tmp_path) is None
    assert v1_files(str(tmp_path / "*" / "model.ckpt")) == []
    assert not any(p.startswith("/*") for p in patterns), patterns
    sharded = str(FIXTURES / "v1_sharded" / "model.ckpt-?????-of-00002")
    assert len(v1_files(sharded)) == 2  # a pattern in the file name still works


@pytest.mark.parametrize("missing", [0, 1])
@pytest.mark.parametrize("opened_as", ["prefix", "pattern", "directory"])
def test_a_missing_shard_file_is_not_found(tmp_path, missing, opened_as):
    """A sharded V1 checkpoint with one of its two shard files gone read as a checkpoint
    of the other file's tensors only (found by the fuzzer: silently fewer tensors); the
    names say two shards, so opening it is a CheckpointNotFoundError naming the missing
    file.  A shard opened by its own path is still read alone."""
    import shutil

    for f in (FIXTURES / "v1_sharded").iterdir():
        shutil.copy(f, tmp_path / f.name)
    gone = tmp_path / f"model.ckpt-{missing:05d}-of-00002"
    gone.unlink()
    path = {"prefix": tmp_path / "model.ckpt", "directory": tmp_path,
            "pattern": tmp_path / "model.ckpt-?????-of-00002"}[opened_as]  # fmt: skip
    with pytest.raises(tfckpt.CheckpointNotFoundError) as info:
        tfckpt.load_checkpoint(path)
    assert info.value.path == str(gone)
    kept = tmp_path / f"model.ckpt-{1 - missing:05d}-of-00002"
    assert tfckpt.load_checkpoint(kept).keys()
