"""Name-based (TF1) checkpoints restored into objects by name, against real TensorFlow.

* ``tf.compat.v1.train.Saver`` (graph mode; V1 and V2 formats, V2 also sharded) writes
  variables named ``w``, ``model/dense/kernel``, a partitioned ``model/emb`` and others;
  ``tfckpt.Checkpoint(w=..., model={"dense": {"kernel": ...}, ...}).restore`` matches
  them by attribute path and gets the values TensorFlow's session held.
* Parity with ``tf.train.Checkpoint.restore`` of the same checkpoint (TensorFlow's
  ``NameBasedSaverStatus``): the same values, and ``assert_consumed`` failing for the same
  unmatched name in both.
* tfckpt writes a name-based checkpoint (``save_tensors``); TensorFlow's
  ``tf.train.Checkpoint`` restores it by name to the values tfckpt's restore gives.
"""

from __future__ import annotations

import numpy as np
import pytest

import tfckpt
from tfckpt.objects.name_based import NameBasedSaverStatus

KERNEL = np.arange(12, dtype=np.float32).reshape(4, 3) / 7
BIAS = np.array([0.5, -1.5, 2.25])
W = np.array([1.0, -2.0, 3.5], np.float32)
EMB = np.arange(40, dtype=np.float32).reshape(10, 4) - 20
COUNTS = np.array([[1, 2], [3, 4]], np.int32)
NAMES = np.array([b"alpha", b"\x00beta"], object)


def _slice_init(tf, full: np.ndarray):
    """A get_variable initializer giving each partition its slice of ``full``."""

    def init(shape, dtype=None, partition_info=None):
        offset = partition_info.var_offset if partition_info is not None else [0] * len(shape)
        return tf.constant(full[tuple(slice(o, o + n) for o, n in zip(offset, shape))], dtype)

    return init


def _write_tf1(tf, prefix: str, *, version: str, sharded: bool) -> tuple[str, dict]:
    """A TF1 Saver checkpoint; returns its path and the values the session held."""
    graph = tf.Graph()
    with graph.as_default():
        get = tf.compat.v1.get_variable
        get("w", initializer=tf.constant(W))
        get("model/dense/kernel", initializer=tf.constant(KERNEL))
        get("model/dense/bias", initializer=tf.constant(BIAS))
        get("counts", initializer=tf.constant(COUNTS))
        get("global_step", initializer=tf.constant(np.int64(42)))
        get("names", initializer=tf.constant(NAMES))
        emb = get(
            "model/emb",
            EMB.shape,
            tf.float32,
            _slice_init(tf, EMB),
            partitioner=tf.compat.v1.fixed_size_partitioner(3),
        )
        write_version = getattr(tf.compat.v1.train.SaverDef, version)
        saver = tf.compat.v1.train.Saver(write_version=write_version, sharded=sharded)
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            path = saver.save(sess, prefix, write_meta_graph=False)
            held = {v.op.name: sess.run(v) for v in tf.compat.v1.global_variables()}
            held["model/emb"] = sess.run(emb.as_tensor())
    return path, held


@pytest.fixture(
    scope="module",
    params=[("V1", False), ("V2", False), ("V2", True)],
    ids=["v1", "v2", "v2_sharded"],
)
def tf1_checkpoint(request, tf, tmp_path_factory):
    version, sharded = request.param
    directory = tmp_path_factory.mktemp(f"tf1_{version}_{sharded}")
    return _write_tf1(tf, str(directory / "model.ckpt"), version=version, sharded=sharded)


def _targets() -> dict:
    return {
        "w": np.zeros(3, np.float32),
        "counts": np.zeros((2, 2), np.int32),
        "global_step": np.zeros((), np.int64),
        "names": np.full(2, b"", object),
        "model": {
            "dense": {"kernel": np.zeros((4, 3), np.float32), "bias": np.zeros(3)},
            "emb": np.zeros((10, 4), np.float32),
        },
    }


def _flat(targets: dict) -> dict[str, np.ndarray]:
    model = targets["model"]
    return {
        "w": targets["w"],
        "counts": targets["counts"],
        "global_step": targets["global_step"],
        "names": targets["names"],
        "model/dense/kernel": model["dense"]["kernel"],
        "model/dense/bias": model["dense"]["bias"],
        "model/emb": model["emb"],
    }


def _same(got, want, what) -> None:
    got, want = np.asarray(got), np.asarray(want)
    if want.dtype == object or got.dtype == object:
        assert [bytes(x) for x in got.reshape(-1)] == [bytes(x) for x in want.reshape(-1)], what
        return
    assert got.dtype == want.dtype and got.shape == want.shape, what
    assert got.tobytes() == want.tobytes(), what


