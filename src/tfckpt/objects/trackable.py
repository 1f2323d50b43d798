"""What tfckpt can put in an object-based checkpoint, and how it is walked.

TensorFlow tracks ``Trackable`` objects; tfckpt's equivalents are:

* ``numpy.ndarray``: a variable (attribute ``VARIABLE_VALUE``), restored in place;
* ``dict`` / ``list`` / ``tuple``: TensorFlow's automatic dict and list wrappers, whose
  children are named by key or index (python/trackable/data_structures.py);
* objects implementing the small protocol below: ``Checkpoint``, ``NumpyState`` and its
  per-attribute wrappers.

Protocol (all optional except ``_tfckpt_children``)::

    _tfckpt_children() -> list[(local_name, child)]
    _tfckpt_lookup(local_name, attributes) -> child or None   # may create the child
    _tfckpt_defer(local_name, callback)                        # restore-on-attach
    _tfckpt_attributes() -> dict[attribute_name, (full_name, value_fn)]
    _tfckpt_restore(attribute_name, value, path, key)   # value may be a read-only view of
                                             # the checkpoint's memory map: copy what you
                                             # keep; path and checkpoint key for errors
    _tfckpt_prepare_restore(attribute_name, value, path, key) -> apply()
                                             # the same in two steps: check and decode now
                                             # (raise here), assign in apply(), called only
                                             # once the whole restore has been checked
    _tfckpt_bytes_attributes: tuple[str, ...]  # attributes restored as a memoryview of
                                               # their scalar string's bytes
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tfckpt.errors import InvalidArgumentError


def is_trackable(value: Any) -> bool:
    """True for values that become nodes of the object graph."""
    if isinstance(value, np.ndarray):
        return True
    if isinstance(value, (dict, list, tuple)):
        return True
    return hasattr(value, "_tfckpt_children")


def check_child(value: Any, what: str) -> None:
    """Raises a clear error for values that cannot be checkpoint children (``what`` names
    the Python attribute or object path, e.g. ``"Checkpoint attribute 'model'"``)."""
    if isinstance(value, np.generic):
        raise InvalidArgumentError(
            f"{what}: NumPy scalar {value!r} cannot be restored in place; use a 0-d array "
            "(numpy.array(x)) or put it in a tfckpt.NumpyState"
        )
    if not is_trackable(value):
        raise InvalidArgumentError(
            f"{what}: {type(value).__name__} is not checkpointable; use NumPy arrays, "
            "NumpyState, Checkpoint objects, or dicts/lists/tuples of them"
        )


def children(obj: Any) -> list[tuple[str, Any]]:
    """The named children of ``obj`` in TensorFlow's order."""
    if isinstance(obj, np.ndarray):
        return []
    if isinstance(obj, dict):
        out = []
        for key, value in obj.items():
            if not is_trackable(value):
                continue  # TensorFlow's dict wrapper ignores untrackable values too
            if not isinstance(key, str):
                raise InvalidArgumentError(
                    f"dict key {key!r} maps to a checkpointable value but is not a string; "
                    "TensorFlow can only save dicts with string keys"
                )
            out.append((key, value))
        return out
    if isinstance(obj, (list, tuple)):
        return [(str(i), v) for i, v in enumerate(obj) if is_trackable(v)]
    return list(obj._tfckpt_children())


def lookup(obj: Any, name: str, attributes: set[str]) -> Any:
    """The child of ``obj`` called ``name`` (or None); ``attributes`` are those the
    checkpoint stores for that child, for objects that create children on restore."""
    if isinstance(obj, dict):
        value = obj.get(name)
        return value if is_trackable(value) else None
    if isinstance(obj, (list, tuple)):
        if name.isdigit() and int(name) < len(obj) and is_trackable(obj[int(name)]):
            return obj[int(name)]
        return None
    finder = getattr(obj, "_tfckpt_lookup", None)
    if finder is not None:
        return finder(name, attributes)
    for child_name, child in children(obj):
        if child_name == name:
            return child
    return None
