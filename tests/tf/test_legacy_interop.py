"""Interoperability with real TensorFlow: legacy V1 checkpoints, merged multi-writer
checkpoints, MaxShardSizePolicy checkpoints and big-endian bundles.

* TensorFlow's ``tf.compat.v1.train.Saver(write_version=SaverDef.V1)`` writes V1
  checkpoints (also sharded over two logical CPUs, set up in a subprocess because logical
  devices must be configured before TensorFlow initializes); tfckpt reads what RestoreV2 /
  ``Saver.restore`` give.
* tfckpt's N-process multi-writer checkpoint (tests/test_merge.py) is read by
  ``tf.train.load_checkpoint`` and restored by ``Saver`` into partitioned variables whose
  slices came from different writers; tfckpt's merge equals ``MergeV2Checkpoints`` byte for
  byte.
* A ``MaxShardSizePolicy`` checkpoint written by TensorFlow reads the same through tfckpt's
  ``get_tensor`` and ``get_slice``.
* TensorFlow (on this little-endian host) reads tfckpt's big-endian bundles.

TensorFlow comes only from the ``tf`` fixture (or runs in a subprocess).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import tfckpt
from tests.bundle.test_big_endian import NUMERIC, STRINGS, _expected_values
from tests.bundle.test_merge import (
    GRID_SHAPE,
    N,
    expected_values,
    write_part,
    write_parts_in_processes,
)
from tests.bundle.test_partial_reads import same
from tests.conftest import REPO
from tests.legacy.test_v1_reader import DT, KINDS, build_sharded_v1, expected_v1


def _restore_v2(tf, prefix: str, name: str, dtype, spec: str = ""):
    """RestoreV2's value of ``name`` as an ndarray (0-d for scalars; object for strings)."""
    value = tf.raw_ops.RestoreV2(
        prefix=prefix, tensor_names=[name], shape_and_slices=[spec], dtypes=[tf.as_dtype(dtype)]
    )[0].numpy()
    if isinstance(value, bytes):
        out = np.empty((), object)
        out[()] = value
        return out
    return np.asarray(value)


def _slice_init(tf, full: np.ndarray):
    """A get_variable initializer giving each partition its slice of ``full``."""

    def init(shape, dtype=None, partition_info=None):
        offset = partition_info.var_offset if partition_info is not None else [0] * len(shape)
        part = full[tuple(slice(o, o + n) for o, n in zip(offset, shape))]
        return tf.constant(part, dtype=dtype)

    return init


# -- V1 written by TensorFlow's Saver -------------------------------------------------------------


def v1_values() -> dict[str, np.ndarray]:
    return {
        "float32": np.array([0.0, -0.0, 1.5, np.inf, -np.inf, np.nan, 1e-45], np.float32),
        "float64": np.array([[1.0, -2.5], [np.pi, 5e-324]]),
        "int32": np.array([-(2**31), -1, 0, 2**31 - 1], np.int32),
        "int64": np.array([-(2**63), 0, 2**63 - 1], np.int64),
        "bool": np.array([True, False, True]),
        "string": np.array([b"", b"v1 \x00 bytes", "ü".encode(), b"tail\x00"], dtype=object),
        "float16": np.array([1.0, -0.0, 65504.0, np.inf, 6e-8], np.float16),
        "complex64": np.array([1 + 2j, -0.5 - 0.25j], np.complex64),
        "complex128": np.array([3 - 4j], np.complex128),
        "int8": np.array([-128, 0, 127], np.int8),
        "uint8": np.array([0, 128, 255], np.uint8),
        "int16": np.array([-32768, 0, 32767], np.int16),
        "uint16": np.array([0, 1, 65535], np.uint16),
        "scalar": np.array(-7.25, np.float64),
        "matrix": np.arange(12, dtype=np.int64).reshape(3, 4) - 6,
    }


V1_PART = np.arange(28, dtype=np.float32).reshape(7, 4) * 0.5 - 3  # 3 parts: 3, 2, 2 rows
V1_PART_STR = np.array([b"p%d" % i for i in range(5)], dtype=object)


