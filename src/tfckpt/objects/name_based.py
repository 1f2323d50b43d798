"""Restoring name-based (TF1) checkpoints into tfckpt objects, matching values by name.

A checkpoint written by ``tf.compat.v1.train.Saver`` (V1 or V2 format, sharded or not) has
no ``_CHECKPOINTABLE_OBJECT_GRAPH``: its keys are the global names of the variables
(``model/dense/kernel``).  ``tf.train.Checkpoint.restore`` then falls back to matching
each variable by that name (``_NameBasedRestoreCoordinator`` and ``NameBasedSaverStatus``
in tensorflow/python/checkpoint/checkpoint.py; names from ``op_list_to_dict`` in
python/training/saving/saveable_object_util.py).  tfckpt does the same
(:func:`~tfckpt.objects.restore_entry.restore_objects` chooses), with these names:

* A NumPy array has no variable name: its name is its attribute path from the root, the
  local names joined by ``/`` (not escaped: the path *is* the name).  ``Checkpoint(w=a)``
  matches key ``w``; ``Checkpoint(model={"dense": {"kernel": k}})`` matches
  ``model/dense/kernel``; a list's items are named by index (``layers/0/kernel``); a dict
  key holding ``/`` spells several levels at once (``{"dense/kernel": k}``).  An object
  reachable along several paths is named by the first one, breadth-first (the path that
  gives it its key in an object-based checkpoint).
* A ``NumpyState`` at path ``P``: its attribute ``x`` is named ``P/x`` and restored as its
  object-based restore does, by replacement (the checkpoint's dtype and shape).  Keys
  ``P/<name>`` (one more level) naming a numeric tensor that the state has no attribute
  for create that attribute, as its object-based restore creates the attributes it finds.
  String tensors cannot be NumpyState attributes: restoring one into an existing
  attribute is an InvalidArgumentError; none is created.
* Objects with the ``_tfckpt_attributes`` protocol (:mod:`tfckpt.objects.trackable`): each
  attribute is matched by its full name, when it has one (without one, it cannot be
  restored by name: reported unmatched, as TensorFlow does for saveables without a name).
* A ``Checkpoint`` at path ``P`` whose checkpoint holds keys under ``P/<child>`` for a
  child it does not have yet restores that child by name when it is attached (as TF passes
  name-based restores on to dependencies added later).  Its ``save_counter`` is optional
  (TensorFlow's ``Checkpoint.restore`` adds it to ``add_to_optionally_restored``): a
  checkpoint without that key does not fail the assertions.

Checkpoint keys that no object asks for are ignored, as in TensorFlow (its name-based
status does not look at them); partitioned variables are assembled by the reader.  A
restore is atomic, like the object-based one: every matched value is read in one bulk read
(:func:`~tfckpt.objects.restore.read_values`) and checked (dtype, shape, writability)
before any is assigned; when anything fails, nothing is.

The status's three assertions are one (TF: there is no object information to tell them
apart): every object that holds a value got one.  ``expect_partial()`` changes nothing, as
in TensorFlow (no report of unrestored values is logged for a name-based restore); a
warning on the ``tfckpt`` logger says that a name-based checkpoint is being restored, as
TensorFlow's deprecation warning does.
"""

from __future__ import annotations

import bisect
import functools
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from tfckpt.errors import CheckpointError, InvalidArgumentError
from tfckpt.objects import graph, trackable
from tfckpt.objects.keys import SAVE_COUNTER
from tfckpt.objects.numpy_state import NumpyState
from tfckpt.objects.restore import (
    LoadStatus,
    _assign_checked,
    _describe,
    _nothing_restored,
    checked_value,
    log,
    read_values,
)
from tfckpt.reader import CheckpointReader

Path = tuple[str, ...]

# Tensors that no NumPy array holds by value (not created as NumpyState attributes).
_NOT_NUMERIC = ("string", "variant", "resource")

