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

Values are fetched in bulk: the walk of the graph only records which checkpoint keys it
needs, and :func:`read_values` reads them all with the reader's many-tensor read (for a
remote checkpoint, neighbouring byte ranges coalesce into a few large requests instead of
one request per variable; locally, memory-map views).  NumpyState's ``.npy`` bytes are the
exception: zero-copy views of their scalar strings, one read each.

A checkpoint without an object graph (``tf.compat.v1.train.Saver``'s) is restored by
variable name instead (:mod:`tfckpt.objects.name_based`), as TensorFlow's
``TrackableSaver.restore`` falls back to ``_NameBasedRestoreCoordinator``;
:func:`tfckpt.objects.restore_entry.restore_objects` chooses.

Unrestored values are reported when a restoration is garbage collected, as TensorFlow's
``_CheckpointRestoreCoordinatorDeleter`` does: a ``logging.warning`` on the ``tfckpt``
logger per checkpoint value no object took, unless ``status.expect_partial()`` was called.
"""

from __future__ import annotations

import functools
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tfckpt import dtypes
from tfckpt.errors import CheckpointError, DataLossError, InvalidArgumentError, UnsupportedError
from tfckpt.objects import graph, trackable
from tfckpt.objects.keys import OBJECT_GRAPH_KEY, VARIABLE_VALUE
from tfckpt.proto import trackable_object_graph_pb2
from tfckpt.reader import CheckpointReader

ObjectGraph = trackable_object_graph_pb2.TrackableObjectGraph
ObjectNode = ObjectGraph.TrackableObject
SerializedTensor = ObjectNode.SerializedTensor

# Where the reports of unrestored values go (TensorFlow logs them with logging.warning).
log = logging.getLogger("tfckpt")


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


def read_values(
    reader: CheckpointReader,
    keys: Iterable[str],
    *,
    views: Iterable[str] = (),
    copy: bool = False,
) -> dict[tuple[str, bool], Any]:
    """The values of ``keys`` in one bulk read, keyed ``(key, False)``, plus those of
    ``views`` as zero-copy byte views, keyed ``(key, True)``.

    ``keys`` are read with :meth:`~tfckpt.reader.CheckpointReader.get_tensors` (so a remote
    checkpoint costs a few coalesced ranged requests, not one per key; ``copy=False``:
    memory-map views of local files, owned arrays of remote ones).  Each of ``views`` is a
    scalar string read with ``get_bytes_view`` (no copy of large ``.npy`` bytes); one that
    is not a scalar string is read with the others instead, under ``(key, True)`` too.
    Duplicates are read once.  The keys must exist (callers check ``has_tensor`` first, to
    name what refers to a missing one).

    Raises:
        DataLossError, CheckpointNotFoundError, UnsupportedError: as the reader's reads.

    Example::

        values = read_values(reader, ["dense/kernel", "dense/bias"])
        kernel = values["dense/kernel", False]
    """
    wanted = dict.fromkeys(keys)
    out: dict[tuple[str, bool], Any] = {}
    fallback = []
    for key in dict.fromkeys(views):
        try:
            out[key, True] = reader.get_bytes_view(key)
        except InvalidArgumentError:  # not a scalar string: the restore hook reports it
            fallback.append(key)
            wanted[key] = None
    values = reader.get_tensors(list(wanted), copy=copy)
    out.update(((key, False), values[key]) for key in wanted)
    out.update(((key, True), values[key]) for key in fallback)
    return out


@dataclass(slots=True)
class _Read:
    """A planned restore of one attribute, waiting for the bulk read of its value."""

    obj: Any
    node_id: int
    attribute: str
    key: str
    as_bytes: bool  # restored from a view of its scalar string's bytes


class Restoration:
    """One ``restore()``/``read()`` call: the checkpoint and what has been matched so far."""

    def __init__(self, reader: CheckpointReader) -> None:
        self.reader = reader
        self.path = reader.prefix
        self.proto = read_object_graph(reader)
        self.matched: dict[int, Any] = {}
        self.unused_attributes: dict[int, list[str]] = {}
        # While binding: the reads and actions to check, then apply, in order of the walk.
        self._plan: list[Callable[[], None] | _Read] | None = None
        # Reports what was left unrestored when the restoration is collected (shares the
        # two dicts above, which are therefore only ever changed in place).
        self._report = _UnrestoredReport(self.proto, self.matched, self.unused_attributes)

    def expect_partial(self) -> None:
        """No report of unrestored values when this restoration is collected."""
        self._report.silenced = True

    def bind(self, obj: Any, node_id: int) -> None:
        """Matches ``obj`` to checkpoint node ``node_id``, restores it and its children.

        Everything is read (in one bulk read) and checked before anything is assigned.

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
            plan = self._checked(self._plan)
        except BaseException as exc:
            self.matched.clear()
            self.matched.update(matched)
            self.unused_attributes.clear()
            self.unused_attributes.update(unused)
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

    def _planned(self, step: Callable[[], None] | _Read) -> None:
        assert self._plan is not None
        self._plan.append(step)

    def _restore_attributes(self, obj: Any, node_id: int, node: ObjectNode) -> None:
        if not node.attributes:
            return
        if isinstance(obj, np.ndarray):
            accepted: tuple[str, ...] = (VARIABLE_VALUE,)
        else:
            accepted = tuple(getattr(obj, "_tfckpt_restorable_attributes", tuple)())
        as_bytes = getattr(obj, "_tfckpt_bytes_attributes", ())
        unused = []
        for attribute in node.attributes:
            if attribute.name not in accepted:
                unused.append(attribute.name)
                continue
            key = attribute.checkpoint_key
            if not self.reader.has_tensor(key):
                raise missing_value(self.path, node_id, attribute)
            self._planned(_Read(obj, node_id, attribute.name, key, attribute.name in as_bytes))
        if unused:
            self.unused_attributes[node_id] = unused

    def _checked(self, plan: list[Callable[[], None] | _Read]) -> list[Callable[[], None]]:
        """The plan's reads fetched in bulk and checked, as assignments, in order."""
        reads = [step for step in plan if isinstance(step, _Read)]
        values = read_values(
            self.reader,
            (r.key for r in reads if not r.as_bytes),
            views=(r.key for r in reads if r.as_bytes),
        )
        out: list[Callable[[], None]] = []
        for step in plan:
            if not isinstance(step, _Read):
                out.append(step)
                continue
            # Views of the memory map (no copy): assign() and the restore hooks copy what
            # they keep.  NumpyState's .npy bytes are parsed straight from the map.
            obj, key, value = step.obj, step.key, values[step.key, step.as_bytes]
            if isinstance(obj, np.ndarray):
                checked = checked_value(obj, value, key, self.reader)
                out.append(functools.partial(_assign_checked, obj, checked))
            elif hasattr(obj, "_tfckpt_prepare_restore"):
                out.append(obj._tfckpt_prepare_restore(step.attribute, value, self.path, key))
            else:
                restore = obj._tfckpt_restore
                out.append(functools.partial(restore, step.attribute, value, self.path, key))
        return out


class _UnrestoredReport:
    """Logs, when collected, the checkpoint values a restoration left unrestored, as
    TensorFlow's ``_CheckpointRestoreCoordinatorDeleter.__del__`` does (same messages,
    tensorflow/python/checkpoint/checkpoint.py), unless ``silenced`` (expect_partial).

    A separate object from the Restoration, as in TensorFlow, so that collecting it needs
    no finalizer on the Restoration itself; it holds the graph and the two dicts the
    Restoration updates in place.
    """

    __slots__ = ("matched", "proto", "silenced", "unused_attributes")

    def __init__(
        self, proto: ObjectGraph, matched: dict[int, Any], unused: dict[int, list[str]]
    ) -> None:
        self.proto = proto
        self.matched = matched
        self.unused_attributes = unused
        self.silenced = False

    def lines(self) -> list[str]:
        """The report's lines (empty when every value was restored); at most
        ``REPORT_LINES`` values of each kind are named, then how many more there are."""
        nodes = self.proto.nodes
        unused_nodes = [
            i for i, node in enumerate(nodes) if node.attributes and i not in self.matched
        ]
        if not unused_nodes and not self.unused_attributes:
            return []
        name = _NodeNames(self.proto)
        lines = [
            "Detecting that an object or model or tfckpt.Checkpoint is being deleted with "
            "unrestored values. See the following logs for the specific values in question. "
            "To silence these warnings, use `status.expect_partial()`. See "
            "https://www.tensorflow.org/api_docs/python/tf/train/Checkpoint#restore "
            "for details about the status object returned by the restore function."
        ]
        lines.extend(
            f"Value in checkpoint could not be found in the restored object: {name(i)}"
            for i in unused_nodes[:REPORT_LINES]
        )
        if len(unused_nodes) > REPORT_LINES:
            lines.append(f"... and {len(unused_nodes) - REPORT_LINES} more values")
        unused = list(self.unused_attributes.items())
        lines.extend(
            "An attribute in the restored object could not be found in the checkpoint. "
            f"Object: {name(i)}, attribute: {attributes}"
            for i, attributes in unused[:REPORT_LINES]
        )
        if len(unused) > REPORT_LINES:
            lines.append(f"... and {len(unused) - REPORT_LINES} more objects")
        return lines

    def __del__(self) -> None:
        if self.silenced or not log.isEnabledFor(logging.WARNING):
            return
        try:
            for line in self.lines():
                log.warning("%s", line)
        except Exception:  # at interpreter exit, logging may be torn down already
            pass


# How many unrestored values (and objects with unrestored attributes) a report names, and
# how many local names of a path it spells out: a hostile graph may be 100k nodes wide or
# deep (TensorFlow names them all; a report here stays small whatever the graph).
REPORT_LINES = 100
NAME_PARTS = 64


class _NodeNames:
    """TensorFlow's pretty names of graph nodes, one at a time: ``(root).model.dense.kernel``
    along the breadth-first spanning tree; slot variables as ``<optimizer>'s state '<slot>'
    for <variable>`` (ObjectGraphProtoPrettyPrinter in
    tensorflow/python/checkpoint/checkpoint.py).  Nodes not reached from the root are
    ``(node N)``; a path of more than ``NAME_PARTS`` names is shortened in its middle."""

    def __init__(self, proto: ObjectGraph) -> None:
        nodes = proto.nodes
        self._parents: dict[int, tuple[int, str]] = {}
        queue = deque([0])
        while queue:
            current = queue.popleft()
            for ref in nodes[current].children:
                if ref.node_id != 0 and ref.node_id not in self._parents:
                    self._parents[ref.node_id] = (current, ref.local_name)
                    queue.append(ref.node_id)
        self._slots: dict[int, tuple[int, str, int]] = {}
        for node_id, node in enumerate(nodes):
            for slot in node.slot_variables:
                self._slots[slot.slot_variable_node_id] = (
                    node_id,
                    slot.slot_name,
                    slot.original_variable_node_id,
                )

    def __call__(self, node_id: int) -> str:
        slot = self._slots.get(node_id)
        if slot is not None:
            owner, slot_name, original = slot
            return f"{self._path(owner)}'s state '{slot_name}' for {self._path(original)}"
        return self._path(node_id)

    def _path(self, node_id: int) -> str:
        if node_id != 0 and node_id not in self._parents:
            return f"(node {node_id})"
        names = []
        while node_id != 0:
            node_id, name = self._parents[node_id]
            names.append(name)
        names.append("(root)")
        names.reverse()
        if len(names) > NAME_PARTS:
            half = NAME_PARTS // 2
            hidden = len(names) - 2 * half
            names = [*names[:half], f"({hidden} more)", *names[-half:]]
        return ".".join(names)


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


class LoadStatus:
    """The status of a restore, with TensorFlow's assertions (``_LoadStatus`` in
    tensorflow/python/checkpoint/checkpoint.py): each raises AssertionError when the
    restore did not match as it asserts, and returns the status otherwise."""

    def assert_consumed(self) -> LoadStatus:
        raise NotImplementedError

    def assert_existing_objects_matched(self) -> LoadStatus:
        raise NotImplementedError

    def assert_nontrivial_match(self) -> LoadStatus:
        raise NotImplementedError

    def expect_partial(self) -> LoadStatus:
        """Silences warnings about incomplete restores."""
        return self

    def run_restore_ops(self, session: Any = None) -> None:
        """Restoration is eager; nothing to run."""

    def initialize_or_restore(self, session: Any = None) -> None:
        """Restoration is eager; nothing to run."""


class CheckpointLoadStatus(LoadStatus):
    """What ``Checkpoint.restore``/``read`` matched through the object graph, with
    TensorFlow's assertions.

    When the restoration is garbage collected (this status and every deferred restoration
    of it gone), the checkpoint values no object took are logged as warnings on the
    ``tfckpt`` logger, as TensorFlow does, unless :meth:`expect_partial` was called.
    """

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
        """Silences the warnings about unrestored values logged when the restoration is
        collected (a partial restore is expected: loading a model for inference without
        its optimizer, say).

        Example::

            checkpoint.restore(path).expect_partial()
        """
        self._restoration.expect_partial()
        return self


class InitializationOnlyStatus(LoadStatus):
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
