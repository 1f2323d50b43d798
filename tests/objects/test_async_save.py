"""Asynchronous saves (src/tfckpt/objects/async_save.py): ``Checkpoint.save/write`` and
``CheckpointManager.save`` with ``asynchronous=True`` or ``CheckpointOptions(enable_async=
True)``.

What they prove: the checkpoint is the objects as they were when ``save`` was called
(arrays, NumpyState values and the graph itself changed afterwards are not saved) and is
the same checkpoint a synchronous save writes; the counter, the state file and the
manager's ``latest_checkpoint`` change only once the checkpoint is complete; a background
error is raised once, as itself, by the next ``sync()`` or save; a failure while copying
is raised by ``save`` itself and leaves nothing in flight; the interpreter's exit waits for
a save in flight, and a process killed during one leaves the previous checkpoint current.

A save is held in the background deterministically by a value whose conversion waits for
an event (:class:`Gate`, an array-like the writer converts in the background thread), so no
test depends on timing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import tfckpt
from tfckpt import tf_compat as tf
from tfckpt.bundle.sharding import MaxShardSizePolicy
from tfckpt.checkpoint_state import read_state, state_lock
from tfckpt.objects.keys import OBJECT_GRAPH_KEY

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Gate:
    """An array-like value that the writer converts (``numpy.asarray``) only once
    :meth:`open` is called: it holds a background save between its snapshot and its write.
    Not copied by the snapshot (it is not an array), so its value is fixed by design."""

    def __init__(self, value):
        self.value = np.asarray(value)
        self.event = threading.Event()

    def open(self):
        self.event.set()

    def __array__(self, dtype=None, copy=None):
        assert self.event.wait(60), "the test never opened the gate"
        return self.value


class Held:
    """A trackable with one value (attribute ``VARIABLE_VALUE``) given by ``value_fn``."""

    def __init__(self, value_fn):
        self.value_fn = value_fn

    def _tfckpt_children(self):
        return []

    def _tfckpt_attributes(self):
        return {"VARIABLE_VALUE": ("", self.value_fn)}


def tensors(prefix):
    with tfckpt.load_checkpoint(prefix) as reader:
        return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def state_names(directory):
    state = read_state(directory)
    return None if state is None else os.path.basename(state.model_checkpoint_path)


def make_objects():
    numpy_state = tfckpt.NumpyState()
    numpy_state.table = np.arange(12, dtype=np.int32).reshape(3, 4)
    return {
        "w": np.linspace(0, 1, 1000, dtype=np.float32),
        "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "nested": {"b": np.ones(3), "list": [np.zeros(2, np.int64)]},
        "state": numpy_state,
    }


# -- the checkpoint is the objects at call time ------------------------------------------


def test_async_save_is_what_a_synchronous_save_writes(tmp_path):
    """An asynchronous save of the same objects writes the same tensors and the same
    serialized object graph as a synchronous one, and ``sync()`` makes it complete."""
    objects = make_objects()
    sync_path = tfckpt.Checkpoint(**objects).save(str(tmp_path / "sync" / "ckpt"))
    checkpoint = tfckpt.Checkpoint(**objects)
    path = checkpoint.save(str(tmp_path / "async" / "ckpt"), asynchronous=True)
    assert path.endswith("ckpt-1")
    checkpoint.sync()
    expected, found = tensors(sync_path), tensors(path)
    assert sorted(found) == sorted(expected)
    for name, value in expected.items():
        if name == OBJECT_GRAPH_KEY:
            assert found[name] == value  # the same graph, byte for byte
        else:
            np.testing.assert_array_equal(found[name], value, err_msg=name)
    assert checkpoint.save_counter == 1
    assert tfckpt.latest_checkpoint(str(tmp_path / "async")) == path


def test_values_changed_after_save_returns_are_not_saved(tmp_path):
    """Arrays written to, NumpyState attributes replaced and children attached after
    ``save()`` returned change nothing in the checkpoint: the values and the graph were
    fixed at call time."""
    objects = make_objects()
    before = {
        "w": objects["w"].copy(),
        "fortran": objects["fortran"].copy(),
        "b": objects["nested"]["b"].copy(),
        "table": objects["state"].table.copy(),
    }
    gate = Gate(np.array(7.0))
    checkpoint = tfckpt.Checkpoint(gate=Held(lambda: gate), **objects)
    path = checkpoint.save(str(tmp_path / "ckpt"), asynchronous=True)
    # The write is held at the gate: everything below happens before it writes anything
    # of these values.
    objects["w"][:] = -1
    objects["fortran"][0, 0] = 99
    objects["nested"]["b"] += 5
    objects["nested"]["new"] = np.ones(4)
    objects["state"].table[:] = -7
    checkpoint.late = np.ones(2)
    gate.open()
    checkpoint.sync()
    tree = tfckpt.load_tree(path)
    np.testing.assert_array_equal(tree["w"], before["w"])
    np.testing.assert_array_equal(tree["fortran"], before["fortran"])
    np.testing.assert_array_equal(tree["nested"]["b"], before["b"])
    np.testing.assert_array_equal(tree["state"]["table"], before["table"])
    assert "new" not in tree["nested"] and "late" not in tree
    assert tree["save_counter"] == 1


def test_write_asynchronous_is_readable(tmp_path):
    """``write(asynchronous=True)`` writes no counter and no state file; ``read`` of its
    path by the same Checkpoint waits for it (as TensorFlow's restore does) and restores
    the values as they were when ``write`` was called."""
    values = np.arange(5.0)
    checkpoint = tfckpt.Checkpoint(a=values)
    path = checkpoint.write(str(tmp_path / "model"), asynchronous=True)
    assert path == str(tmp_path / "model")
    values[:] = 0
    checkpoint.read(path).assert_consumed()
    np.testing.assert_array_equal(values, np.arange(5.0))
    assert not os.path.exists(tmp_path / "checkpoint")
    assert checkpoint.save_counter == 0


def test_restore_waits_for_the_save_in_flight(tmp_path):
    """``restore`` of the Checkpoint that is saving waits for the save, so the checkpoint it
    names is complete; the values it restores are those saved."""
    gate = Gate(np.array(1.0))
    values = np.arange(4.0)
    checkpoint = tfckpt.Checkpoint(values=values, gate=Held(lambda: gate))
    path = checkpoint.save(str(tmp_path / "ckpt"), asynchronous=True)
    values[:] = 0
    threading.Timer(0.05, gate.open).start()
    checkpoint.restore(path)
    np.testing.assert_array_equal(values, np.arange(4.0))
    assert checkpoint.save_counter == 1


# -- counter, state file, manager: only once complete --------------------------------------


def test_counter_and_state_file_change_only_when_complete(tmp_path):
    """While a ``Checkpoint.save`` is held in the background, the save counter and the state
    file still name the previous checkpoint; after ``sync()`` they name the new one."""
    checkpoint = tfckpt.Checkpoint(w=np.ones(3))
    first = checkpoint.save(str(tmp_path / "ckpt"))
    gate = Gate(np.array(2.0))
    checkpoint.gate = Held(lambda: gate)
    second = checkpoint.save(str(tmp_path / "ckpt"), asynchronous=True)
    assert second.endswith("ckpt-2")
    assert checkpoint.save_counter == 1
    assert state_names(str(tmp_path)) == "ckpt-1"
    assert tfckpt.latest_checkpoint(str(tmp_path)) == first
    gate.open()
    checkpoint.sync()
    assert checkpoint.save_counter == 2
    assert tfckpt.latest_checkpoint(str(tmp_path)) == second
    assert tensors(second)["save_counter/.ATTRIBUTES/VARIABLE_VALUE"] == 2


def test_manager_latest_checkpoint_changes_only_when_state_file_is_written(tmp_path):
    """An asynchronous ``CheckpointManager.save`` returns its path at once; until it is
    complete ``latest_checkpoint``, ``checkpoints``, the counter and the state file are those
    of the previous save, and nothing is deleted; after ``sync()`` the new checkpoint is
    recorded and the oldest beyond ``max_to_keep`` deleted."""
    checkpoint = tfckpt.Checkpoint(w=np.ones(3))
    manager = tfckpt.CheckpointManager(checkpoint, str(tmp_path), max_to_keep=1)
    first = manager.save()
    gate = Gate(np.array(3.0))
    checkpoint.gate = Held(lambda: gate)
    second = manager.save(asynchronous=True)
    assert second.endswith("ckpt-2")
    assert manager.latest_checkpoint == first
    assert manager.checkpoints == [first]
    assert checkpoint.save_counter == 1
    assert state_names(str(tmp_path)) == "ckpt-1"
    assert os.path.exists(first + ".index")
    gate.open()
    manager.sync()
    assert manager.latest_checkpoint == second
    assert manager.checkpoints == [second]
    assert checkpoint.save_counter == 2
    assert state_names(str(tmp_path)) == "ckpt-2"
    assert not os.path.exists(first + ".index")  # max_to_keep=1, deleted after recording


def test_consecutive_async_saves_run_one_after_the_other(tmp_path):
    """Each save waits for the previous one: numbers follow the counter, every checkpoint
    is complete, the manager keeps ``max_to_keep`` of them, and the last is the latest."""
    values = np.zeros(100)
    checkpoint = tfckpt.Checkpoint(values=values)
    manager = tfckpt.CheckpointManager(checkpoint, str(tmp_path), max_to_keep=3)
    paths = []
    for step in range(6):
        values[:] = step
        paths.append(manager.save(asynchronous=True))
    manager.sync()
    assert [os.path.basename(p) for p in paths] == [f"ckpt-{n}" for n in range(1, 7)]
    assert manager.checkpoints == paths[-3:]
    assert manager.latest_checkpoint == paths[-1]
    for step, path in enumerate(paths[-3:], start=3):
        np.testing.assert_array_equal(tfckpt.load_tree(path)["values"], np.full(100, step))
    assert checkpoint.save_counter == 6


def test_checkpoint_number_and_interval_async(tmp_path):
    """``checkpoint_number`` names the checkpoint (the counter is still incremented), and
    ``checkpoint_interval`` is decided at call time, as in TensorFlow."""
    step = np.array(0, np.int64)
    checkpoint = tfckpt.Checkpoint(step=step)
    manager = tfckpt.CheckpointManager(
        checkpoint, str(tmp_path), step_counter=step, checkpoint_interval=10
    )
    assert manager.save(checkpoint_number=100, asynchronous=True).endswith("ckpt-100")
    assert manager.save(asynchronous=True) is None  # same step: not due
    step[()] = 10
    assert manager.save(asynchronous=True).endswith("ckpt-2")
    manager.sync()
    assert checkpoint.save_counter == 2
    assert manager.checkpoints == [str(tmp_path / "ckpt-100"), str(tmp_path / "ckpt-2")]


def test_sync_with_nothing_pending_returns():
    """``sync()`` of a Checkpoint (or manager) that never saved asynchronously returns."""
    checkpoint = tfckpt.Checkpoint(w=np.ones(2))
    assert checkpoint.sync() is None
    assert checkpoint.sync() is None


# -- errors -------------------------------------------------------------------------------


def test_concurrent_writer_error_is_raised_once_by_sync(tmp_path):
    """An asynchronous write of a prefix another writer holds fails in the background with
    the existing ConcurrentWriteError; ``sync()`` raises it, once (the next ``sync()``
    returns), and the other writer's checkpoint is untouched."""
    prefix = str(tmp_path / "model")
    checkpoint = tfckpt.Checkpoint(w=np.ones(3))
    with tfckpt.BundleWriter(prefix) as other:
        other.add("x", np.arange(3))
        assert checkpoint.write(prefix, asynchronous=True) == prefix
        with pytest.raises(tfckpt.ConcurrentWriteError):
            checkpoint.sync()
        assert checkpoint.sync() is None
    assert sorted(tensors(prefix)) == ["x"]


def test_background_error_is_raised_by_the_next_save_which_does_not_save(tmp_path):
    """The next save raises a failed background save's error (as itself) instead of
    saving; the one after saves, numbered after the last complete save."""
    directory = tmp_path / "run"
    checkpoint = tfckpt.Checkpoint(bad=Held(lambda: object()))  # the writer rejects it
    checkpoint.save(str(directory / "ckpt"), asynchronous=True)
    with pytest.raises(tfckpt.InvalidArgumentError, match="found object"):
        checkpoint.save(str(directory / "ckpt"), asynchronous=True)
    assert checkpoint.save_counter == 0
    assert tfckpt.latest_checkpoint(str(directory)) is None
    del checkpoint.bad
    checkpoint.w = np.ones(1)
    path = checkpoint.save(str(directory / "ckpt"), asynchronous=True)
    assert path.endswith("ckpt-1")
    checkpoint.sync()
    assert tfckpt.latest_checkpoint(str(directory)) == path


def test_manager_background_concurrent_save_fails_at_sync(tmp_path):
    """A manager's asynchronous save into a directory whose state file another writer
    holds fails in the background with ConcurrentWriteError, raised by ``sync()``;
    ``latest_checkpoint``, the counter and the state file stay as they were, and the failed
    save's checkpoint step is freed so that a retry at the same step saves."""
    step = np.array(5, np.int64)
    checkpoint = tfckpt.Checkpoint(w=np.ones(3), step=step)
    manager = tfckpt.CheckpointManager(
        checkpoint, str(tmp_path), step_counter=step, checkpoint_interval=1
    )
    with state_lock(str(tmp_path)):
        manager.save(asynchronous=True)
        with pytest.raises(tfckpt.ConcurrentWriteError):
            manager.sync()
    assert manager.latest_checkpoint is None
    assert checkpoint.save_counter == 0
    assert state_names(str(tmp_path)) is None
    assert manager.save(asynchronous=True).endswith("ckpt-1")
    manager.sync()
    assert manager.latest_checkpoint.endswith("ckpt-1")


def test_error_while_copying_is_raised_by_save_and_nothing_is_in_flight(tmp_path):
    """A value function that raises while the snapshot is taken makes ``save`` raise that
    error itself; the background write is abandoned (no file, no temporary), the counter
    and the state file are unchanged, and ``sync()`` has nothing to raise."""

    def broken():
        raise KeyError("no value")

    checkpoint = tfckpt.Checkpoint(w=np.ones(1000), bad=Held(broken))
    with pytest.raises(KeyError, match="no value"):
        checkpoint.save(str(tmp_path / "ckpt"), asynchronous=True)
    assert checkpoint.sync() is None
    assert checkpoint.save_counter == 0
    assert sorted(os.listdir(tmp_path)) == []


def test_bad_child_is_raised_at_call_time(tmp_path):
    """What cannot be saved at all (a child that is not checkpointable) is found when the
    graph is collected, by the call itself."""
    checkpoint = tfckpt.Checkpoint(d={"x": np.ones(1)})
    checkpoint.d[1] = np.ones(1)  # a non-string key TensorFlow cannot save
    with pytest.raises(tfckpt.InvalidArgumentError, match="not a string"):
        checkpoint.write(str(tmp_path / "m"), asynchronous=True)
    assert checkpoint.sync() is None


# -- options -------------------------------------------------------------------------------


def test_checkpoint_options_enable_async_and_sharding(tmp_path):
    """``CheckpointOptions(enable_async=True, experimental_sharding_callback=
    MaxShardSizePolicy(n))`` saves in the background and in data files the policy sizes,
    the same files a synchronous save with the policy writes; the manager passes
    ``options`` through."""
    arrays = {f"a{i}": np.full(1000, i, np.float32) for i in range(4)}  # 4000 bytes each
    policy = tf.train.experimental.MaxShardSizePolicy(max_shard_size=5000)
    assert isinstance(policy, MaxShardSizePolicy)
    options = tf.train.CheckpointOptions(enable_async=True, experimental_sharding_callback=policy)
    checkpoint = tf.train.Checkpoint(**arrays)
    path = checkpoint.write(str(tmp_path / "async" / "m"), options=options)
    checkpoint.sync()
    tf.train.Checkpoint(**arrays).write(
        str(tmp_path / "sync" / "m"),
        options=tf.train.CheckpointOptions(experimental_sharding_callback=policy),
    )
    files = sorted(os.listdir(tmp_path / "async"))
    assert files == sorted(os.listdir(tmp_path / "sync"))
    assert len([f for f in files if ".data-" in f]) > 1
    for name in files:
        assert (tmp_path / "async" / name).read_bytes() == (tmp_path / "sync" / name).read_bytes()
    manager = tf.train.CheckpointManager(checkpoint, str(tmp_path / "managed"), max_to_keep=2)
    saved = manager.save(options=options)
    manager.sync()
    assert len([f for f in os.listdir(tmp_path / "managed") if ".data-" in f]) > 1
    counter_key = "save_counter/.ATTRIBUTES/VARIABLE_VALUE"
    assert sorted(tensors(saved)) == [*sorted(tensors(path)), counter_key]


def test_unsupported_sharding_callback():
    """Any other sharding callback is refused: CheckpointOptions raises UnimplementedError,
    and an options object carrying one makes the save raise UnsupportedError (an
    UnimplementedError too) before anything is written."""
    with pytest.raises(tf.errors.UnimplementedError):
        tf.train.CheckpointOptions(experimental_sharding_callback=object())

    class Options:
        enable_async = False
        experimental_sharding_callback = object()

    with pytest.raises(tfckpt.UnsupportedError):
        tfckpt.Checkpoint(w=np.ones(1)).write("/nonexistent/never", options=Options())


def test_io_device_is_ignored(tmp_path):
    """``experimental_io_device`` changes nothing (tfckpt has no devices)."""
    options = tf.train.CheckpointOptions(experimental_io_device="/job:localhost")
    path = tf.train.Checkpoint(w=np.ones(2)).save(str(tmp_path / "ckpt"), options=options)
    assert tfckpt.latest_checkpoint(str(tmp_path)) == path


# -- process exit and kill --------------------------------------------------------------------


def run_python(code, **kwargs):
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "src"))
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_interpreter_exit_waits_for_the_save_in_flight(tmp_path):
    """A script that returns from an asynchronous save and exits at once leaves the
    complete checkpoint, named by the state file: the background thread is not a daemon."""
    process = run_python(
        f"""
        import threading, numpy as np, tfckpt
        class Slow:
            def __init__(self):
                self.event = threading.Event()
            def __array__(self, dtype=None, copy=None):
                self.event.wait(0.5)  # the write is still going when the main thread ends
                return np.arange(10.0)
        slow = Slow()
        class Held:
            def _tfckpt_children(self):
                return []
            def _tfckpt_attributes(self):
                return {{"VARIABLE_VALUE": ("", lambda: slow)}}
        checkpoint = tfckpt.Checkpoint(slow=Held(), w=np.ones(1000))
        print(checkpoint.save({str(tmp_path / "ckpt")!r}, asynchronous=True), flush=True)
        """
    )
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert tfckpt.latest_checkpoint(str(tmp_path)) == out.strip()
    assert tfckpt.load_tree(out.strip())["slow"].tolist() == list(range(10))


def test_killed_during_async_save_leaves_the_previous_checkpoint_current(tmp_path):
    """SIGKILL while an asynchronous save is in flight (held before its data is written):
    the state file still names the previous checkpoint, which reads back whole."""
    process = run_python(
        f"""
        import threading, numpy as np, tfckpt
        class Never:
            def __array__(self, dtype=None, copy=None):
                threading.Event().wait()
        class Held:
            def _tfckpt_children(self):
                return []
            def _tfckpt_attributes(self):
                return {{"VARIABLE_VALUE": ("", lambda: Never())}}
        checkpoint = tfckpt.Checkpoint(w=np.arange(100.0))
        checkpoint.save({str(tmp_path / "ckpt")!r})
        checkpoint.never = Held()
        checkpoint.save({str(tmp_path / "ckpt")!r}, asynchronous=True)
        print("saving", flush=True)
        threading.Event().wait()
        """
    )
    try:
        assert process.stdout.readline().strip() == "saving"
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
    latest = tfckpt.latest_checkpoint(str(tmp_path))
    assert latest == str(tmp_path / "ckpt-1")
    np.testing.assert_array_equal(tfckpt.load_tree(latest)["w"], np.arange(100.0))
