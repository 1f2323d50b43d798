"""Sharded saving against real TensorFlow 2.21.

* tfckpt's ``max_shard_size`` layout is TensorFlow's: ``tf.train.Checkpoint.write`` with
  ``MaxShardSizePolicy`` and tfckpt's save of the same tensors in the same order (TF's own
  object graph bytes included) give byte-identical index and data files, for several
  limits, a tensor many times larger than the limit, strings, scalars and mixed dtypes.
* ``tfckpt.Checkpoint`` through ``write_objects`` lays the values out as TF does.
* TensorFlow restores what tfckpt writes with ``max_shard_size`` and ``num_shards``
  (``tf.train.Checkpoint.read`` and ``tf.train.load_checkpoint``), values equal.
* tfckpt reads TF's sharded checkpoints, string slices included (TF itself cannot).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import tfckpt
from tfckpt.objects.checkpoint import write_objects

from ._util import assert_identical_files, checkpoint_files

GRAPH = "_CHECKPOINTABLE_OBJECT_GRAPH"


def _key(name: str) -> str:
    return f"{name}/.ATTRIBUTES/VARIABLE_VALUE"


def _mixed() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(21)
    return {
        "dense": rng.standard_normal((60, 25)).astype(np.float32),
        "cube": np.arange(3 * 4 * 90, dtype=np.float64).reshape(3, 4, 90) - 7,
        "ids": np.arange(900, dtype=np.int64) * 5,
        "mask": np.arange(130) % 4 == 1,
        "half": np.arange(200, dtype=np.float16).reshape(20, 10),
        "small": np.array([1.0, 2.0, 3.0], np.float32),
        "step": np.array(12, np.int64),
        "c64": (np.arange(40) * (1 - 1j)).astype(np.complex64).reshape(5, 8),
        "vocab": np.array([b"tok-%03d" % i * (i % 3 + 1) for i in range(300)], object),
        "blob": np.array(b"\x00\xffblob" * 400, object),  # a string scalar > some limits
        "i8": np.arange(-100, 100, dtype=np.int8).reshape(2, 100),
    }


def _tf_write(tf, prefix, values, limit):
    variables = {name: tf.Variable(value, name=name) for name, value in values.items()}
    options = tf.train.CheckpointOptions(
        experimental_sharding_callback=tf.train.experimental.MaxShardSizePolicy(
            max_shard_size=limit
        )
    )
    return tf.train.Checkpoint(**variables).write(prefix, options=options)


CASES = {
    "mixed": _mixed,
    "one_huge_tensor": lambda: {
        "huge": np.arange(50 * 64, dtype=np.float32).reshape(50, 64),
        "after": np.ones(7, np.int32),
    },
    "strings_and_scalars": lambda: {
        "a": np.array(3.5, np.float64),
        "words": np.array([b"w" * (i % 11) for i in range(700)], object),
        "z": np.array(b"zz", object),
        "ys": np.array([b"\xff" * 40, b"", b"y"], object),
    },
}


@pytest.mark.parametrize("limit", [512, 1000, 4096, 30000, 1 << 24])
@pytest.mark.parametrize("case", sorted(CASES))
def test_max_shard_size_files_are_tensorflows(tf, tmp_path, case, limit):
    """Same tensors, same order (TF saves a tf.train.Checkpoint's children sorted by name,
    then its object graph): every file byte-identical to TensorFlow's."""
    values = CASES[case]()
    theirs = _tf_write(tf, str(tmp_path / "tf" / "ckpt"), values, limit)
    graph = tfckpt.load_checkpoint(theirs).get_tensor(GRAPH)
    tensors = {_key(name): values[name] for name in sorted(values)}
    tensors[GRAPH] = graph
    ours = tfckpt.save_tensors(str(tmp_path / "ours" / "ckpt"), tensors, max_shard_size=limit)
    assert_identical_files(ours, theirs)
    if limit <= 1000:
        assert len(checkpoint_files(theirs)) > 3  # the case is really sharded


