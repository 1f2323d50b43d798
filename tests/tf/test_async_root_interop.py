"""``Checkpoint(root=...)``, asynchronous saves and ``CheckpointOptions`` against real
TensorFlow, in both directions.

* TensorFlow writes ``tf.train.Checkpoint(root=module, extra=...)``; tfckpt's
  ``Checkpoint(root=..., extra=...)`` restores it and ``assert_consumed`` passes; tfckpt
  writes the same and TensorFlow restores it with ``assert_consumed``; the object graphs
  are identical except for attribute ``full_name`` (save_counter and the ``root``
  self-reference placed where TensorFlow places them).
* tfckpt's asynchronous save (``enable_async``) is read by TensorFlow; TensorFlow's
  asynchronous save is read by tfckpt.
* tfckpt's ``MaxShardSizePolicy`` save (through ``CheckpointOptions``, asynchronously) is
  restored by TensorFlow, with TensorFlow's number of data files.

TensorFlow comes only from the ``tf`` fixture.
"""

from __future__ import annotations

import os

import numpy as np

import tfckpt
from tests.tf.test_objects_interop import assert_same_graph
from tfckpt import tf_compat

V = np.array(1.5, np.float32)
W = np.array([2.0, 3.0, 4.0], np.float32)
EXTRA = np.array(7, np.int64)


def tf_module(tf, v=V, w=W):
    module = tf.Module()
    module.v = tf.Variable(v)
    module.w = tf.Variable(w)
    return module


def test_tf_writes_root_tfckpt_restores(tf, tmp_path):
    """TensorFlow's ``Checkpoint(root=module, extra=var).save`` restores into tfckpt's
    ``Checkpoint(root={"v", "w"}, extra=...)``: values, extra, save_counter, and
    ``assert_consumed``."""
    module = tf_module(tf)
    theirs = tf.train.Checkpoint(root=module, extra=tf.Variable(EXTRA))
    theirs.save(str(tmp_path / "tf" / "ckpt"))
    path = theirs.save(str(tmp_path / "tf" / "ckpt"))
    root = {"v": np.zeros((), np.float32), "w": np.zeros(3, np.float32)}
    ours = tfckpt.Checkpoint(root=root, extra=np.zeros((), np.int64))
    ours.restore(path).assert_consumed()
    assert root["v"] == V and root["w"].tolist() == W.tolist()
    assert ours.extra == EXTRA
    assert ours.save_counter == 2


def test_tfckpt_writes_root_tf_restores(tf, tmp_path):
    """tfckpt's ``Checkpoint(root=..., extra=...).save`` has TensorFlow's object graph
    (full names aside) and restores into ``tf.train.Checkpoint(root=module, extra=var)``
    with ``assert_consumed``."""
    ours = tfckpt.Checkpoint(root={"v": V.copy(), "w": W.copy()}, extra=EXTRA.copy())
    path = ours.save(str(tmp_path / "ours" / "ckpt"))
    reference = tf.train.Checkpoint(root=tf_module(tf), extra=tf.Variable(EXTRA))
    assert_same_graph(path, reference.save(str(tmp_path / "tf" / "ckpt")))
    module = tf_module(tf, np.zeros((), np.float32), np.zeros(3, np.float32))
    theirs = tf.train.Checkpoint(root=module, extra=tf.Variable(np.int64(0)))
    theirs.restore(path).assert_consumed()
    assert module.v.numpy() == V and module.w.numpy().tolist() == W.tolist()
    assert theirs.extra.numpy() == EXTRA
    assert int(theirs.save_counter.numpy()) == 1


def test_root_write_without_counter_matches_tf(tf, tmp_path):
    """``write`` with ``root=`` and no counter: the same graph as TensorFlow's, read back by
    TensorFlow's ``read`` with ``assert_consumed``."""
    path = tfckpt.Checkpoint(root={"v": V.copy(), "w": W.copy()}).write(str(tmp_path / "ours"))
    assert_same_graph(path, tf.train.Checkpoint(root=tf_module(tf)).write(str(tmp_path / "tf")))
    module = tf_module(tf, np.zeros((), np.float32), np.zeros(3, np.float32))
    tf.train.Checkpoint(root=module).read(path).assert_consumed()
    assert module.w.numpy().tolist() == W.tolist()


def test_tfckpt_async_save_tf_restores(tf, tmp_path):
    """tfckpt's asynchronous save (values changed after it returned) is complete after
    ``sync()`` and TensorFlow restores the values as they were at call time."""
    values = {"v": V.copy(), "w": W.copy()}
    ours = tf_compat.train.Checkpoint(**values)
    options = tf_compat.train.CheckpointOptions(enable_async=True)
    path = ours.save(str(tmp_path / "ckpt"), options=options)
    values["w"][:] = -1
    ours.sync()
    assert tf.train.latest_checkpoint(str(tmp_path)) == path
    theirs = tf.train.Checkpoint(
        v=tf.Variable(np.zeros((), np.float32)), w=tf.Variable(np.zeros(3, np.float32))
    )
    theirs.restore(path).assert_consumed()
    assert theirs.w.numpy().tolist() == W.tolist()


def test_tf_async_save_tfckpt_restores(tf, tmp_path):
    """TensorFlow's asynchronous save (``CheckpointOptions(enable_async=True)``), after its
    ``sync()``, restores into tfckpt."""
    theirs = tf.train.Checkpoint(v=tf.Variable(V), w=tf.Variable(W))
    path = theirs.save(
        str(tmp_path / "ckpt"), options=tf.train.CheckpointOptions(enable_async=True)
    )
    theirs.sync()
    ours = tfckpt.Checkpoint(v=np.zeros((), np.float32), w=np.zeros(3, np.float32))
    ours.restore(path).assert_consumed()
    assert ours.w.tolist() == W.tolist() and ours.save_counter == 1


def test_tfckpt_async_sharded_manager_save_tf_restores(tf, tmp_path):
    """A manager save with ``CheckpointOptions(enable_async=True, experimental_sharding_
    callback=MaxShardSizePolicy(n))`` writes as many data files as TensorFlow does with the
    same policy, and TensorFlow restores it with ``assert_consumed``."""
    arrays = {f"a{i}": np.full(500, i, np.float32) for i in range(5)}  # 2000 bytes each
    policy = tf_compat.train.experimental.MaxShardSizePolicy(max_shard_size=3000)
    options = tf_compat.train.CheckpointOptions(
        enable_async=True, experimental_sharding_callback=policy
    )
    ours = tf_compat.train.Checkpoint(**arrays)
    manager = tf_compat.train.CheckpointManager(ours, str(tmp_path / "ours"), max_to_keep=2)
    path = manager.save(options=options)
    manager.sync()
    theirs = tf.train.Checkpoint(**{k: tf.Variable(v) for k, v in arrays.items()})
    tf_path = theirs.save(
        str(tmp_path / "tf" / "ckpt"),
        options=tf.train.CheckpointOptions(
            experimental_sharding_callback=tf.train.experimental.MaxShardSizePolicy(
                max_shard_size=3000
            )
        ),
    )

    def data_files(directory):
        return sorted(f for f in os.listdir(directory) if ".data-" in f)

    assert len(data_files(tmp_path / "ours")) == len(data_files(tmp_path / "tf")) > 1
    assert os.path.basename(tf_path) == os.path.basename(path)
    target = tf.train.Checkpoint(**{k: tf.Variable(np.zeros(500, np.float32)) for k in arrays})
    target.restore(path).assert_consumed()
    for name, value in arrays.items():
        assert getattr(target, name).numpy().tolist() == value.tolist(), name
