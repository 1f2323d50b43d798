"""tfckpt's object-based checkpoints against TensorFlow's, in both directions.

* NumpyState: tfckpt's ⇄ TF-Agents' (tf_agents/utils/numpy_storage.py, defined below for TF
  2.21's trackable API); attributes are re-created on restore on both sides.
* dict/list/tuple structures of arrays ⇄ the same structures of tf.Variables: each side's
  ``assert_consumed`` passes on the other's files and the TrackableObjectGraphs are identical
  except for attribute ``full_name``; the status assertions agree scenario by scenario.
* save_counter numbering and CheckpointManager directories continue across libraries.
* load_tree on Keras 3 model + optimizer checkpoints, v1 optimizer slots and SavedModels.
* fixtures/objects/EXPECTED.json still is TensorFlow's view of fixtures/objects.

TensorFlow comes only from the ``tf`` fixture.
"""

from __future__ import annotations

import io
import json
import os
import time

import ml_dtypes
import numpy as np
import pytest

import tfckpt
from tests.manifest import value_digest
from tests.objects.test_objects import (
    EXPECTED,
    OBJECTS,
    assert_same_array,
    describe_array,
    npy_bytes,
    numpy_state_values,
)
from tfckpt.proto import trackable_object_graph_pb2

GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


# -- TF-Agents' NumpyState, on TensorFlow ----------------------------------------------------


@pytest.fixture(scope="module")
def tf_numpy_state(tf):
    """``NumpyState`` as TF-Agents defines it (numpy_storage.py), for TF 2.21."""
    from tensorflow.python.trackable import base

    class _NumpyWrapper(tf.train.experimental.PythonState):
        def __init__(self, array):
            self.array = array

        def serialize(self):
            buffer = io.BytesIO()
            np.save(buffer, self.array, allow_pickle=False)
            return buffer.getvalue()

        def deserialize(self, string_value):
            self.array = np.load(io.BytesIO(string_value), allow_pickle=False)

    class NumpyState(base.Trackable):
        def _lookup_dependency(self, name, cached_dependencies=None):
            """Creates placeholder wrappers for names found in the checkpoint."""
            value = super()._lookup_dependency(name, cached_dependencies)
            if value is None:
                value = _NumpyWrapper(np.array([]))
                self._maybe_initialize_trackable()
                self._self_unconditional_checkpoint_dependencies.append(
                    base.TrackableReference(name=name, ref=value)
                )
                self._self_unconditional_dependency_names[name] = value
                super().__setattr__(name, value)
            return value

        def __getattribute__(self, name):
            value = super().__getattribute__(name)
            if isinstance(value, _NumpyWrapper):
                return value.array
            return value

        def __setattr__(self, name, value):
            if isinstance(value, (np.ndarray, np.generic)):
                try:
                    existing = super().__getattribute__(name)
                    existing.array = value
                    return
                except AttributeError:
                    value = _NumpyWrapper(value)
                    self._track_trackable(value, name=name, overwrite=True)
            elif (
                name not in ("_setattr_tracking", "_update_uid")
                and not name.startswith("_self_")
                and getattr(self, "_setattr_tracking", True)
            ):
                raise NotImplementedError(f"{name}: NumpyState holds only NumPy arrays")
            super().__setattr__(name, value)

    return NumpyState


def graph_of(prefix, strip_full_names=True):
    proto = trackable_object_graph_pb2.TrackableObjectGraph()
    with tfckpt.load_checkpoint(prefix) as reader:
        proto.ParseFromString(bytes(reader.get_tensor(GRAPH_KEY)))
    if strip_full_names:
        for node in proto.nodes:
            for attribute in node.attributes:
                attribute.full_name = ""
    return proto


def assert_same_graph(ours, theirs):
    a, b = graph_of(ours), graph_of(theirs)
    assert len(a.nodes) == len(b.nodes), (a, b)
    for i, (x, y) in enumerate(zip(a.nodes, b.nodes)):
        assert x == y, f"node {i} differs:\n{x}\nvs TensorFlow's\n{y}"
    assert a.SerializeToString(deterministic=True) == b.SerializeToString(deterministic=True)


def assert_same_values(ours, theirs, skip=(GRAPH_KEY,)):
    """Both checkpoints hold the same keys with the same dtypes, shapes and values."""
    with tfckpt.load_checkpoint(ours) as a, tfckpt.load_checkpoint(theirs) as b:
        assert a.get_variable_to_shape_map() == b.get_variable_to_shape_map()
        dtypes_a = {k: d.name for k, d in a.get_variable_to_dtype_map().items()}
        dtypes_b = {k: d.name for k, d in b.get_variable_to_dtype_map().items()}
        assert dtypes_a == dtypes_b
        for key in a.get_variable_to_shape_map():
            if key in skip:
                continue
            assert value_digest(a.get_tensor(key), dtypes_a[key]) == value_digest(
                b.get_tensor(key), dtypes_b[key]
            ), key