def test_tfckpt_restores_a_tf1_saver_checkpoint_by_name(tf1_checkpoint):
    """Every variable TF's Saver wrote lands in the array at its path, equal to the value
    the session held (the partitioned ``model/emb`` assembled); assert_consumed passes."""
    path, held = tf1_checkpoint
    targets = _targets()
    checkpoint = tfckpt.Checkpoint(**targets)
    status = checkpoint.restore(path)
    assert isinstance(status, NameBasedSaverStatus)
    status.assert_consumed()
    for name, target in _flat(targets).items():
        _same(target, held[name], name)
    _same(targets["model"]["emb"], EMB, "emb")


def _tf_checkpoint(tf, *, extra: bool):
    """TF's tf.train.Checkpoint over variables with the TF1 names (as name-based restore
    matches them: by the variables' names, not their attribute paths)."""
    model = tf.Module()
    model.kernel = tf.Variable(np.zeros((4, 3), np.float32), name="model/dense/kernel")
    model.bias = tf.Variable(np.zeros(3), name="model/dense/bias")
    model.emb = tf.Variable(np.zeros((10, 4), np.float32), name="model/emb")
    variables = {
        "w": tf.Variable(np.zeros(3, np.float32), name="w"),
        "counts": tf.Variable(np.zeros((2, 2), np.int32), name="counts"),
        "global_step": tf.Variable(np.int64(0), name="global_step"),
        "names": tf.Variable([b"", b""], name="names"),
    }
    if extra:
        variables["extra"] = tf.Variable(np.zeros(2), name="extra")
    return tf.train.Checkpoint(model=model, **variables), model, variables


def test_same_values_and_assertions_as_tf_checkpoint_restore(tf, tf1_checkpoint):
    """tf.train.Checkpoint.restore (TF's NameBasedSaverStatus) and tfckpt's restore of the
    same TF1 checkpoint: equal values; with an object named ``extra`` that the checkpoint
    lacks, both assert_consumed raise 'Some objects had attributes which were not
    restored' naming it."""
    path, _ = tf1_checkpoint
    tf_ckpt, model, variables = _tf_checkpoint(tf, extra=False)
    tf_status = tf_ckpt.restore(path)
    assert type(tf_status).__name__ == "NameBasedSaverStatus"
    tf_status.assert_consumed()
    targets = _targets()
    tfckpt.Checkpoint(**targets).restore(path).assert_consumed()
    tf_values = {
        "model/dense/kernel": model.kernel.numpy(),
        "model/dense/bias": model.bias.numpy(),
        "model/emb": model.emb.numpy(),
        **{name: v.numpy() for name, v in variables.items()},
    }
    for name, target in _flat(targets).items():
        _same(target, tf_values[name], name)

    tf_ckpt, _, _ = _tf_checkpoint(tf, extra=True)
    with pytest.raises(AssertionError, match="Some objects had attributes") as tf_error:
        tf_ckpt.restore(path).assert_consumed()
    assert "['extra']" in str(tf_error.value)
    status = tfckpt.Checkpoint(extra=np.zeros(2), **_targets()).restore(path)
    with pytest.raises(AssertionError, match="Some objects had attributes") as ours:
        status.assert_consumed()
    assert "['extra']" in str(ours.value)


def test_tf_restores_a_name_based_checkpoint_tfckpt_wrote(tf, tmp_path):
    """``tfckpt.save_tensors`` writes TF1-style names; TensorFlow's tf.train.Checkpoint
    restores them by name, to the values tfckpt's own restore by name gives."""
    values = {
        "w": W,
        "counts": COUNTS,
        "global_step": np.int64(42),
        "names": NAMES,
        "model/dense/kernel": KERNEL,
        "model/dense/bias": BIAS,
        "model/emb": EMB,
    }
    prefix = str(tfckpt.save_tensors(tmp_path / "tf1", values))
    tf_ckpt, model, variables = _tf_checkpoint(tf, extra=False)
    tf_ckpt.restore(prefix).assert_consumed()
    targets = _targets()
    tfckpt.Checkpoint(**targets).restore(prefix).assert_consumed()
    tf_values = {
        "model/dense/kernel": model.kernel.numpy(),
        "model/dense/bias": model.bias.numpy(),
        "model/emb": model.emb.numpy(),
        **{name: v.numpy() for name, v in variables.items()},
    }
    for name, target in _flat(targets).items():
        _same(tf_values[name], values[name], name)
        _same(target, values[name], name)
