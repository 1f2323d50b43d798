"""``Checkpoint(root=obj)``: ``obj`` is node 0 of the object graph, as in TensorFlow
(tensorflow/python/checkpoint/checkpoint.py, ``root`` and ``attached_dependencies``).

What they prove: ``obj``'s values are saved under their own names (``v/...``, not
``root/v/...``); node 0's children are ``obj``'s own, then the keyword arguments in sorted
order (``root`` referring to node 0 itself), then ``save_counter`` (the order TensorFlow
2.21 writes, see tests/tf/test_async_root_interop.py); restoring matches ``obj`` to node 0,
restores the attached children and the counter, and passes ``assert_consumed``; a root
that is an array, a NumpyState or a Checkpoint works; conflicting names are refused.
"""

from __future__ import annotations

import numpy as np
import pytest

import tfckpt
from tfckpt.objects.keys import OBJECT_GRAPH_KEY
from tfckpt.proto import trackable_object_graph_pb2


def graph_of(prefix):
    with tfckpt.load_checkpoint(prefix) as reader:
        proto = trackable_object_graph_pb2.TrackableObjectGraph()
        proto.ParseFromString(reader.get_tensor(OBJECT_GRAPH_KEY))
        keys = sorted(k for k in reader.get_variable_to_shape_map() if k != OBJECT_GRAPH_KEY)
    return proto, keys


def children(proto, node_id=0):
    return [(ref.local_name, ref.node_id) for ref in proto.nodes[node_id].children]


def test_root_children_are_saved_under_their_own_names(tmp_path):
    """``Checkpoint(root={"v": ..., "w": ...}, extra=...)``.save: keys ``v``, ``w``,
    ``extra`` and ``save_counter`` at the top; node 0's children in TensorFlow's order, with
    ``root`` referring to node 0."""
    root = {"v": np.array(1.0, np.float32), "w": np.array([2.0, 3.0], np.float32)}
    checkpoint = tfckpt.Checkpoint(root=root, extra=np.array(5.0, np.float32))
    path = checkpoint.save(str(tmp_path / "ckpt"))
    proto, keys = graph_of(path)
    assert keys == [
        "extra/.ATTRIBUTES/VARIABLE_VALUE",
        "save_counter/.ATTRIBUTES/VARIABLE_VALUE",
        "v/.ATTRIBUTES/VARIABLE_VALUE",
        "w/.ATTRIBUTES/VARIABLE_VALUE",
    ]
    assert children(proto) == [("v", 1), ("w", 2), ("extra", 3), ("root", 0), ("save_counter", 4)]
    assert checkpoint.root is root


def test_positional_root_and_write_without_counter(tmp_path):
    """``Checkpoint(obj)`` is ``Checkpoint(root=obj)``; ``write`` stores no counter unless
    it was created, and node 0 then has only ``obj``'s children and ``root``."""
    checkpoint = tfckpt.Checkpoint({"a": np.ones(2)})
    proto, keys = graph_of(checkpoint.write(str(tmp_path / "m")))
    assert keys == ["a/.ATTRIBUTES/VARIABLE_VALUE"]
    assert children(proto) == [("a", 1), ("root", 0)]


def test_restore_matches_root_and_attached_children(tmp_path):
    """What a root checkpoint saved restores into another ``Checkpoint(root=...)`` of the
    same shape: values, the attached keyword child and the counter; ``assert_consumed``
    passes."""
    source = tfckpt.Checkpoint(root={"v": np.arange(3.0)}, extra=np.array(7, np.int64))
    source.save(str(tmp_path / "ckpt"))
    path = source.save(str(tmp_path / "ckpt"))
    target_root = {"v": np.zeros(3)}
    target = tfckpt.Checkpoint(root=target_root, extra=np.array(0, np.int64))
    target.restore(path).assert_consumed()
    np.testing.assert_array_equal(target_root["v"], np.arange(3.0))
    assert target.extra == 7
    assert target.save_counter == 2


def test_deferred_restore_of_attached_children(tmp_path):
    """A keyword child attached after the restore is restored when attached, as other
    Checkpoint children are."""
    path = tfckpt.Checkpoint(root={"v": np.ones(2)}, extra=np.array(3.0)).write(str(tmp_path / "m"))
    checkpoint = tfckpt.Checkpoint(root={"v": np.zeros(2)})
    checkpoint.read(path)
    late = np.zeros(())
    checkpoint.extra = late
    assert late == 3.0


def test_root_is_not_a_child_named_root(tmp_path):
    """A checkpoint written with ``Checkpoint(model=...)`` does not match ``root=`` (and the
    other way round): the keys differ, so nothing but the root matches."""
    path = tfckpt.Checkpoint(root={"v": np.ones(2)}).write(str(tmp_path / "m"))
    status = tfckpt.Checkpoint(model={"v": np.zeros(2)}).read(path)
    with pytest.raises(AssertionError):
        status.assert_consumed()