# TensorFlow's _DEPRECATED_RESTORE_INSTRUCTIONS, for tfckpt.
_NAME_BASED_WARNING = (
    "Restoring a name-based tf.compat.v1.train.Saver checkpoint (%s) with the object-based "
    "restore API: values are matched by variable name (each array's attribute path from "
    "the root, joined by '/'), which is somewhat fragile. Prefer re-encoding it in the "
    "object-based format: save() it with this Checkpoint and use that checkpoint in the "
    "future."
)


def variable_name(path: Path) -> str:
    """The name an object at ``path`` is matched by: ``('model', 'dense', 'kernel')`` ->
    ``'model/dense/kernel'``."""
    return "/".join(path)


def restore_by_name(reader: CheckpointReader, root: Any) -> NameBasedSaverStatus:
    """Restores ``root`` and what hangs from it from the name-based checkpoint ``reader``,
    matching by name (see the module); the status says what matched.

    Raises:
        InvalidArgumentError: a value does not fit its object (dtype, shape, read-only, a
            string for a NumpyState attribute).
        DataLossError, CheckpointNotFoundError: a value is corrupt or its file missing.
        Either way nothing was assigned, and the message says so.

    Example::

        with tfckpt.load_checkpoint("tf1/model.ckpt-100") as reader:
            restore_by_name(reader, tfckpt.Checkpoint(w=np.zeros(3))).assert_consumed()
    """
    log.warning(_NAME_BASED_WARNING, reader.prefix)
    restoration = NameBasedRestoration(reader)
    restoration.bind(root, ())
    return NameBasedSaverStatus(restoration, root)


@dataclass(slots=True)
class _Read:
    """A planned restore of one value, waiting for the bulk read."""

    kind: str  # "array" (in place), "state" (a NumpyState attribute), "hook" (protocol)
    obj: Any
    attribute: str  # the NumpyState or protocol attribute ("" for arrays)
    key: str