# -- NumpyState ------------------------------------------------------------------------------


def test_numpy_state_tfckpt_to_tensorflow(tf, tf_numpy_state, tmp_path):
    values = numpy_state_values()
    state = tfckpt.NumpyState()
    for name, value in values.items():
        setattr(state, name, value)
    path = tfckpt.Checkpoint(numpy_arrays=state).save(os.path.join(tmp_path, "ckpt"))

    fresh = tf_numpy_state()
    checkpoint = tf.train.Checkpoint(numpy_arrays=fresh)
    checkpoint.restore(path).assert_consumed()  # attributes created by TF's restore
    assert int(checkpoint.save_counter.numpy()) == 1
    for name, value in values.items():
        assert_same_array(getattr(fresh, name), np.asarray(value), name)

    # An existing TF-side attribute is replaced by the restored value.
    again = tf_numpy_state()
    again.float32 = np.zeros(7)
    tf.train.Checkpoint(numpy_arrays=again).restore(path).assert_existing_objects_matched()
    assert_same_array(again.float32, values["float32"], "float32")


def test_numpy_state_tensorflow_to_tfckpt(tf, tf_numpy_state, tmp_path):
    values = numpy_state_values()
    state = tf_numpy_state()
    for name, value in values.items():
        setattr(state, name, value)
    path = tf.train.Checkpoint(numpy_arrays=state).save(os.path.join(tmp_path, "ckpt"))

    fresh = tfckpt.NumpyState()
    checkpoint = tfckpt.Checkpoint(numpy_arrays=fresh)
    checkpoint.restore(path).assert_consumed()  # attributes created by tfckpt's restore
    assert checkpoint.save_counter == 1
    for name, value in values.items():
        assert_same_array(getattr(fresh, name), np.asarray(value), name)
    tree = tfckpt.load_tree(path)
    for name, value in values.items():
        assert_same_array(tree["numpy_arrays"][name], np.asarray(value), name)


def test_numpy_state_files_agree(tf, tf_numpy_state, tmp_path):
    values = numpy_state_values()
    ours, theirs = tfckpt.NumpyState(), tf_numpy_state()
    for name, value in values.items():
        setattr(ours, name, value)
        setattr(theirs, name, value)
    our_path = tfckpt.Checkpoint(numpy_arrays=ours).save(os.path.join(tmp_path, "a", "ckpt"))
    their_path = tf.train.Checkpoint(numpy_arrays=theirs).save(os.path.join(tmp_path, "b", "ckpt"))
    assert_same_graph(our_path, their_path)
    assert_same_values(our_path, their_path)
    with tfckpt.load_checkpoint(their_path) as reader:
        for name, value in values.items():
            assert reader.get_tensor(f"numpy_arrays/{name}/.ATTRIBUTES/py_state") == npy_bytes(
                value
            )


def test_numpy_state_seed_example_across_libraries(tf, tf_numpy_state, tmp_path):
    arrays = tfckpt.NumpyState()
    checkpoint = tfckpt.Checkpoint(numpy_arrays=arrays)
    arrays.x = np.zeros([3, 4])
    save_path = checkpoint.save(os.path.join(tmp_path, "ckpt"))
    second = tf.train.Checkpoint(numpy_arrays=tf_numpy_state())
    second.restore(save_path)
    assert (second.numpy_arrays.x == np.zeros([3, 4])).all()
    second.numpy_arrays.x[1, 1] = 4.0
    tf_path = second.save(os.path.join(tmp_path, "ckpt"))
    assert tf_path == os.path.join(tmp_path, "ckpt-2")
    checkpoint.restore(tf_path).assert_consumed()
    assert arrays.x[1, 1] == 4.0 and checkpoint.save_counter == 2


def test_numpy_state_odd_names_and_large_arrays(tf, tf_numpy_state, tmp_path):
    values = {
        "with.dot": np.arange(3, dtype=np.int16),
        "with/slash": np.array([[1.5]]),
        "_private": np.array(b"x"),
        "large": np.linspace(0.0, 1.0, 300_000),  # py_state longer than 2**21 bytes
    }
    ours, theirs = tfckpt.NumpyState(), tf_numpy_state()
    for name, value in values.items():
        setattr(ours, name, value)
        setattr(theirs, name, value)
    our_path = tfckpt.Checkpoint(s=ours).write(os.path.join(tmp_path, "ours"))
    their_path = tf.train.Checkpoint(s=theirs).write(os.path.join(tmp_path, "theirs"))
    assert_same_graph(our_path, their_path)
    assert_same_values(our_path, their_path)
    assert "s/with..dot/.ATTRIBUTES/py_state" in dict(tf.train.list_variables(our_path))
    assert "s/with.Sslash/.ATTRIBUTES/py_state" in dict(tf.train.list_variables(our_path))
    fresh_tf, fresh_ours = tf_numpy_state(), tfckpt.NumpyState()
    tf.train.Checkpoint(s=fresh_tf).read(our_path).assert_consumed()
    tfckpt.Checkpoint(s=fresh_ours).read(their_path).assert_consumed()
    for name, value in values.items():
        assert_same_array(getattr(fresh_tf, name), value, name)
        assert_same_array(getattr(fresh_ours, name), value, name)


