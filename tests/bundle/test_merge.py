"""Several writers, one checkpoint: ``part_prefix``, ``merge_parts`` and ``merge_bundles``.

The main test runs N=4 writer *processes* in parallel, each writing its part of the
checkpoint with its own ``BundleWriter`` at ``part_prefix(prefix, i, 4)``: some tensors of
its own and slices of partitioned tensors that all writers share.  ``merge_parts`` then
makes one checkpoint of them (MergeV2Checkpoints / MergeBundles in tensor_bundle.cc): data
files renamed (not copied) to ``prefix.data-0000i-of-00004`` in order of first use, one new
index, the temporary directory removed.  The error cases follow MergeBundles too.

Expected values are computed with NumPy from the shard number, in the test process.
"""

from __future__ import annotations

import os
import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest

import tfckpt
from tests.conftest import REPO
from tfckpt.errors import CheckpointError, CheckpointNotFoundError, InvalidArgumentError
from tfckpt.proto import tensor_bundle_pb2
from tfckpt.table.reader import TableReader
from tfckpt.tensor_slice import TensorSlice

N = 4
ROWS_PER_WRITER = 2  # "shared/emb" is [N * 2, 3], one fixed_size_partitioner(N) part each

# "shared/grid" [6, 10] int32: irregular blocks; writer 3 writes two of them.
GRID_SHAPE = (6, 10)
GRID_BLOCKS = {
    0: [[(0, 3), (0, 4)]],
    1: [[(3, 3), (0, 4)]],
    2: [[(0, 6), (4, 3)]],
    3: [[(0, 2), (7, 3)], [(2, 4), (7, 3)]],
}


def _obj(items) -> np.ndarray:
    out = np.empty(len(items), object)
    out[:] = items
    return out


def shared_values(num_shards: int = N) -> dict[str, np.ndarray]:
    """Full values of the partitioned tensors that the writers share."""
    emb = (np.arange(num_shards * ROWS_PER_WRITER * 3, dtype=np.float32) * 0.5 - 3).reshape(
        num_shards * ROWS_PER_WRITER, 3
    )
    grid = (np.arange(60, dtype=np.int32) * -7 + 11).reshape(GRID_SHAPE)
    vocab = _obj([b"tok-%d" % i for i in range(num_shards * 2)])
    return {"shared/emb": emb, "shared/grid": grid, "shared/vocab": vocab}


def own_values(shard: int) -> dict[str, np.ndarray]:
    """The tensors only writer ``shard`` writes."""
    rng = np.random.default_rng(shard)
    return {
        f"part{shard}/kernel": rng.standard_normal((3 + shard, 4)).astype(np.float32),
        f"part{shard}/step": np.array(1000 + shard, np.int64),
        f"part{shard}/names": _obj([b"part%d-%d" % (shard, k) for k in range(shard + 1)]),
        f"part{shard}/bf16": np.arange(shard + 2).astype(ml_dtypes.bfloat16) - 0.5,
        f"part{shard}/flags": np.array([shard % 2 == 0, True, False]),
    }


def expected_values(num_shards: int = N) -> dict[str, np.ndarray]:
    out = shared_values(num_shards)
    for shard in range(num_shards):
        out.update(own_values(shard))
    return out


def emb_extents(shard: int) -> list:
    rows = (shard * ROWS_PER_WRITER, ROWS_PER_WRITER)
    # Odd writers spell the full column extent out, as TensorFlow's Saver does.
    return [rows, (0, 3) if shard % 2 else None]


def write_part(prefix: str, shard: int, num_shards: int = N) -> str:
    """What writer ``shard`` does (run in its own process by the tests)."""
    shared = shared_values(num_shards)
    part = tfckpt.part_prefix(prefix, shard, num_shards)
    with tfckpt.BundleWriter(part) as writer:
        for name, value in own_values(shard).items():
            writer.add(name, value)
        emb = shared["shared/emb"]
        extents = emb_extents(shard)
        rows = slice(extents[0][0], extents[0][0] + extents[0][1])
        writer.add_slice("shared/emb", emb.shape, extents, emb[rows])
        writer.add_slice(
            "shared/vocab",
            (num_shards * 2,),
            [(2 * shard, 2)],
            shared["shared/vocab"][2 * shard : 2 * shard + 2],
        )
        if num_shards == N:
            grid = shared["shared/grid"]
            for block in GRID_BLOCKS[shard]:
                region = tuple(slice(a, a + n) for a, n in block)
                writer.add_slice("shared/grid", GRID_SHAPE, block, grid[region])
    return part