def test_array_root(tmp_path):
    """An array as root: node 0 holds its value (key ``.ATTRIBUTES/VARIABLE_VALUE``) and is
    restored in place; a shape mismatch restores nothing and says so."""
    checkpoint = tfckpt.Checkpoint(root=np.arange(4.0))
    path = checkpoint.write(str(tmp_path / "m"))
    _, keys = graph_of(path)
    assert keys == [".ATTRIBUTES/VARIABLE_VALUE"]
    target = np.zeros(4)
    tfckpt.Checkpoint(root=target).read(path).assert_consumed()
    np.testing.assert_array_equal(target, np.arange(4.0))
    wrong = np.zeros(5)
    with pytest.raises(tfckpt.InvalidArgumentError, match="shape"):
        tfckpt.Checkpoint(root=wrong).read(path)
    assert not wrong.any()


def test_numpy_state_root(tmp_path):
    """A NumpyState as root: its attributes are node 0's children, and restoring re-creates
    them on the new root."""
    state = tfckpt.NumpyState()
    state.table = np.arange(6).reshape(2, 3)
    path = tfckpt.Checkpoint(root=state).write(str(tmp_path / "m"))
    _, keys = graph_of(path)
    assert keys == ["table/.ATTRIBUTES/py_state"]
    restored = tfckpt.NumpyState()
    tfckpt.Checkpoint(root=restored).read(path).assert_consumed()
    np.testing.assert_array_equal(restored.table, np.arange(6).reshape(2, 3))


def test_checkpoint_root_shares_its_save_counter(tmp_path):
    """A Checkpoint with a save counter as root: its counter is the one numbering the saves
    (TensorFlow looks up the root's ``save_counter``), saved once."""
    inner = tfckpt.Checkpoint(w=np.ones(2))
    inner.save(str(tmp_path / "inner" / "ckpt"))
    outer = tfckpt.Checkpoint(root=inner)
    path = outer.save(str(tmp_path / "outer" / "ckpt"))
    assert path.endswith("ckpt-2")
    assert inner.save_counter == 2
    proto, keys = graph_of(path)
    assert keys == ["save_counter/.ATTRIBUTES/VARIABLE_VALUE", "w/.ATTRIBUTES/VARIABLE_VALUE"]
    assert [name for name, _ in children(proto)] == ["w", "save_counter", "root"]


def test_conflicting_keyword_is_refused():
    """A keyword argument naming a different object than the root's child of that name is
    an InvalidArgumentError (TensorFlow: ValueError); the same object is fine."""
    shared = np.ones(2)
    tfckpt.Checkpoint(root={"v": shared}, v=shared)
    with pytest.raises(tfckpt.InvalidArgumentError, match="'v'"):
        tfckpt.Checkpoint(root={"v": shared}, v=np.zeros(2))
    with pytest.raises(tfckpt.InvalidArgumentError):
        tfckpt.Checkpoint(root=3.0)


def test_child_attached_later_is_saved(tmp_path):
    """A child attached to a root Checkpoint after construction is saved beside the root's
    children (TensorFlow saves only the constructor's keyword arguments: README,
    differences)."""
    checkpoint = tfckpt.Checkpoint(root={"v": np.ones(1)})
    checkpoint.later = np.array(2.0)
    _, keys = graph_of(checkpoint.write(str(tmp_path / "m")))
    assert keys == ["later/.ATTRIBUTES/VARIABLE_VALUE", "v/.ATTRIBUTES/VARIABLE_VALUE"]


def test_nested_root_checkpoint_keeps_the_ordinary_layout(tmp_path):
    """A root Checkpoint that is itself a child of another Checkpoint is saved as TensorFlow
    saves it there: an ordinary object whose children include ``root``."""
    inner = tfckpt.Checkpoint(root={"v": np.ones(1)})
    _, keys = graph_of(tfckpt.Checkpoint(inner=inner).write(str(tmp_path / "m")))
    assert keys == ["inner/root/v/.ATTRIBUTES/VARIABLE_VALUE"]


def test_async_save_with_root(tmp_path):
    """An asynchronous save of a root Checkpoint writes the same graph as a synchronous one
    (the snapshot keeps the reference from ``root`` to node 0)."""
    root = {"v": np.arange(3.0)}
    sync_path = tfckpt.Checkpoint(root=root, extra=np.ones(1)).save(str(tmp_path / "s" / "c"))
    checkpoint = tfckpt.Checkpoint(root=root, extra=np.ones(1))
    path = checkpoint.save(str(tmp_path / "a" / "c"), asynchronous=True)
    checkpoint.sync()
    assert graph_of(path) == graph_of(sync_path)