def test_tf_agents_numpy_storage_layout(tf, tf_numpy_state, tmp_path):
    """TF-Agents' NumpyStorage (a tf.Module holding a NumpyState in ``_np_state``, buffers
    starting as np.int64(0) sentinels) restores through a dict with the same names."""

    class NumpyStorage(tf.Module):
        def __init__(self):
            super().__init__()
            self._np_state = tf_numpy_state()
            self._np_state.buffer0 = np.int64(0)
            self._np_state.buffer1 = np.int64(0)

    storage = NumpyStorage()
    storage._np_state.buffer0 = np.arange(8, dtype=np.float32).reshape(4, 2)
    storage._np_state.buffer1 = np.array([True, False, True, True])
    path = tf.train.Checkpoint(storage=storage).save(os.path.join(tmp_path, "tf", "ckpt"))
    assert "storage/_np_state/buffer0/.ATTRIBUTES/py_state" in dict(tf.train.list_variables(path))

    state = tfckpt.NumpyState()
    checkpoint = tfckpt.Checkpoint(storage={"_np_state": state})
    checkpoint.restore(path).assert_consumed()
    assert_same_array(state.buffer0, storage._np_state.buffer0, "buffer0")
    assert_same_array(state.buffer1, storage._np_state.buffer1, "buffer1")
    tree = tfckpt.load_tree(path)
    assert_same_array(tree["storage"]["_np_state"]["buffer0"], state.buffer0, "tree")

    state.buffer0[0, 0] = -1.0
    ours = checkpoint.save(os.path.join(tmp_path, "ours", "ckpt"))
    fresh = NumpyStorage()  # sentinels are replaced by the restored arrays
    tf.train.Checkpoint(storage=fresh).restore(ours).assert_consumed()
    assert fresh._np_state.buffer0[0, 0] == -1.0
    assert_same_array(fresh._np_state.buffer1, state.buffer1, "buffer1")


# -- nested structures -----------------------------------------------------------------------


def spec():
    """A structure of arrays (shared: one array object in two places)."""
    shared = np.array([1.0, 2.0, 3.0], np.float32)
    return {
        "params": {
            "w": np.arange(6, dtype=np.float32).reshape(2, 3),
            "b": np.array([0.5, -0.5]),
            "a/b": np.array([7, 8], np.int32),
            "x.y": np.array(9, np.int64),
            "shared": shared,
            "untracked": 42,
        },
        "layers": [
            np.array([[True, False]]),
            {"inner": np.array([1.5, -2.25], ml_dtypes.bfloat16)},
            (np.array([3, 4], np.uint8), np.array([1 + 1j], np.complex64)),
            [],
            {},
            shared,
            "not trackable",
            np.array([b"alpha", b"", b"\x00\xff"], dtype=object),
        ],
        "sub": ("checkpoint", {"v": np.array([0.25], np.float16), "n": [np.zeros((2, 0))]}),
        "step": np.array(5, np.int64),
        "zz.last/one": np.array([-1], np.int8),
    }


def build(structure, make_leaf, make_checkpoint, memo):
    if isinstance(structure, np.ndarray):
        if id(structure) not in memo:
            memo[id(structure)] = make_leaf(structure)
        return memo[id(structure)]
    if isinstance(structure, dict):
        return {k: build(v, make_leaf, make_checkpoint, memo) for k, v in structure.items()}
    if isinstance(structure, tuple) and structure and isinstance(structure[0], str):
        return make_checkpoint(
            **{k: build(v, make_leaf, make_checkpoint, memo) for k, v in structure[1].items()}
        )
    if isinstance(structure, tuple):
        return tuple(build(v, make_leaf, make_checkpoint, memo) for v in structure)
    if isinstance(structure, list):
        return [build(v, make_leaf, make_checkpoint, memo) for v in structure]
    return structure  # untracked plain values


def as_tfckpt(structure, zeros=False):
    def leaf(array):
        if not zeros:
            return array.copy()
        if array.dtype == object:
            out = np.empty(array.shape, object)
            out[...] = b""
            return out
        return np.zeros_like(array)

    return build(structure, leaf, tfckpt.Checkpoint, {})


def as_tf(tf, structure, zeros=False):
    def leaf(array):
        if zeros:
            if array.dtype == object:
                array = np.full(array.shape, b"", object)
            else:
                array = np.zeros_like(array)
        return tf.Variable(array)

    return build(structure, leaf, tf.train.Checkpoint, {})