@pytest.fixture(scope="module")
def tf_v1_checkpoint(tf, tmp_path_factory):
    directory = tmp_path_factory.mktemp("tf_v1")
    graph = tf.Graph()
    with graph.as_default():
        for name, value in v1_values().items():
            tf.compat.v1.get_variable(name, initializer=tf.constant(value))
        tf.compat.v1.get_variable("string_scalar", initializer=tf.constant(b"only\x00one"))
        fsp = tf.compat.v1.fixed_size_partitioner
        tf.compat.v1.get_variable(
            "part", V1_PART.shape, tf.float32, _slice_init(tf, V1_PART), partitioner=fsp(3)
        )
        tf.compat.v1.get_variable(
            "part_str",
            V1_PART_STR.shape,
            tf.string,
            _slice_init(tf, V1_PART_STR),
            partitioner=fsp(2),
        )
        saver = tf.compat.v1.train.Saver(write_version=tf.compat.v1.train.SaverDef.V1)
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            path = saver.save(sess, str(directory / "model.ckpt"), write_meta_graph=False)
    assert path == str(directory / "model.ckpt")
    assert not os.path.exists(path + ".index")  # V1: one SSTable file
    return path


def test_tf_v1_values(tf, tf_v1_checkpoint):
    path = tf_v1_checkpoint
    with tfckpt.load_checkpoint(path) as reader:
        assert reader.format == "v1"
        assert sorted(reader.keys()) == sorted([*v1_values(), "string_scalar", "part", "part_str"])
        tf_reader = tf.train.load_checkpoint(path)
        assert reader.get_variable_to_shape_map() == tf_reader.get_variable_to_shape_map()
        tf_dtypes = tf_reader.get_variable_to_dtype_map()
        for name, dtype in reader.get_variable_to_dtype_map().items():
            assert dtype == tf_dtypes[name] and dtype.name == tf_dtypes[name].name
        for name, want in v1_values().items():
            got = reader.get_tensor(name)
            restored = _restore_v2(tf, path, name, tf_dtypes[name])
            if want.dtype == object:
                assert got.tolist() == want.tolist() == restored.tolist(), name
                continue
            same(got, want[()] if want.ndim == 0 else want, name)
            same(np.asarray(got), restored, f"{name} vs RestoreV2")
            if want.ndim:
                same(reader.get_slice(name)[::-1], want[::-1], f"{name}[::-1]")


def test_tf_v1_string_scalar(tf, tf_v1_checkpoint):
    tf_value = tf.train.load_checkpoint(tf_v1_checkpoint).get_tensor("string_scalar")
    assert tf_value == b"only\x00one"
    with tfckpt.load_checkpoint(tf_v1_checkpoint) as reader:
        got = reader.get_tensor("string_scalar")
        assert type(got) is bytes and got == tf_value, repr(got)


def test_tf_v1_partitioned_variables(tf, tf_v1_checkpoint):
    path = tf_v1_checkpoint
    with tfckpt.load_checkpoint(path) as reader:
        same(reader.get_tensor("part"), V1_PART)
        same(reader.get_tensor("part"), _restore_v2(tf, path, "part", tf.float32))
        assert len(reader.get_tensor_slices("part")) == 3
        same(reader.get_slice("part")[2:5, ::-1], V1_PART[2:5, ::-1])
        assert reader.get_tensor("part_str").tolist() == V1_PART_STR.tolist()
        assert _restore_v2(tf, path, "part_str", tf.string).tolist() == V1_PART_STR.tolist()
    # TensorFlow's own reader refuses V1 slices; its Saver restores them.
    with pytest.raises(tf.errors.UnimplementedError, match="Sliced checkpoints are not supported"):
        tf.train.load_checkpoint(path).get_tensor("part")
    graph = tf.Graph()
    with graph.as_default():
        # A different partitioning than the one saved: TF reads across the stored slices.
        part = tf.compat.v1.get_variable(
            "part",
            V1_PART.shape,
            tf.float32,
            tf.compat.v1.zeros_initializer(),
            partitioner=tf.compat.v1.fixed_size_partitioner(2),
        )
        saver = tf.compat.v1.train.Saver([part])
        with tf.compat.v1.Session(graph=graph) as sess:
            saver.restore(sess, path)
            restored = sess.run(part.as_tensor())
    with tfckpt.load_checkpoint(path) as reader:
        same(reader.get_tensor("part"), restored)