@pytest.mark.parametrize("limit", [700, 5000])
def test_write_objects_lays_out_values_as_tensorflow(tf, tmp_path, limit):
    """write_objects(tfckpt.Checkpoint(...), max_shard_size=...) puts every value (and
    slice) at TF's shard and offset; its object graph is tfckpt's own (as unsharded)."""
    values = _mixed()
    theirs = _tf_write(tf, str(tmp_path / "tf" / "ckpt"), values, limit)
    ours = write_objects(tfckpt.Checkpoint(**values), str(tmp_path / "ours" / "ckpt"),
                         max_shard_size=limit)  # fmt: skip
    assert [f[len("ckpt") :] for f in checkpoint_files(ours)] == [
        f[len("ckpt") :] for f in checkpoint_files(theirs)
    ]
    a, b = tfckpt.load_checkpoint(ours), tfckpt.load_checkpoint(theirs)
    for name in values:
        assert a.get_tensor_slices(_key(name)) == b.get_tensor_slices(_key(name)), name
    for suffix in [f[len("ckpt") :] for f in checkpoint_files(theirs)][:-2]:
        with open(ours + suffix, "rb") as x, open(theirs + suffix, "rb") as y:
            assert x.read() == y.read(), suffix  # every shard but the graph's


def _numeric(values):
    return {k: v for k, v in values.items() if v.dtype != object}


@pytest.mark.parametrize(
    "options",
    [{"max_shard_size": 600}, {"max_shard_size": 5000}, {"num_shards": 3}, {"num_shards": 7}],
    ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()),
)
def test_tensorflow_restores_tfckpt_sharded_layouts(tf, tmp_path, options):
    """tf.train.Checkpoint.read and tf.train.load_checkpoint read tfckpt's sharded files.
    TF's reader cannot assemble string or float16 tensors cut into slices (BundleReader::
    GetSliceValue has no case for them; its own MaxShardSizePolicy files, identical to
    these, are unreadable the same way), so with max_shard_size strings appear only as a
    scalar, which is never cut, and float16 not at all; num_shards keeps tensors whole."""
    values = _mixed()
    if "max_shard_size" in options:
        values = {k: v for k, v in _numeric(values).items() if k != "half"}
        values["blob"] = _mixed()["blob"]
    prefix = write_objects(tfckpt.Checkpoint(**values), str(tmp_path / "ckpt"), **options)
    reader = tf.train.load_checkpoint(prefix)
    for name, value in values.items():
        got = reader.get_tensor(_key(name))
        if value.dtype == object:
            assert np.asarray(got, object).tolist() == value.tolist(), name
        else:
            assert got.dtype == value.dtype and got.tobytes() == value.tobytes(), name
    fresh = {
        name: tf.Variable(np.full(value.shape, b"", object) if value.dtype == object else
                          np.zeros_like(value))
        for name, value in values.items()
    }  # fmt: skip
    tf.train.Checkpoint(**fresh).read(prefix).assert_consumed()
    for name, value in values.items():
        got = fresh[name].numpy()
        if value.dtype == object:
            assert np.asarray(got, object).tolist() == value.tolist(), name
        else:
            assert got.tobytes() == value.tobytes(), name


def test_tfckpt_reads_tensorflow_sharded_checkpoints(tf, tmp_path):
    """Every value of TF's sharded layout reads back equal, string slices included."""
    values = _mixed()
    theirs = _tf_write(tf, str(tmp_path / "ckpt"), values, 800)
    reader = tfckpt.load_checkpoint(theirs)
    assert len(reader.get_tensor_slices(_key("vocab"))) > 1
    for name, value in values.items():
        got = reader.get_tensor(_key(name))
        if value.dtype == object:
            assert np.asarray(got, object).tolist() == np.asarray(value).tolist(), name
        else:
            assert np.asarray(got).tobytes() == value.tobytes(), name
    assert os.path.exists(theirs + ".index")