def tf_leaves(tf, obj, path=()):
    """(path, tf.Variable) of a TF structure (TF's wrappers act as dict/list/tuple)."""
    if isinstance(obj, tf.Variable):
        yield path, obj
    elif isinstance(obj, tf.train.Checkpoint):
        for name, child in sorted(obj._trackable_children().items()):
            if name != "save_counter":
                yield from tf_leaves(tf, child, (*path, name))
    elif hasattr(obj, "items"):
        for key, value in obj.items():
            yield from tf_leaves(tf, value, (*path, key))
    elif isinstance(obj, (list, tuple)) or type(obj).__name__ in ("ListWrapper", "_TupleWrapper"):
        for i, value in enumerate(obj):
            yield from tf_leaves(tf, value, (*path, str(i)))


def np_leaves(obj, path=()):
    if isinstance(obj, np.ndarray):
        yield path, obj
    elif isinstance(obj, tfckpt.Checkpoint):
        for name, child in sorted(obj._children.items()):
            yield from np_leaves(child, (*path, name))
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from np_leaves(value, (*path, key))
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from np_leaves(value, (*path, str(i)))


def assert_values_equal(tf_values, np_values):
    tf_values, np_values = dict(tf_values), dict(np_values)
    assert sorted(tf_values) == sorted(np_values)
    for path, variable in tf_values.items():
        got, want = variable.numpy(), np_values[path]
        assert got.dtype == want.dtype and got.shape == want.shape, path
        if want.dtype == object:
            assert got.tolist() == want.tolist(), path
        else:
            assert got.tobytes() == want.tobytes(), path


def test_nested_tfckpt_to_tensorflow(tf, tmp_path):
    structure = spec()
    path = tfckpt.Checkpoint(**as_tfckpt(structure)).save(os.path.join(tmp_path, "ckpt"))
    target = tf.train.Checkpoint(**as_tf(tf, structure, zeros=True))
    target.restore(path).assert_consumed()
    assert int(target.save_counter.numpy()) == 1
    assert_values_equal(tf_leaves(tf, target), np_leaves(as_tfckpt(structure)))
    assert target.params["shared"] is target.layers[5]


def test_nested_tensorflow_to_tfckpt(tf, tmp_path):
    structure = spec()
    source = tf.train.Checkpoint(**as_tf(tf, structure))
    path = source.save(os.path.join(tmp_path, "ckpt"))
    target_structure = as_tfckpt(structure, zeros=True)
    before = {p: id(a) for p, a in np_leaves(target_structure)}
    checkpoint = tfckpt.Checkpoint(**target_structure)
    checkpoint.restore(path).assert_consumed()
    assert checkpoint.save_counter == 1
    assert {p: id(a) for p, a in np_leaves(target_structure)} == before  # in place
    assert_values_equal(tf_leaves(tf, source), np_leaves(target_structure))
    assert target_structure["params"]["shared"] is target_structure["layers"][5]


def test_nested_object_graphs_are_identical(tf, tmp_path):
    structure = spec()
    ours = tfckpt.Checkpoint(**as_tfckpt(structure)).save(os.path.join(tmp_path, "a", "ckpt"))
    theirs = tf.train.Checkpoint(**as_tf(tf, structure)).save(os.path.join(tmp_path, "b", "ckpt"))
    assert_same_graph(ours, theirs)
    assert_same_values(ours, theirs)
    with (
        open(os.path.join(tmp_path, "a", "checkpoint")) as a,
        open(os.path.join(tmp_path, "b", "checkpoint")) as b,
    ):
        assert a.read() == b.read()


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda np_or_tf: {"d": {"b": np_or_tf(1), "a": np_or_tf(2)}}, id="dict_order"),
        pytest.param(lambda v: {"l": [v(1), [v(2), [v(3)]], (v(4),)]}, id="deep_lists"),
        pytest.param(lambda v: {"d": {"..": v(1), "/": v(2), ".S": v(3)}}, id="escapes"),
        pytest.param(lambda v: {"b": v(1), "a": v(2), "c": {"z": v(3), "y": []}}, id="kwargs"),
    ],
)
def test_small_object_graphs_are_identical(tf, tmp_path, make):
    def np_value(i):
        return np.full(2, i, np.float32)

    def tf_value(i):
        return tf.Variable(np.full(2, i, np.float32))

    ours = tfckpt.Checkpoint(**make(np_value)).write(os.path.join(tmp_path, "ours"))
    theirs = tf.train.Checkpoint(**make(tf_value)).write(os.path.join(tmp_path, "theirs"))
    assert_same_graph(ours, theirs)
    assert_same_values(ours, theirs)
    tf.train.Checkpoint(**make(tf_value)).read(ours).assert_consumed()
    tfckpt.Checkpoint(**make(np_value)).read(theirs).assert_consumed()


