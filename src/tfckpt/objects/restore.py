"""Restoring object-based checkpoints by matching the object graph, as TensorFlow does.

Values are matched to objects through the checkpoint's TrackableObjectGraph, starting from
the root and following children by local name, never by key names.  Children that do not
exist yet are created where the owner does so (NumpyState attributes, the save counter) or
remembered and restored when they are attached later (deferred restoration).  The status
object's assertions follow CheckpointLoadStatus in tensorflow/python/checkpoint/checkpoint.py.

A restore changes all it matches or nothing: every value is read, checksummed and checked
(dtype, shape, writability; NumpyState bytes decoded) into a plan before any object is
touched, and children that restoring creates or defers are attached only with the plan.
When anything fails (a mismatch, a corrupt or missing tensor, a missing data file) the
error says that nothing was restored, and the objects are as they were.  (Objects with only
the one-step ``_tfckpt_restore`` hook are restored with the plan, so only the checks before
them protect them.)
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from tfckpt import dtypes
from tfckpt.errors import CheckpointError, DataLossError, InvalidArgumentError, UnsupportedError
from tfckpt.objects import graph, trackable
from tfckpt.objects.keys import OBJECT_GRAPH_KEY, VARIABLE_VALUE
from tfckpt.proto import trackable_object_graph_pb2
from tfckpt.reader import CheckpointReader, TensorValue

ObjectGraph = trackable_object_graph_pb2.TrackableObjectGraph
ObjectNode = ObjectGraph.TrackableObject
SerializedTensor = ObjectNode.SerializedTensor


def read_object_graph(reader: CheckpointReader) -> ObjectGraph:
    """The TrackableObjectGraph stored in a checkpoint, checked (see :func:`check_graph`)."""
    if not reader.has_tensor(OBJECT_GRAPH_KEY):
        raise UnsupportedError(
            f"no {OBJECT_GRAPH_KEY} entry: a name-based (TF1) checkpoint, not an "
            "object-based one; read its tensors with tfckpt.load_checkpoint",
            path=reader.prefix,
        )
    value = reader.get_tensor(OBJECT_GRAPH_KEY)
    if not isinstance(value, bytes):
        raise DataLossError(
            f"expected the object graph as a scalar string, found "
            f"{reader.get_dtype(OBJECT_GRAPH_KEY).name} {list(np.shape(value))}",
            path=reader.prefix,
            tensor=OBJECT_GRAPH_KEY,
        )
    proto = ObjectGraph()
    try:
        proto.ParseFromString(value)
    except Exception as exc:  # protobuf's DecodeError
        raise DataLossError(
            f"not a serialized TrackableObjectGraph ({exc})",
            path=reader.prefix,
            tensor=OBJECT_GRAPH_KEY,
        ) from None
    check_graph(proto, reader.prefix)
    return proto


def check_graph(proto: ObjectGraph, path: str | None) -> None:
    """Raises DataLossError unless the graph has a root and every node id it holds (children,
    slot variables) names one of its nodes, so that walking it cannot fail."""
    count = len(proto.nodes)
    if not count:
        raise DataLossError(
            "the object graph has no nodes (expected at least the root object)",
            path=path,
            tensor=OBJECT_GRAPH_KEY,
        )
    for node_id, node in enumerate(proto.nodes):
        for ref in node.children:
            if not 0 <= ref.node_id < count:
                raise DataLossError(
                    f"object graph node {node_id}: child {ref.local_name!r} refers to node "
                    f"{ref.node_id}, expected a node id from 0 to {count - 1}",
                    path=path,
                    tensor=OBJECT_GRAPH_KEY,
                )
        for slot in node.slot_variables:
            for field in ("original_variable_node_id", "slot_variable_node_id"):
                ref_id = getattr(slot, field)
                if not 0 <= ref_id < count:
                    raise DataLossError(
                        f"object graph node {node_id}: slot variable {slot.slot_name!r} has "
                        f"{field} {ref_id}, expected a node id from 0 to {count - 1}",
                        path=path,
                        tensor=OBJECT_GRAPH_KEY,
                    )


def missing_value(path: str | None, node_id: int, attribute: SerializedTensor) -> DataLossError:
    """The error for an attribute of the object graph whose checkpoint key holds nothing."""
    return DataLossError(
        f"object graph node {node_id}: attribute {attribute.name!r} refers to checkpoint key "
        f"{attribute.checkpoint_key!r}, which the checkpoint does not hold",
        path=path,
        tensor=OBJECT_GRAPH_KEY,
    )


class Restoration:
    """One ``restore()``/``read()`` call: the checkpoint and what has been matched so far."""

    def __init__(self, reader: CheckpointReader) -> None:
        self.reader = reader
        self.path = reader.prefix
        self.proto = read_object_graph(reader)
        self.matched: dict[int, Any] = {}
        self.unused_attributes: dict[int, list[str]] = {}
        self._plan: list[Callable[[], None]] | None = None  # while binding: what to assign

    def bind(self, obj: Any, node_id: int) -> None:
        """Matches ``obj`` to checkpoint node ``node_id``, restores it and its children.

        Everything is read and checked before anything is assigned.

        Raises:
            InvalidArgumentError: a value does not fit its object (dtype, shape, read-only).
            DataLossError, CheckpointNotFoundError: a value is corrupt or its file missing.
            Either way nothing was assigned, and the message says so.
        """
        if self._plan is not None:  # a child, within the bind that plans it
            self._match(obj, node_id)
            return
        matched, unused = dict(self.matched), dict(self.unused_attributes)
        self._plan = []
        try:
            self._match(obj, node_id)
            plan = self._plan
        except BaseException as exc:
            self.matched, self.unused_attributes = matched, unused
            if isinstance(exc, CheckpointError):
                raise _nothing_restored(exc) from None
            raise
        finally:
            self._plan = None
        for assign_planned in plan:
            assign_planned()

    def _match(self, obj: Any, node_id: int) -> None:
        if node_id in self.matched:
            return
        self.matched[node_id] = obj
        node = self.proto.nodes[node_id]
        self._restore_attributes(obj, node_id, node)
        for ref in node.children:  # node ids were checked by read_object_graph
            child_node = self.proto.nodes[ref.node_id]
            names = {a.name for a in child_node.attributes}
            child = trackable.lookup(obj, ref.local_name, names)
            if child is not None:
                self._match(child, ref.node_id)
                continue
            defer = getattr(obj, "_tfckpt_defer", None)
            if defer is not None:
                self._planned(functools.partial(defer, ref.local_name, self, ref.node_id))

    def _planned(self, action: Callable[[], None]) -> None:
        assert self._plan is not None
        self._plan.append(action)

    def _restore_attributes(self, obj: Any, node_id: int, node: ObjectNode) -> None:
        if not node.attributes:
            return
        if isinstance(obj, np.ndarray):
            accepted: tuple[str, ...] = (VARIABLE_VALUE,)
        else:
            accepted = tuple(getattr(obj, "_tfckpt_restorable_attributes", tuple)())
        unused = []
        for attribute in node.attributes:
            if attribute.name not in accepted:
                unused.append(attribute.name)
                continue
            # Views of the memory map (no copy): assign() and the restore hooks copy what
            # they keep.  NumpyState's .npy bytes are parsed straight from the map.
            key = attribute.checkpoint_key
            if not self.reader.has_tensor(key):
                raise missing_value(self.path, node_id, attribute)
            value: memoryview | TensorValue | None = None
            if attribute.name in getattr(obj, "_tfckpt_bytes_attributes", ()):
                try:
                    value = self.reader.get_bytes_view(key)
                except InvalidArgumentError:  # not a scalar string: the hook reports it
                    pass
            if value is None:
                value = self.reader.get_tensor(key, copy=False)
            if isinstance(obj, np.ndarray):
                checked = checked_value(obj, value, attribute.checkpoint_key, self.reader)
                self._planned(functools.partial(_assign_checked, obj, checked))
            elif hasattr(obj, "_tfckpt_prepare_restore"):
                self._planned(obj._tfckpt_prepare_restore(attribute.name, value, self.path, key))
            else:
                restore = obj._tfckpt_restore
                self._planned(functools.partial(restore, attribute.name, value, self.path, key))
        if unused:
            self.unused_attributes[node_id] = unused


def assign(target: np.ndarray, value: Any, key: str, reader: CheckpointReader) -> None:
    """Assigns a restored value into an existing array in place, like Variable.assign.

    Raises:
        InvalidArgumentError: as :func:`checked_value`.
    """
    _assign_checked(target, checked_value(target, value, key, reader))


def _assign_checked(target: np.ndarray, value: np.ndarray) -> None:
    target[...] = value


def _nothing_restored(exc: CheckpointError) -> CheckpointError:
    """``exc`` again, its message saying that no value was assigned."""
    message = f"{exc.message} (nothing was restored: every value is checked first)"
    try:
        return type(exc)(message, path=exc.path, tensor=exc.tensor)
    except TypeError:  # a subclass with another constructor
        return exc


def checked_value(target: np.ndarray, value: Any, key: str, reader: CheckpointReader) -> Any:
    """``value`` as an array that can be assigned into ``target`` (same dtype and shape,
    ``target`` writable).

    Raises:
        InvalidArgumentError: the dtype or shape differs, or ``target`` is read-only.
    """
    stored = reader.get_dtype(key)
    try:
        own = dtypes.from_numpy(target.dtype)
    except TypeError:
        own = None
    if own is None or own.as_datatype_enum != stored.as_datatype_enum:
        raise InvalidArgumentError(
            f"the checkpoint holds {stored.name} but the array to restore into has dtype "
            f"{target.dtype}",
            path=reader.prefix,
            tensor=key,
        )
    value = np.asarray(value)
    if value.shape != target.shape:
        raise InvalidArgumentError(
            f"the checkpoint holds shape {list(value.shape)} but the array to restore into "
            f"has shape {list(target.shape)}",
            path=reader.prefix,
            tensor=key,
        )
    if not target.flags.writeable:
        raise InvalidArgumentError(
            "the array to restore into is read-only",
            path=reader.prefix,
            tensor=key,
        )
    return value


def _describe(obj: Any) -> str:
    if isinstance(obj, np.ndarray):
        return f"array(shape={list(obj.shape)}, dtype={obj.dtype})"
    return repr(obj)


def restore_objects(reader: CheckpointReader, root: Any) -> CheckpointLoadStatus:
    """Restores ``root`` (node 0 of the object graph) and what hangs from it from ``reader``;
    the status says what matched.

    Raises:
        CheckpointError: the checkpoint cannot be read or a value does not fit its target;
            nothing is assigned then.
    """
    restoration = Restoration(reader)
    restoration.bind(root, 0)
    return CheckpointLoadStatus(restoration, root)


class CheckpointLoadStatus:
    """What ``Checkpoint.restore``/``read`` matched, with TensorFlow's assertions."""

    def __init__(self, restoration: Restoration, root: Any) -> None:
        self._restoration = restoration
        self._root = root

    @functools.cached_property
    def _parents(self) -> dict[int, tuple[int, str]]:
        """Each node's parent and local name, breadth-first from the root (made once, in
        linear time: a graph may be 100k nodes deep or wide)."""
        parents: dict[int, tuple[int, str]] = {}
        nodes = self._restoration.proto.nodes
        queue = deque([0])
        while queue:
            current = queue.popleft()
            for ref in nodes[current].children:
                if ref.node_id != 0 and ref.node_id not in parents:
                    parents[ref.node_id] = (current, ref.local_name)
                    queue.append(ref.node_id)
        return parents

    def _node_name(self, node_id: int) -> str:
        """A readable path of a checkpoint node (breadth-first, like TF's pretty printer)."""
        if node_id == 0:
            return "(root)"
        if node_id not in self._parents:
            return f"(node {node_id})"
        names = []
        while node_id != 0:
            node_id, name = self._parents[node_id]
            names.append(name)
        return ".".join(reversed(names))

    def _unmatched_python_objects(self) -> list[Any]:
        matched = {id(o) for o in self._restoration.matched.values()}
        return [
            n.obj for n in graph.collect(self._root) if n.attributes and id(n.obj) not in matched
        ]

    def assert_existing_objects_matched(self) -> CheckpointLoadStatus:
        """Every value-holding object now in the Python graph got a checkpointed value."""
        unused = self._unmatched_python_objects()
        if unused:
            shown = [_describe(o) for o in unused[:10]]
            raise AssertionError(
                f"Found {len(unused)} Python objects that were not bound to checkpointed "
                f"values, likely due to changes in the Python program. Showing "
                f"{len(shown)} of {len(unused)} unmatched objects: {shown}"
            )
        return self

    def assert_consumed(self) -> CheckpointLoadStatus:
        """Every value in the checkpoint was restored and every object got one."""
        self.assert_existing_objects_matched()
        restoration = self._restoration
        for node_id, node in enumerate(restoration.proto.nodes):
            if node.attributes and node_id not in restoration.matched:
                raise AssertionError(
                    f"Unresolved object in checkpoint {self._node_name(node_id)}: "
                    f"{[a.checkpoint_key for a in node.attributes]}"
                )
        if restoration.unused_attributes:
            lines = [
                f"{self._node_name(i)}: {names}"
                for i, names in restoration.unused_attributes.items()
            ]
            raise AssertionError(
                "Unused attributes in these objects (the attributes exist in the checkpoint "
                "but were not restored):\n" + "\n".join(lines)
            )
        return self

    def assert_nontrivial_match(self) -> CheckpointLoadStatus:
        """Something besides the root matched a checkpointed value."""
        if len(self._restoration.matched) <= 1:
            unused = self._unmatched_python_objects()
            raise AssertionError(
                "Nothing except the root object matched a checkpointed value. Typically this "
                "means that the checkpoint does not match the Python program. The following "
                f"objects have no matching checkpointed value: {[_describe(o) for o in unused]}"
            )
        return self

    def expect_partial(self) -> CheckpointLoadStatus:
        """Silences nothing (tfckpt never warns about unrestored values); for TF parity."""
        return self

    def run_restore_ops(self, session: Any = None) -> None:
        """Restoration is eager; nothing to run."""

    def initialize_or_restore(self, session: Any = None) -> None:
        """Restoration is eager; nothing to run."""


class InitializationOnlyStatus:
    """The status of ``restore(None)``: nothing was restored."""

    _MESSAGE = "No checkpoint specified (save_path=None); nothing is being restored."

    def assert_consumed(self) -> InitializationOnlyStatus:
        raise AssertionError(self._MESSAGE)

    def assert_existing_objects_matched(self) -> InitializationOnlyStatus:
        raise AssertionError(self._MESSAGE)

    def assert_nontrivial_match(self) -> InitializationOnlyStatus:
        raise AssertionError(self._MESSAGE)

    def expect_partial(self) -> InitializationOnlyStatus:
        return self

    def run_restore_ops(self, session: Any = None) -> None:
        """Nothing to run."""

    def initialize_or_restore(self, session: Any = None) -> None:
        """Nothing to run."""