_CHILD = (
    "import sys; from tests.bundle.test_merge import write_part; "
    "write_part(sys.argv[1], int(sys.argv[2]))"
)


def write_parts_in_processes(prefix: str, num_shards: int = N) -> list[str]:
    """Runs ``num_shards`` writer processes at once; returns the part prefixes."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO / "src"), str(REPO), *filter(None, [env.get("PYTHONPATH")])]
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, prefix, str(shard)],
            cwd=str(REPO),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for shard in range(num_shards)
    ]
    failures = []
    for shard, proc in enumerate(procs):
        _out, err = proc.communicate(timeout=120)
        if proc.returncode != 0:
            failures.append(f"writer {shard} exited with {proc.returncode}: {err.decode()[-2000:]}")
    assert not failures, "\n".join(failures)
    return [tfckpt.part_prefix(prefix, shard, num_shards) for shard in range(num_shards)]


def same(actual, expected, what=""):
    if expected.dtype == object:
        if expected.ndim == 0:
            assert actual == expected[()], what
        else:
            assert actual.dtype == object and actual.tolist() == expected.tolist(), what
        return
    a = np.asarray(actual)
    assert a.dtype == expected.dtype and a.shape == expected.shape, (what, a.dtype, a.shape)
    assert a.tobytes() == expected.tobytes(), what
    if expected.ndim == 0:
        assert isinstance(actual, np.generic), what


def _header(prefix: str):
    header = tensor_bundle_pb2.BundleHeaderProto()
    header.ParseFromString(dict(TableReader.open(f"{prefix}.index").items())[b""])
    return header


def _data_name(prefix: str, shard: int, total: int) -> str:
    return f"{prefix}.data-{shard:05d}-of-{total:05d}"


# -- N writer processes ------------------------------------------------------------------------


def test_part_prefix_naming(tmp_path):
    assert tfckpt.part_prefix("/d/ckpt", 3, 12) == os.path.join(
        "/d/ckpt_temp", "part-00003-of-00012"
    )
    assert tfckpt.part_prefix(tmp_path / "m", 0, 1) == str(
        tmp_path / "m_temp" / "part-00000-of-00001"
    )
    for shard, total in ((4, 4), (-1, 4), (0, 0)):
        with pytest.raises(InvalidArgumentError):
            tfckpt.part_prefix("/d/ckpt", shard, total)


def test_parallel_writers_then_merge_parts(tmp_path):
    prefix = str(tmp_path / "ckpt")
    parts = write_parts_in_processes(prefix)
    temp_dir = tmp_path / "ckpt_temp"
    assert sorted(os.listdir(temp_dir)) == sorted(
        f"part-{i:05d}-of-{N:05d}{suffix}"
        for i in range(N)
        for suffix in (".index", ".data-00000-of-00001")
    )
    inodes = [os.stat(_data_name(part, 0, 1)).st_ino for part in parts]
    sizes = [os.path.getsize(_data_name(part, 0, 1)) for part in parts]

    assert tfckpt.merge_parts(prefix, N) == prefix

    # One index and N data files, named for the merged prefix; the temp directory is gone.
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["ckpt.index"] + [f"ckpt.data-{i:05d}-of-{N:05d}" for i in range(N)]
    )
    assert not temp_dir.exists()
    header = _header(prefix)
    assert header.num_shards == N
    assert header.endianness == tensor_bundle_pb2.BundleHeaderProto.LITTLE
    assert header.version.producer == 1
    # Data files were renamed, not copied: writer i's file is shard i (order of first use).
    for i in range(N):
        merged = _data_name(prefix, i, N)
        assert os.stat(merged).st_ino == inodes[i], f"shard {i} is not writer {i}'s file"
        assert os.path.getsize(merged) == sizes[i]

    expected = expected_values()
    with tfckpt.load_checkpoint(prefix) as reader:
        assert sorted(reader.keys()) == sorted(expected)
        for name, want in expected.items():
            same(reader.get_tensor(name), want, name)
            same(reader.get_tensor(name, copy=False), want, name)
        # Slices from the four writers, in merge (writer) order.
        assert reader.get_tensor_slices("shared/emb") == [
            TensorSlice.from_extents(emb_extents(i)) for i in range(N)
        ]
        assert len(reader.get_tensor_slices("shared/grid")) == 5
        assert len(reader.get_tensor_slices("shared/vocab")) == N
        # Partial reads across the writers' slices.
        emb, grid = expected["shared/emb"], expected["shared/grid"]
        same(reader.get_slice("shared/emb")[1:7:2, ::-1], emb[1:7:2, ::-1])
        same(reader.get_slice("shared/grid")[1:5, 2:9], grid[1:5, 2:9])
        same(reader.get_slice("shared/grid")[-1], grid[-1])
        assert (
            reader.get_slice("shared/vocab")[3:6].tolist() == expected["shared/vocab"][3:6].tolist()
        )

    # Each writer's own tensors point at its data file.
    from tfckpt.bundle.reader import BundleReader

    with BundleReader(prefix) as bundle:
        for i in range(N):
            assert bundle.entry(f"part{i}/kernel").shard_id == i
            assert bundle.entry(f"part{i}/step").shard_id == i


# -- merge_bundles, the general form -------------------------------------------------------------


def _bundle(prefix, tensors=None, slices=(), big_endian=False) -> str:
    with tfckpt.BundleWriter(prefix, big_endian=big_endian) as writer:
        for name, value in (tensors or {}).items():
            writer.add(name, value)
        for name, full_shape, extents, value in slices:
            writer.add_slice(name, full_shape, extents, value)
    return str(prefix)


def _files(directory) -> list[str]:
    return sorted(os.listdir(directory))


def test_merge_bundles_from_anywhere(tmp_path):
    a = _bundle(tmp_path / "a" / "x", {"a/w": np.arange(3, dtype=np.int16)})
    b = _bundle(tmp_path / "b" / "y", {"b/w": np.float64(2.5), "b/s": _obj([b"q"])})
    a_data = os.stat(_data_name(a, 0, 1)).st_ino
    merged = str(tmp_path / "out" / "deeper" / "merged")
    assert tfckpt.merge_bundles([a, b], merged) == merged
    assert _files(tmp_path / "out" / "deeper") == [
        "merged.data-00000-of-00002",
        "merged.data-00001-of-00002",
        "merged.index",
    ]
    assert os.stat(_data_name(merged, 0, 2)).st_ino == a_data
    # The inputs' indexes are deleted and their data files moved away.
    assert _files(tmp_path / "a") == [] and _files(tmp_path / "b") == []
    with tfckpt.load_checkpoint(merged) as reader:
        same(reader.get_tensor("a/w"), np.arange(3, dtype=np.int16))
        same(reader.get_tensor("b/w"), np.array(2.5))
        assert reader.get_tensor("b/s").tolist() == [b"q"]


def test_merging_an_already_merged_checkpoint(tmp_path):
    # A bundle with several data shards merges too: each shard file keeps its entries.
    a = _bundle(tmp_path / "a", {"a": np.arange(4, dtype=np.int32)})
    b = _bundle(
        tmp_path / "b",
        {"b": np.arange(5, dtype=np.int64)},
        [("p", (4,), [(0, 2)], np.ones(2, np.float32))],
    )
    two = tfckpt.merge_bundles([a, b], tmp_path / "two")
    c = _bundle(
        tmp_path / "c", {"c": np.float32(7)}, [("p", (4,), [(2, 2)], np.zeros(2, np.float32))]
    )
    three = tfckpt.merge_bundles([two, c], tmp_path / "three")
    assert _header(three).num_shards == 3
    assert sorted(f for f in _files(tmp_path) if f.startswith("three")) == [
        "three.data-00000-of-00003",
        "three.data-00001-of-00003",
        "three.data-00002-of-00003",
        "three.index",
    ]
    with tfckpt.load_checkpoint(three) as reader:
        same(reader.get_tensor("a"), np.arange(4, dtype=np.int32))
        same(reader.get_tensor("b"), np.arange(5, dtype=np.int64))
        same(reader.get_tensor("c"), np.array(7, np.float32))
        same(reader.get_tensor("p"), np.array([1, 1, 0, 0], np.float32))


def test_merge_keeps_big_endian(tmp_path):
    parts = [tfckpt.part_prefix(tmp_path / "ckpt", i, 2) for i in range(2)]
    _bundle(parts[0], {"x": np.arange(3, dtype=np.float32)}, big_endian=True)
    _bundle(
        parts[1],
        slices=[("p", (2, 2), [(1, 1), None], np.array([[3, 4]], np.int32))],
        big_endian=True,
    )
    _bundle(
        parts[1] + "_other",
        slices=[("p", (2, 2), [(0, 1), None], np.array([[1, 2]], np.int32))],
        big_endian=True,
    )
    merged = tfckpt.merge_bundles([*parts, parts[1] + "_other"], tmp_path / "ckpt")
    assert _header(merged).endianness == tensor_bundle_pb2.BundleHeaderProto.BIG
    with tfckpt.load_checkpoint(merged) as reader:
        same(reader.get_tensor("x"), np.arange(3, dtype=np.float32))
        same(reader.get_tensor("p"), np.array([[1, 2], [3, 4]], np.int32))


# -- errors ---------------------------------------------------------------------------------------


def _two_parts(tmp_path, first: dict, second: dict) -> tuple[str, list[str]]:
    prefix = str(tmp_path / "ckpt")
    parts = [tfckpt.part_prefix(prefix, i, 2) for i in range(2)]
    for part, spec in zip(parts, (first, second)):
        _bundle(part, spec.get("tensors"), spec.get("slices", ()), spec.get("big_endian", False))
    return prefix, parts


def _assert_untouched(tmp_path, parts) -> None:
    """A failed merge leaves the parts as they were and creates no merged file."""
    for part in parts:
        assert os.path.exists(f"{part}.index"), part
        assert os.path.exists(_data_name(part, 0, 1)), part
    assert _files(tmp_path) == ["ckpt_temp"]


def test_duplicate_tensor_is_invalid_argument(tmp_path):
    prefix, parts = _two_parts(
        tmp_path,
        {"tensors": {"dup/w": np.zeros(2), "a": np.ones(1)}},
        {"tensors": {"dup/w": np.zeros(2), "b": np.ones(1)}},
    )
    with pytest.raises(InvalidArgumentError) as info:
        tfckpt.merge_parts(prefix, 2)
    message = str(info.value)
    assert "'dup/w'" in message and parts[1] in message
    assert info.value.tensor == "dup/w"
    _assert_untouched(tmp_path, parts)


@pytest.mark.parametrize("slice_first", [True, False])
def test_whole_tensor_and_slice_of_it_is_invalid_argument(tmp_path, slice_first):
    whole = {"tensors": {"t": np.zeros((2, 2), np.float32)}}
    part = {"slices": [("t", (2, 2), [(0, 1), None], np.zeros((1, 2), np.float32))]}
    prefix, parts = _two_parts(tmp_path, *((part, whole) if slice_first else (whole, part)))
    with pytest.raises(InvalidArgumentError) as info:
        tfckpt.merge_parts(prefix, 2)
    assert "'t'" in str(info.value) and info.value.tensor == "t"
    _assert_untouched(tmp_path, parts)


def test_same_slice_from_two_writers_is_invalid_argument(tmp_path):
    spec = {"slices": [("t", (4,), [(0, 2)], np.zeros(2, np.float32))]}
    prefix, parts = _two_parts(tmp_path, spec, spec)
    with pytest.raises(InvalidArgumentError) as info:
        tfckpt.merge_parts(prefix, 2)
    assert parts[1] in str(info.value)
    _assert_untouched(tmp_path, parts)


@pytest.mark.parametrize(
    "other",
    [
        ("p", (4, 2), [(2, 2), None], np.zeros((2, 2), np.int32)),  # dtype differs
        ("p", (5, 2), [(2, 2), None], np.zeros((2, 2), np.float32)),  # full shape differs
    ],
    ids=["dtype", "shape"],
)
def test_partitioned_tensor_disagreement_is_invalid_argument(tmp_path, other):
    prefix, parts = _two_parts(
        tmp_path,
        {"slices": [("p", (4, 2), [(0, 2), None], np.zeros((2, 2), np.float32))]},
        {"slices": [other]},
    )
    with pytest.raises(InvalidArgumentError) as info:
        tfckpt.merge_parts(prefix, 2)
    assert "'p'" in str(info.value) and info.value.tensor == "p"
    _assert_untouched(tmp_path, parts)


def test_endianness_mismatch_is_invalid_argument(tmp_path):
    prefix, parts = _two_parts(
        tmp_path,
        {"tensors": {"a": np.ones(2, np.float32)}},
        {"tensors": {"b": np.ones(2, np.float32)}, "big_endian": True},
    )
    with pytest.raises(InvalidArgumentError) as info:
        tfckpt.merge_parts(prefix, 2)
    assert "endianness" in str(info.value)
    assert f"{parts[1]}.index" in str(info.value)
    _assert_untouched(tmp_path, parts)


def test_missing_part_is_not_found_unless_allowed(tmp_path):
    prefix = str(tmp_path / "ckpt")
    for shard in (0, 2):
        _bundle(tfckpt.part_prefix(prefix, shard, 3), {f"t{shard}": np.full(2, shard, np.int64)})
    missing = f"{tfckpt.part_prefix(prefix, 1, 3)}.index"
    with pytest.raises(CheckpointNotFoundError) as info:
        tfckpt.merge_parts(prefix, 3)
    assert missing in str(info.value) and info.value.path == missing
    assert "allow_missing_files" in str(info.value)
    assert _files(tmp_path) == ["ckpt_temp"]
    assert len(_files(tmp_path / "ckpt_temp")) == 4

    assert tfckpt.merge_parts(prefix, 3, allow_missing_files=True) == prefix
    assert _files(tmp_path) == [
        "ckpt.data-00000-of-00002",
        "ckpt.data-00001-of-00002",
        "ckpt.index",
    ]
    assert _header(prefix).num_shards == 2
    with tfckpt.load_checkpoint(prefix) as reader:
        assert reader.keys() == ["t0", "t2"]
        same(reader.get_tensor("t0"), np.zeros(2, np.int64))
        same(reader.get_tensor("t2"), np.full(2, 2, np.int64))


@pytest.mark.parametrize("allow_missing_files", [False, True])
def test_no_part_at_all_is_an_error(tmp_path, allow_missing_files):
    prefix = str(tmp_path / "ckpt")
    with pytest.raises(CheckpointNotFoundError) as info:
        tfckpt.merge_parts(prefix, 3, allow_missing_files=allow_missing_files)
    assert "part-00000-of-00003" in str(info.value)
    assert not os.path.exists(f"{prefix}.index")
    with pytest.raises(CheckpointNotFoundError):
        tfckpt.merge_bundles([], tmp_path / "empty", allow_missing_files=allow_missing_files)


def test_missing_data_file_is_not_found(tmp_path):
    prefix, parts = _two_parts(
        tmp_path, {"tensors": {"a": np.ones(2)}}, {"tensors": {"b": np.ones(2)}}
    )
    os.remove(_data_name(parts[1], 0, 1))
    with pytest.raises(CheckpointNotFoundError) as info:
        tfckpt.merge_parts(prefix, 2)
    assert _data_name(parts[1], 0, 1) in str(info.value)
    assert not os.path.exists(f"{prefix}.index")


def test_corrupt_part_index_is_a_checkpoint_error(tmp_path):
    prefix, parts = _two_parts(
        tmp_path, {"tensors": {"a": np.ones(2)}}, {"tensors": {"b": np.ones(2)}}
    )
    with open(f"{parts[1]}.index", "r+b") as f:
        f.seek(3)
        f.write(b"\xff\xff")
    with pytest.raises(CheckpointError) as info:
        tfckpt.merge_parts(prefix, 2)
    assert parts[1] in str(info.value)
    assert not os.path.exists(f"{prefix}.index")