# -- status assertions agree -----------------------------------------------------------------


def _outcomes(status):
    out = {}
    for name in ("assert_consumed", "assert_existing_objects_matched", "assert_nontrivial_match"):
        try:
            getattr(status, name)()
        except AssertionError:
            out[name] = "fails"
        else:
            out[name] = "passes"
    return out


SCENARIOS = {
    # name: (saved structure, restored structure, how it is written, how it is restored)
    "same": ({"a": 1, "b": 2}, {"a": 1, "b": 2}, "save", "restore"),
    "extra_python_object": ({"a": 1}, {"a": 1, "b": 2}, "save", "restore"),
    "extra_checkpoint_value": ({"a": 1, "b": 2}, {"a": 1}, "save", "restore"),
    "write_then_restore": ({"a": 1}, {"a": 1}, "write", "restore"),
    "write_then_read": ({"a": 1}, {"a": 1}, "write", "read"),
    "nothing_matches": ({"a": 1}, {"z": 1}, "write", "read"),
    "save_then_read": ({"a": 1}, {"a": 1}, "save", "read"),
    "save_then_read_fresh": ({"a": 1}, {}, "save", "read"),
    "save_then_restore_fresh": ({"a": 1}, {}, "save", "restore"),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_status_assertions_agree_with_tensorflow(tf, tmp_path, scenario):
    saved, restored, how_written, how_restored = SCENARIOS[scenario]

    def run(make_checkpoint, make_value, directory):
        source = make_checkpoint(**{k: make_value(v) for k, v in saved.items()})
        prefix = os.path.join(tmp_path, directory, "ckpt")
        path = source.save(prefix) if how_written == "save" else source.write(prefix)
        target = make_checkpoint(**{k: make_value(v) for k, v in restored.items()})
        return _outcomes(getattr(target, how_restored)(path))

    ours = run(tfckpt.Checkpoint, lambda v: np.full(2, v, np.float32), "ours")
    theirs = run(tf.train.Checkpoint, lambda v: tf.Variable(np.full(2, v, np.float32)), "theirs")
    assert ours == theirs


def test_deferred_restoration_of_tensorflow_checkpoint(tf, tmp_path):
    source = tf.train.Checkpoint(a=tf.Variable([1.0, 2.0]), d={"w": tf.Variable([[3]])})
    path = source.save(os.path.join(tmp_path, "ckpt"))
    checkpoint = tfckpt.Checkpoint()
    status = checkpoint.restore(path)
    a, w = np.zeros(2, np.float32), np.zeros((1, 1), np.int32)
    checkpoint.a = a
    checkpoint.d = {"w": w}
    status.assert_consumed()
    assert a.tolist() == [1.0, 2.0] and w.tolist() == [[3]]
    # And TensorFlow's deferred restoration of a tfckpt checkpoint.
    ours = tfckpt.Checkpoint(a=np.array([5.0, 6.0], np.float32)).save(
        os.path.join(tmp_path, "o", "ckpt")
    )
    target = tf.train.Checkpoint()
    tf_status = target.restore(ours)
    target.a = tf.Variable(np.zeros(2, np.float32))
    tf_status.assert_consumed()
    assert target.a.numpy().tolist() == [5.0, 6.0]


# -- save_counter ----------------------------------------------------------------------------


def test_save_counter_continuity(tf, tmp_path):
    prefix = os.path.join(tmp_path, "ckpt")
    ours = tfckpt.Checkpoint(v=np.array([1.0], np.float32))
    assert ours.save(prefix) == f"{prefix}-1"
    assert ours.save(prefix) == f"{prefix}-2"
    theirs = tf.train.Checkpoint(v=tf.Variable([0.0]))
    theirs.restore(tf.train.latest_checkpoint(tmp_path)).assert_consumed()
    assert int(theirs.save_counter.numpy()) == 2
    assert theirs.save(prefix) == f"{prefix}-3"
    again = tfckpt.Checkpoint(v=np.zeros(1, np.float32))
    again.restore(tfckpt.latest_checkpoint(tmp_path)).assert_consumed()
    assert again.save_counter == 3
    assert again.save(prefix) == f"{prefix}-4"
    assert tf.train.latest_checkpoint(str(tmp_path)) == f"{prefix}-4"
    state = tf.train.get_checkpoint_state(str(tmp_path))
    assert state.model_checkpoint_path == f"{prefix}-4"
    assert list(state.all_model_checkpoint_paths) == [f"{prefix}-4"]
    # tfckpt's write() after accessing save_counter stores it, as TF's does.
    theirs.write(os.path.join(tmp_path, "w"))
    assert "save_counter/.ATTRIBUTES/VARIABLE_VALUE" in dict(
        tf.train.list_variables(os.path.join(tmp_path, "w"))
    )


# -- CheckpointManager -----------------------------------------------------------------------


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = Clock(5_000.0)
    monkeypatch.setattr(time, "time", fake)
    return fake


def _tf_pair(tf):
    step = tf.Variable(np.array(0, np.int64))
    return tf.train.Checkpoint(step=step, w=tf.Variable(np.zeros(2, np.float32))), step


def _np_pair():
    step = np.zeros((), np.int64)
    return tfckpt.Checkpoint(step=step, w=np.zeros(2, np.float32)), step


def listing(directory):
    return sorted(os.listdir(directory))


def test_managers_continue_each_other(tf, tmp_path, clock):
    directory = str(tmp_path)
    checkpoint, step = _np_pair()
    ours = tfckpt.CheckpointManager(checkpoint, directory, max_to_keep=2)
    for i in (1, 2, 3):
        clock.now += 10
        step[...] = i
        ours.save()

    clock.now += 10
    tf_checkpoint, tf_step = _tf_pair(tf)
    theirs = tf.train.CheckpointManager(tf_checkpoint, directory, max_to_keep=2)
    assert theirs.latest_checkpoint == ours.latest_checkpoint
    assert theirs.checkpoints == ours.checkpoints
    assert theirs.restore_or_initialize() == os.path.join(directory, "ckpt-3")
    assert int(tf_step.numpy()) == 3 and int(tf_checkpoint.save_counter.numpy()) == 3
    tf_step.assign(4)
    assert theirs.save() == os.path.join(directory, "ckpt-4")
    assert listing(directory) == [
        "checkpoint",
        "ckpt-3.data-00000-of-00001",
        "ckpt-3.index",
        "ckpt-4.data-00000-of-00001",
        "ckpt-4.index",
    ]

    clock.now += 10
    checkpoint2, step2 = _np_pair()
    ours2 = tfckpt.CheckpointManager(checkpoint2, directory, max_to_keep=2)
    assert ours2.latest_checkpoint == theirs.latest_checkpoint
    assert ours2.checkpoints == theirs.checkpoints
    assert ours2.restore_or_initialize() == os.path.join(directory, "ckpt-4")
    assert step2 == 4 and checkpoint2.save_counter == 4
    assert ours2.save() == os.path.join(directory, "ckpt-5")
    assert ours2.save(checkpoint_number=50) == os.path.join(directory, "ckpt-50")
    assert listing(directory) == [
        "checkpoint",
        "ckpt-5.data-00000-of-00001",
        "ckpt-5.index",
        "ckpt-50.data-00000-of-00001",
        "ckpt-50.index",
    ]

    clock.now += 10
    tf_checkpoint3, _ = _tf_pair(tf)
    theirs3 = tf.train.CheckpointManager(tf_checkpoint3, directory, max_to_keep=2)
    assert theirs3.checkpoints == ours2.checkpoints
    assert theirs3.latest_checkpoint == os.path.join(directory, "ckpt-50")
    theirs3.restore_or_initialize()
    assert int(tf_checkpoint3.save_counter.numpy()) == 6
    assert theirs3.save() == os.path.join(directory, "ckpt-7")


def _scenario(manager, set_step, clock):
    """The same sequence of saves for either library's manager; returns their paths."""
    out = []
    for i, (dt, number) in enumerate(
        [
            (0, None),
            (1000, None),
            (1000, 10),
            (2000, None),
            (3000, None),
            (1000, None),
            (1000, None),
            (2000, None),
            (500, 10),
        ]
    ):
        clock.now += dt
        set_step(i)
        path = manager.save(checkpoint_number=number)
        out.append(os.path.basename(path))
    return out


@pytest.mark.parametrize("hours", [None, 1.0])
def test_manager_state_files_are_identical(tf, tmp_path, clock, hours):
    start = clock.now
    ours_dir, theirs_dir = str(tmp_path / "ours"), str(tmp_path / "theirs")
    checkpoint, step = _np_pair()
    ours = tfckpt.CheckpointManager(
        checkpoint, ours_dir, max_to_keep=3, keep_checkpoint_every_n_hours=hours
    )
    ours_paths = _scenario(ours, lambda i: step.__setitem__((), i), clock)

    clock.now = start
    tf_checkpoint, tf_step = _tf_pair(tf)
    theirs = tf.train.CheckpointManager(
        tf_checkpoint, theirs_dir, max_to_keep=3, keep_checkpoint_every_n_hours=hours
    )
    theirs_paths = _scenario(theirs, tf_step.assign, clock)

    assert ours_paths == theirs_paths
    assert listing(ours_dir) == listing(theirs_dir)
    with (
        open(os.path.join(ours_dir, "checkpoint")) as a,
        open(os.path.join(theirs_dir, "checkpoint")) as b,
    ):
        assert a.read() == b.read()
    assert [os.path.basename(p) for p in ours.checkpoints] == [
        os.path.basename(p) for p in theirs.checkpoints
    ]
    # Each library reads the other's directory the same way.
    clock.now += 10
    assert [
        os.path.basename(p)
        for p in tfckpt.CheckpointManager(
            _np_pair()[0], theirs_dir, max_to_keep=3, keep_checkpoint_every_n_hours=hours
        ).checkpoints
    ] == [
        os.path.basename(p)
        for p in tf.train.CheckpointManager(
            _tf_pair(tf)[0], ours_dir, max_to_keep=3, keep_checkpoint_every_n_hours=hours
        ).checkpoints
    ]


# -- Keras and optimizers through load_tree --------------------------------------------------


def _object_names(tf, root):
    from tensorflow.python.checkpoint import graph_view

    _, node_paths = graph_view.ObjectGraphView(root).breadth_first_traversal()
    return node_paths


def _key_of(node_paths, variable):
    """TensorFlow's checkpoint key of a variable, from its breadth-first path."""
    names = [ref.name.replace(".", "..").replace("/", ".S") for ref in node_paths[variable]]
    return "/".join(names) + "/.ATTRIBUTES/VARIABLE_VALUE"


def at(tree, path):
    for part in path:
        tree = tree[part]
    return tree


def test_keras_model_and_optimizer_tree(tf, tmp_path):
    import keras

    keras.utils.set_random_seed(7)
    model = keras.Sequential(
        [
            keras.Input((5,)),
            keras.layers.Dense(3, activation="tanh"),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(2),
        ]
    )
    optimizer = keras.optimizers.Adam(learning_rate=0.01)
    model.compile(optimizer=optimizer, loss="mse")
    x = np.linspace(-1, 1, 20, dtype=np.float32).reshape(4, 5)
    model.train_on_batch(x, np.ones((4, 2), np.float32))
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
    path = checkpoint.save(os.path.join(tmp_path, "ckpt"))
    tree = tfckpt.load_tree(path)

    node_paths = _object_names(tf, checkpoint)
    model_paths = _object_names(tf, model)
    weights = model.get_weights()
    assert len(weights) == len(model.weights) == 8  # incl. BatchNorm moving mean/variance
    for variable, expected in zip(model.weights, weights):
        key = _key_of(node_paths, variable)
        value = at(tree, tree.key_to_path[key])
        assert value.dtype == expected.dtype and np.array_equal(value, expected), variable.path
        assert tree.path_to_key[tree.key_to_path[key]] == key
    kernels = []
    for layer in model.layers:
        layer_path = [ref.name for ref in model_paths[layer]]
        layer_view = _object_names(tf, layer)
        for variable in layer.weights:
            value = at(tree, ["model", *layer_path, *(r.name for r in layer_view[variable])])
            assert np.array_equal(value, variable.numpy()), variable.path
            if variable.path.endswith("kernel"):
                kernels.append(value)
    assert [k.shape for k in kernels] == [(5, 3), (3, 2)]
    assert len(optimizer.variables) == 2 + 2 * 6  # iterations, lr, m/v per trainable weight
    for variable in optimizer.variables:
        key = _key_of(node_paths, variable)
        value = at(tree, tree.key_to_path[key])
        assert np.array_equal(value, variable.numpy()), variable.path
    for i in range(6):
        assert np.array_equal(
            tree["optimizer"]["_momentums"][str(i)], optimizer._momentums[i].numpy()
        )
        assert np.array_equal(
            tree["optimizer"]["_velocities"][str(i)], optimizer._velocities[i].numpy()
        )
    assert tree["optimizer"]["_iterations"] == 1
    assert tree["save_counter"] == 1


def test_v1_optimizer_slots_tree(tf, tmp_path):
    class Net(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(np.arange(6, dtype=np.float32).reshape(3, 2))
            self.layers = {"b.1": tf.Variable(np.ones(2, np.float32))}

    net = Net()
    optimizer = tf.compat.v1.train.AdamOptimizer(0.1)
    variables = [net.w, net.layers["b.1"]]
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.matmul(tf.ones((1, 3)), net.w) * net.layers["b.1"] ** 2)
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    path = tf.train.Checkpoint(net=net, opt=optimizer).save(os.path.join(tmp_path, "ckpt"))
    tree = tfckpt.load_tree(path)
    slots = tree["opt"][".OPTIMIZER_SLOT"]
    assert sorted(slots) == ["net/layers/b.1", "net/w"]
    for name, variable in (("net/w", net.w), ("net/layers/b.1", net.layers["b.1"])):
        assert sorted(slots[name]) == ["m", "v"]
        for slot in ("m", "v"):
            expected = optimizer.get_slot(variable, slot).numpy()
            assert np.array_equal(slots[name][slot], expected)
    key = "net/layers/b..1/.OPTIMIZER_SLOT/opt/m/.ATTRIBUTES/VARIABLE_VALUE"
    assert key in dict(tf.train.list_variables(path))
    assert tree.key_to_path[key] == ("opt", ".OPTIMIZER_SLOT", "net/layers/b.1", "m")
    assert np.array_equal(tree["net"]["w"], net.w.numpy())
    beta1_power = tree["opt"]["beta1_power"]
    assert np.isclose(beta1_power, 0.9**2)


def test_saved_model_variables_tree(tf, tmp_path):
    class Model(tf.Module):
        def __init__(self):
            super().__init__()
            self.scale = tf.Variable(2.0)
            self.table = {
                "ids": tf.Variable(np.array([[1, 2]], np.int64)),
                "names": tf.Variable(np.array([b"a", b"bc"], object)),
            }
            self.layers = [tf.Variable(np.ones((2, 2), np.float32))]

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)])
        def __call__(self, x):
            return tf.matmul(x, self.layers[0]) * self.scale

    module = Model()
    directory = str(tmp_path / "saved")
    tf.saved_model.save(module, directory)
    tree = tfckpt.load_tree(directory)
    variables_prefix = os.path.join(directory, "variables", "variables")
    keys = {name for name, _ in tf.train.list_variables(variables_prefix)} - {GRAPH_KEY}
    assert set(tree.key_to_path) == keys
    assert tree["scale"] == np.float32(2.0)
    assert tree["table"]["ids"].tolist() == [[1, 2]]
    assert tree["table"]["names"].tolist() == [b"a", b"bc"]
    assert np.array_equal(tree["layers"]["0"], np.ones((2, 2), np.float32))
    reader = tf.train.load_checkpoint(variables_prefix)
    for key, path in tree.key_to_path.items():
        expected = reader.get_tensor(key)
        value = at(tree, path)
        if isinstance(expected, np.ndarray) and expected.dtype == object:
            assert value.tolist() == expected.tolist(), key
        else:
            assert np.array_equal(value, expected), key
    loaded = tf.saved_model.load(directory)
    assert float(loaded.scale.numpy()) == 2.0