class NameBasedRestoration:
    """One restore of a name-based checkpoint: what was visited and what did not match.

    ``bind(obj, path)`` restores ``obj`` as if at ``path``; Checkpoints call it again for
    children attached later (the ``_tfckpt_defer`` protocol, with the path as node id).
    """

    def __init__(self, reader: CheckpointReader) -> None:
        self.reader = reader
        self.path = reader.prefix
        self._keys = sorted(reader.keys())  # for the keys under a path (bisect)
        # Objects visited (restored, or found to have no value): id -> object (kept alive,
        # so that ids stay unique).
        self.visited: dict[int, Any] = {}
        # Objects whose names the checkpoint does not hold: id -> (object, path, names).
        self.unmatched: dict[int, tuple[Any, Path, list[str]]] = {}
        self._plan: list[Callable[[], None] | _Read] | None = None
        self._journal: list[int] = []  # ids visited by the bind under way

    def bind(self, obj: Any, path: Path) -> None:
        """Restores ``obj``, named as if at ``path``, and what hangs from it.

        Raises:
            As :func:`restore_by_name`; nothing was assigned then.
        """
        if self._plan is not None:  # within the bind that plans it
            self._walk(obj, path)
            return
        self._plan, self._journal = [], []
        try:
            self._walk(obj, path)
            plan = self._checked(self._plan)
        except BaseException as exc:
            for object_id in self._journal:
                self.visited.pop(object_id, None)
                self.unmatched.pop(object_id, None)
            if isinstance(exc, CheckpointError):
                raise _nothing_restored(exc) from None
            raise
        finally:
            self._plan = None
        for assign_planned in plan:
            assign_planned()

    # -- planning ----------------------------------------------------------------------------

    def _visit(self, obj: Any) -> bool:
        """Marks ``obj`` visited; False when it already was."""
        if id(obj) in self.visited:
            return False
        self.visited[id(obj)] = obj
        self._journal.append(id(obj))
        return True

    def _planned(self, step: Callable[[], None] | _Read) -> None:
        assert self._plan is not None
        self._plan.append(step)

    def _missing(self, obj: Any, path: Path, name: str) -> None:
        self.unmatched.setdefault(id(obj), (obj, path, []))[2].append(name)

    def _walk(self, root: Any, path: Path) -> None:
        """Breadth-first from ``root``: each object once, named by its first path."""
        queue = deque([(root, path)])
        while queue:
            obj, where = queue.popleft()
            if not self._visit(obj):
                continue
            if isinstance(obj, np.ndarray):
                key = variable_name(where)
                if self.reader.has_tensor(key):
                    self._planned(_Read("array", obj, "", key))
                else:
                    self._missing(obj, where, key)
                continue
            if isinstance(obj, NumpyState):
                self._numpy_state(obj, where)
                continue
            children = trackable.children(obj)
            if hasattr(obj, "_tfckpt_attributes"):
                self._attributes(obj, where)
            queue.extend((child, (*where, name)) for name, child in children)
            defer = getattr(obj, "_tfckpt_defer", None)
            if defer is not None:
                present = {name for name, _ in children}
                absent = {rest.split("/", 1)[0] for rest in self._under(where)}
                for name in sorted(absent - present - {""}):
                    self._planned(functools.partial(defer, name, self, (*where, name)))

    def _numpy_state(self, state: NumpyState, where: Path) -> None:
        present = set()
        for name, wrapper in state._tfckpt_children():
            present.add(name)
            self._visit(wrapper)
            key = variable_name((*where, name))
            if not self.reader.has_tensor(key):
                self._missing(wrapper, (*where, name), key)
                continue
            dtype = self.reader.get_dtype(key)
            if dtype.name in _NOT_NUMERIC:
                raise InvalidArgumentError(
                    f"the checkpoint holds a {dtype.name} tensor, which a NumpyState "
                    f"attribute ({name!r}) cannot hold",
                    path=self.path,
                    tensor=key,
                )
            self._planned(_Read("state", state, name, key))
        for rest in self._under(where):
            if rest and "/" not in rest and rest not in present:
                key = variable_name((*where, rest))
                if self.reader.get_dtype(key).name not in _NOT_NUMERIC:
                    self._planned(_Read("state", state, rest, key))

    def _attributes(self, obj: Any, where: Path) -> None:
        accepted = tuple(getattr(obj, "_tfckpt_restorable_attributes", tuple)())
        for attribute, (full_name, _value_fn) in obj._tfckpt_attributes().items():
            if attribute not in accepted or not full_name:
                self._missing(obj, where, attribute)  # no global name to match by
            elif self.reader.has_tensor(full_name):
                self._planned(_Read("hook", obj, attribute, full_name))
            else:
                self._missing(obj, where, full_name)

    def has_key(self, key: str) -> bool:
        """Whether the checkpoint holds ``key`` (also once the reader is closed)."""
        i = bisect.bisect_left(self._keys, key)
        return i < len(self._keys) and self._keys[i] == key

    def _under(self, where: Path) -> Iterator[str]:
        """What follows ``<path>/`` in the keys under ``where`` (every key at the root)."""
        prefix = variable_name(where)
        start = f"{prefix}/" if prefix else ""
        keys = self._keys
        i = bisect.bisect_left(keys, start)
        while i < len(keys) and keys[i].startswith(start):
            yield keys[i][len(start) :]
            i += 1

    # -- checking ----------------------------------------------------------------------------

    def _checked(self, plan: list[Callable[[], None] | _Read]) -> list[Callable[[], None]]:
        """The plan's values fetched in one bulk read and checked, as assignments."""
        values = read_values(self.reader, (s.key for s in plan if isinstance(s, _Read)))
        out: list[Callable[[], None]] = []
        for step in plan:
            if not isinstance(step, _Read):
                out.append(step)
                continue
            value = values[step.key, False]
            if step.kind == "array":
                checked = checked_value(step.obj, value, step.key, self.reader)
                out.append(functools.partial(_assign_checked, step.obj, checked))
            elif step.kind == "state":
                # An owned copy (the value may be a view of the memory map).
                array = np.array(value)
                out.append(functools.partial(self._set_state, step.obj, step.attribute, array))
            elif hasattr(step.obj, "_tfckpt_prepare_restore"):
                out.append(
                    step.obj._tfckpt_prepare_restore(step.attribute, value, self.path, step.key)
                )
            else:
                restore = step.obj._tfckpt_restore
                out.append(functools.partial(restore, step.attribute, value, self.path, step.key))
        return out

    def _set_state(self, state: NumpyState, name: str, array: np.ndarray) -> None:
        setattr(state, name, array)
        wrapper = trackable.lookup(state, name, set())
        if wrapper is not None:  # (a created attribute's wrapper is new: visited now)
            self.visited[id(wrapper)] = wrapper