SHARDED_V1_SCRIPT = r"""
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import tensorflow as tf
from tests.tf.test_legacy_interop import sharded_v1_values, SHARDED_TABLE

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
os.chdir(sys.argv[1])


def device(op):
    return "/cpu:1" if ("/part_1" in op.name or "dev1_" in op.name) else "/cpu:0"


def init(shape, dtype=None, partition_info=None):
    offset = partition_info.var_offset
    part = SHARDED_TABLE[tuple(slice(o, o + n) for o, n in zip(offset, shape))]
    return tf.constant(part, dtype=dtype)


graph = tf.Graph()
with graph.as_default():
    with graph.device(device):
        for name, value in sharded_v1_values().items():
            tf.compat.v1.get_variable(name, initializer=tf.constant(value))
        tf.compat.v1.get_variable(
            "table", SHARDED_TABLE.shape, tf.int32, init,
            partitioner=tf.compat.v1.fixed_size_partitioner(2),
        )
    saver = tf.compat.v1.train.Saver(sharded=True, write_version=tf.compat.v1.train.SaverDef.V1)
    config = tf.compat.v1.ConfigProto(device_count={"CPU": 2})
    with tf.compat.v1.Session(graph=graph, config=config) as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        print(saver.save(sess, "model.ckpt", write_meta_graph=False))
"""

SHARDED_TABLE = np.arange(18, dtype=np.int32).reshape(9, 2) * -3  # parts: rows 0-4, 5-8


def sharded_v1_values() -> dict[str, np.ndarray]:
    return {
        "weights": np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5,
        "step": np.array(77, np.int64),
        "dev1_labels": np.array([b"cat", b"dog\x00"], dtype=object),
        "dev1_mask": np.array([False, True, True]),
        "dev1_half": np.array([0.5, -65504.0], np.float16),
    }