def test_keras_export_saved_model_tree(tf, tmp_path):
    import keras

    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(2)]
    )
    directory = str(tmp_path / "exported")
    model.export(directory, verbose=False)
    tree = tfckpt.load_tree(directory)
    weights = model.get_weights()
    assert [tree["variables"][str(i)].shape for i in range(len(weights))] == [
        w.shape for w in weights
    ]
    for i, expected in enumerate(weights):
        assert np.array_equal(tree["variables"][str(i)], expected)
        key = f"variables/{i}/.ATTRIBUTES/VARIABLE_VALUE"
        assert tree.key_to_path[key] == ("variables", str(i))
    prefix = os.path.join(directory, "variables", "variables")
    keys = {name for name, _ in tf.train.list_variables(prefix)} - {GRAPH_KEY}
    assert set(tree.key_to_path) == keys


# -- fixtures/objects still is TensorFlow's view ---------------------------------------------


def test_object_fixtures_expected_is_tensorflows_view(tf, tf_numpy_state):
    assert EXPECTED, "fixtures/objects/EXPECTED.json is missing"
    for prefix, info in EXPECTED["checkpoints"].items():
        reader = tf.train.load_checkpoint(str(OBJECTS / prefix))
        dtypes = reader.get_variable_to_dtype_map()
        shapes = reader.get_variable_to_shape_map()
        assert sorted(shapes) == sorted(info["tensors"]), prefix
        for key, expected in info["tensors"].items():
            assert dtypes[key].name == expected["dtype"], (prefix, key)
            assert list(shapes[key]) == expected["shape"], (prefix, key)
            assert value_digest(reader.get_tensor(key), expected["dtype"]) == expected["sha256"]
    state = tf_numpy_state()
    tf.train.Checkpoint(numpy_arrays=state).restore(
        str(OBJECTS / "tfagents_numpy_state" / "ckpt-1")
    ).assert_consumed()
    for name, expected in EXPECTED["checkpoints"]["tfagents_numpy_state/ckpt-1"][
        "numpy_state"
    ].items():
        want = {k: v for k, v in expected.items() if k != "key"}
        assert describe_array(getattr(state, name)) == want, name
    state_text = (OBJECTS / "manager" / "checkpoint").read_text()
    assert state_text == EXPECTED["manager"]["state"]["text"]
    manager_state = tf.train.get_checkpoint_state(str(OBJECTS / "manager"))
    assert [os.path.basename(p) for p in manager_state.all_model_checkpoint_paths] == (
        EXPECTED["manager"]["checkpoints"]
    )
    assert json.loads(json.dumps(EXPECTED["versions"]))["tensorflow"] == tf.__version__