def _where(path: Path) -> str:
    return variable_name(path) or "(root)"


def _describe_value(obj: Any) -> str:
    if isinstance(obj, np.ndarray):
        return _describe(obj)
    array = getattr(obj, "array", None)  # a NumpyState attribute's wrapper
    if isinstance(array, (np.ndarray, np.generic)):
        return f"NumpyState attribute, {_describe(np.asarray(array))}"
    return repr(obj)


class NameBasedSaverStatus(LoadStatus):
    """What a restore of a name-based checkpoint matched, with TensorFlow's assertions
    (``NameBasedSaverStatus``): all three assert that every object holding a value got one
    from the checkpoint (the save counter excepted)."""

    def __init__(self, restoration: NameBasedRestoration, root: Any) -> None:
        self._restoration = restoration
        self._root = root

    def assert_consumed(self) -> NameBasedSaverStatus:
        """Every value-holding object now in the Python graph got a value by its name.

        Raises:
            AssertionError: listing the objects whose names the checkpoint does not hold
                (``Some objects had attributes which were not restored``), or naming an
                object attached since the restore that it did not reach (``Object not
                restored``), as TensorFlow's.

        Example::

            tfckpt.Checkpoint(w=np.zeros(3)).restore("tf1/model.ckpt").assert_consumed()
        """
        nodes = graph.collect(self._root)
        optional = {  # the save counters (TF: add_to_optionally_restored(save_counter))
            id(nodes[child].obj)
            for node in nodes
            if hasattr(node.obj, "_tfckpt_defer")
            for name, child in node.children
            if name == SAVE_COUNTER
        }
        restoration = self._restoration
        unused = [
            entry for object_id, entry in restoration.unmatched.items() if object_id not in optional
        ]
        # Objects attached since the restore that it never reached: those whose names the
        # checkpoint does not hold are reported as unmatched too (TensorFlow restores a
        # dependency added later by name, and finds it missing then), the others as not
        # restored.
        not_restored = []
        for node in nodes:
            object_id = id(node.obj)
            if node.attributes and object_id not in restoration.visited:
                if object_id in optional:
                    continue
                name = variable_name(node.path)
                if restoration.has_key(name):
                    not_restored.append(node)
                else:
                    unused.append((node.obj, node.path, [name]))
        if unused:
            listed = "".join(
                f"\n    {_where(path)} ({_describe_value(obj)}): {names}"
                for obj, path, names in unused
            )
            raise AssertionError(f"Some objects had attributes which were not restored: {listed}")
        if not_restored:
            node = not_restored[0]
            raise AssertionError(
                f"Object not restored: {_where(node.path)} ({_describe_value(node.obj)})"
            )
        return self

    def assert_existing_objects_matched(self) -> NameBasedSaverStatus:
        """As :meth:`assert_consumed` (a name-based checkpoint has no objects to tell
        existing ones from)."""
        return self.assert_consumed()

    def assert_nontrivial_match(self) -> NameBasedSaverStatus:
        """As :meth:`assert_consumed`, as in TensorFlow."""
        return self.assert_consumed()