@pytest.fixture(scope="module")
def tf_sharded_v1(tf, tmp_path_factory):
    directory = tmp_path_factory.mktemp("tf_v1_sharded")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO)])
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    proc = subprocess.run(
        [sys.executable, "-c", SHARDED_V1_SCRIPT, str(directory)],
        cwd=str(REPO),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    pattern = proc.stdout.strip().splitlines()[-1]
    assert pattern == "model.ckpt-?????-of-00002", pattern
    assert sorted(os.listdir(directory)) == [
        "checkpoint",
        "model.ckpt-00000-of-00002",
        "model.ckpt-00001-of-00002",
    ]
    return directory


def test_tf_sharded_v1(tf, tf_sharded_v1):
    directory = tf_sharded_v1
    pattern = str(directory / "model.ckpt-?????-of-00002")
    expected = {**sharded_v1_values(), "table": SHARDED_TABLE}
    tf_reader = tf.train.load_checkpoint(pattern)
    tf_dtypes = tf_reader.get_variable_to_dtype_map()
    for path in (pattern, str(directory / "model.ckpt"), str(directory)):
        with tfckpt.load_checkpoint(path) as reader:
            assert reader.format == "v1", path
            assert reader.get_variable_to_shape_map() == tf_reader.get_variable_to_shape_map()
            for name, want in expected.items():
                got = reader.get_tensor(name)
                restored = _restore_v2(tf, pattern, name, tf_dtypes[name])
                if want.dtype == object:
                    assert got.tolist() == want.tolist() == restored.tolist(), name
                else:
                    same(np.asarray(got), want, name)
                    same(np.asarray(got), restored, f"{name} vs RestoreV2")
            # The partitioned table's two slices live in different files.
            assert len(reader.get_tensor_slices("table")) == 2
            same(reader.get_slice("table")[3:7], SHARDED_TABLE[3:7])


def test_tf_sharded_v1_single_file(tf, tf_sharded_v1):
    for k in range(2):
        path = str(tf_sharded_v1 / f"model.ckpt-{k:05d}-of-00002")
        tf_reader = tf.train.load_checkpoint(path)
        with tfckpt.load_checkpoint(path) as reader:
            assert reader.get_variable_to_shape_map() == tf_reader.get_variable_to_shape_map()
            tf_dtypes = tf_reader.get_variable_to_dtype_map()
            for name in reader:
                if name == "table":  # only one of its slices is in this file
                    with pytest.raises(tfckpt.DataLossError):
                        reader.get_tensor(name)
                    continue
                # (TF's own reader refuses V1 float16; RestoreV2 reads it.)
                want = _restore_v2(tf, path, name, tf_dtypes[name])
                got = np.asarray(reader.get_tensor(name))
                if want.dtype == object:
                    assert got.tolist() == want.tolist(), name
                else:
                    same(got, want, name)


def test_hand_built_v1_equals_restore_v2(tf, tmp_path):
    """tests/test_legacy_v1.py's hand-built files are what TensorFlow's V1 reader expects."""
    prefix = build_sharded_v1(tmp_path / "v1")
    pattern = prefix + "-?????-of-00002"
    with tfckpt.load_checkpoint(pattern) as reader:
        for name, (dtype, want) in expected_v1().items():
            # (TensorFlow cannot save uint32/uint64 in V1, but it reads them.)
            restored = _restore_v2(tf, pattern, name, dtype)
            if want.dtype == object:
                assert restored.tolist() == want.tolist() == reader.get_tensor(name).tolist()
            else:
                if dtype in ("qint8", "quint8", "qint32"):
                    restored = restored.view(want.dtype)
                same(np.asarray(restored), want, f"RestoreV2 {name}")
                same(np.asarray(reader.get_tensor(name)), want, f"tfckpt {name}")
    assert set(KINDS) <= set(expected_v1()) and DT["float32"] == 1


# -- the N-process multi-writer checkpoint ---------------------------------------------------------


@pytest.fixture(scope="module")
def merged(tmp_path_factory):
    prefix = str(tmp_path_factory.mktemp("merged") / "ckpt")
    write_parts_in_processes(prefix)
    tfckpt.merge_parts(prefix, N)
    return prefix


def test_tf_reads_the_merged_checkpoint(tf, merged):
    expected = expected_values()
    tf_reader = tf.train.load_checkpoint(merged)
    assert tf_reader.get_variable_to_shape_map() == {k: list(v.shape) for k, v in expected.items()}
    for name, want in expected.items():
        if name == "shared/vocab":
            # TensorFlow's reader cannot assemble string slices (FORMAT-NOTES).
            with pytest.raises(Exception, match="Dtype string not supported"):
                tf_reader.get_tensor(name)
            continue
        got = tf_reader.get_tensor(name)
        if want.dtype == object:
            assert (got.tolist() if want.ndim else got) == (
                want.tolist() if want.ndim else want[()]
            )
        else:
            same(np.asarray(got), want, name)


def test_saver_restores_partitioned_variables_from_several_writers(tf, merged):
    expected = expected_values()
    graph = tf.Graph()
    with graph.as_default():
        fsp = tf.compat.v1.fixed_size_partitioner
        # As saved: one part per writer.
        emb = tf.compat.v1.get_variable(
            "shared/emb",
            [2 * N, 3],
            tf.float32,
            tf.compat.v1.zeros_initializer(),
            partitioner=fsp(N),
        )
        # Partitioned differently from the irregular blocks the writers stored.
        grid = tf.compat.v1.get_variable(
            "shared/grid",
            list(GRID_SHAPE),
            tf.int32,
            tf.compat.v1.zeros_initializer(),
            partitioner=fsp(3),
        )
        kernel = tf.compat.v1.get_variable(
            "part1/kernel",
            expected["part1/kernel"].shape,
            tf.float32,
            tf.compat.v1.zeros_initializer(),
        )
        saver = tf.compat.v1.train.Saver([emb, grid, kernel])
        with tf.compat.v1.Session(graph=graph) as sess:
            saver.restore(sess, merged)
            emb_parts = sess.run(list(emb))
            emb_value, grid_value, kernel_value = sess.run(
                [emb.as_tensor(), grid.as_tensor(), kernel]
            )
    same(emb_value, expected["shared/emb"])
    for i, part in enumerate(emb_parts):  # part i came from writer i
        same(part, expected["shared/emb"][2 * i : 2 * i + 2])
    same(grid_value, expected["shared/grid"])
    same(kernel_value, expected["part1/kernel"])


@pytest.mark.parametrize("empty_writer", [False, True], ids=["all_write", "one_writes_nothing"])
def test_merge_is_byte_identical_to_merge_v2_checkpoints(tf, tmp_path, empty_writer):
    results = {}
    for who in ("tf", "tfckpt"):
        prefix = str(tmp_path / who / "ckpt")
        parts = [write_part(prefix, shard) for shard in range(N)]
        if empty_writer:
            empty = tfckpt.part_prefix(prefix, N, N + 1)
            with tfckpt.BundleWriter(empty):
                pass
            parts.append(empty)
        if who == "tf":
            tf.raw_ops.MergeV2Checkpoints(checkpoint_prefixes=parts, destination_prefix=prefix)
        else:
            tfckpt.merge_bundles(parts, prefix)
        names = sorted(f for f in os.listdir(tmp_path / who) if f.startswith("ckpt."))
        contents = {}
        for f in names:
            with open(tmp_path / who / f, "rb") as fh:
                contents[f] = fh.read()
        results[who] = contents
    assert list(results["tfckpt"]) == list(results["tf"])
    for f in results["tf"]:
        assert results["tfckpt"][f] == results["tf"][f], f


# -- MaxShardSizePolicy ----------------------------------------------------------------------------


def test_max_shard_size_checkpoint(tf, tmp_path):
    big = np.arange(6400, dtype=np.float32).reshape(64, 100) / 16
    big3 = np.arange(3000, dtype=np.float64).reshape(2, 3, 500) - 1500
    counts = np.arange(1000, dtype=np.int64) * 3
    words = np.array([b"word-%04d" % i for i in range(600)], dtype=object)
    module = tf.Module()
    module.big = tf.Variable(big)
    module.big3 = tf.Variable(big3)
    module.counts = tf.Variable(counts)
    module.small = tf.Variable([1.0, 2.0, 3.0])
    module.words = tf.Variable(words)
    ckpt = tf.train.Checkpoint(model=module)
    options = tf.train.CheckpointOptions(
        experimental_sharding_callback=tf.train.experimental.MaxShardSizePolicy(
            max_shard_size=10000
        )
    )
    prefix = ckpt.write(str(tmp_path / "ckpt"), options=options)
    data_files = [f for f in os.listdir(tmp_path) if ".data-" in f]
    assert len(data_files) >= 5

    key = "model/{}/.ATTRIBUTES/VARIABLE_VALUE".format
    originals = {"big": big, "big3": big3, "counts": counts}
    tf_reader = tf.train.load_checkpoint(prefix)
    rng = np.random.default_rng(0)
    with tfckpt.load_checkpoint(prefix) as reader:
        assert sorted(reader.keys()) == sorted(tf_reader.get_variable_to_shape_map())
        for name, original in originals.items():
            want = tf_reader.get_tensor(key(name))
            same(want, original, f"TF {name}")
            same(reader.get_tensor(key(name)), want, name)
            slices = reader.get_tensor_slices(key(name))
            assert len(slices) >= 2, f"{name} was not split"
            view = reader.get_slice(key(name))
            for _ in range(30):
                index = tuple(
                    slice(*sorted(rng.integers(0, d + 1, 2)), int(rng.choice([1, 2, 3, -1, -2])))
                    if rng.random() < 0.8
                    else int(rng.integers(-d, d))
                    for d in want.shape
                )
                same(np.asarray(view[index]), np.asarray(want[index]), f"{name}[{index}]")
        # String slices: tfckpt assembles them, TensorFlow's reader cannot.
        assert reader.get_tensor(key("words")).tolist() == words.tolist()
        assert reader.get_slice(key("words"))[590:].tolist() == words[590:].tolist()
        with pytest.raises(Exception, match="Dtype string not supported"):
            tf_reader.get_tensor(key("words"))
        same(reader.get_tensor(key("small")), np.array([1.0, 2.0, 3.0], np.float32))


# -- TensorFlow reads tfckpt's big-endian bundles --------------------------------------------

# byte_swap_tensor.cc ByteSwapBuffer: 1-byte types other than these are "Byte-swapping not
# supported for tensors with dtype N" (Unimplemented), although they need no swap.
NO_SWAP_NEEDED = {"bool", "int8", "uint8", "qint8", "quint8"}
SHAPES = [(), (5,), (2, 3), (0,), (2, 0, 3)]


@pytest.mark.parametrize("dtype", NUMERIC)
def test_tf_reads_big_endian_bundles(tf, tmp_path, dtype):
    prefix = str(tmp_path / "ckpt")
    values = {f"t{shape}": _expected_values(dtype, shape, 3) for shape in SHAPES}
    with tfckpt.BundleWriter(prefix, big_endian=True) as writer:
        for name, value in values.items():
            writer.add(name, value, dtype=dtype)
    tf_reader = tf.train.load_checkpoint(prefix)
    enum = tfckpt.as_dtype(dtype).as_datatype_enum
    swappable = tf.as_dtype(enum).size > 1 or dtype in NO_SWAP_NEEDED
    for name, want in values.items():
        assert tf_reader.get_variable_to_dtype_map()[name].as_datatype_enum == enum
        assert tf_reader.get_variable_to_shape_map()[name] == list(want.shape)
        with tfckpt.load_checkpoint(prefix) as reader:
            same(np.asarray(reader.get_tensor(name)), want, f"tfckpt {name}")
        if swappable:
            got = tf_reader.get_tensor(name)
            same(
                np.asarray(got).view(want.dtype) if dtype.startswith("q") else np.asarray(got),
                want,
                name,
            )
            restored = _restore_v2(tf, prefix, name, enum)
            assert np.asarray(restored).tobytes() == want.tobytes(), f"RestoreV2 {name}"
        else:
            message = f"Byte-swapping not supported for tensors with dtype {enum}"
            with pytest.raises(tf.errors.OpError, match=message):
                tf_reader.get_tensor(name)
            with pytest.raises(tf.errors.UnimplementedError, match=message):
                _restore_v2(tf, prefix, name, enum)


def test_tf_reads_big_endian_strings(tf, tmp_path):
    prefix = str(tmp_path / "ckpt")
    with tfckpt.BundleWriter(prefix, big_endian=True) as writer:
        for name, value in STRINGS.items():
            writer.add(name, value)
    tf_reader = tf.train.load_checkpoint(prefix)
    for name, want in STRINGS.items():
        got = tf_reader.get_tensor(name)
        if want.ndim == 0:
            assert got == want[()]
        else:
            assert got.tolist() == want.tolist(), name
        assert _restore_v2(tf, prefix, name, tf.string).tolist() == want.tolist()


def test_tf_reads_big_endian_slices(tf, tmp_path):
    prefix = str(tmp_path / "ckpt")
    grid = _expected_values("float64", (6, 7), 1)
    cplx = _expected_values("complex64", (4, 3), 2)
    with tfckpt.BundleWriter(prefix, big_endian=True) as writer:
        writer.add_slice("grid", (6, 7), [(0, 4), (0, 3)], grid[:4, :3])
        writer.add_slice("grid", (6, 7), [(0, 4), (3, 4)], grid[:4, 3:])
        writer.add_slice("grid", (6, 7), [(4, 2), None], grid[4:])
        writer.add_slice("cplx", (4, 3), [(0, 1), None], cplx[:1])
        writer.add_slice("cplx", (4, 3), [(1, 3), None], cplx[1:])
    tf_reader = tf.train.load_checkpoint(prefix)
    same(tf_reader.get_tensor("grid"), grid)
    same(tf_reader.get_tensor("cplx"), cplx)
    same(_restore_v2(tf, prefix, "grid", tf.float64, "6 7 1,4:2,4"), grid[1:5, 2:6])
