"""``tfckpt.Checkpoint``: TensorFlow's object-based checkpoints without TensorFlow.

Mirrors ``tf.train.Checkpoint`` (tensorflow/python/checkpoint/checkpoint.py): children are
tracked in sorted keyword order and then in order of attachment; ``save()`` numbers
checkpoints with a ``save_counter`` (an int64 stored as a variable under
``save_counter/.ATTRIBUTES/VARIABLE_VALUE``) and updates the ``checkpoint`` state file;
``write()`` does neither; ``restore()``/``read()`` match values through the object graph.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from tfckpt.bundle.writer import BundleWriter
from tfckpt.checkpoint_state import write_state
from tfckpt.objects import graph, trackable
from tfckpt.objects.keys import OBJECT_GRAPH_KEY, SAVE_COUNTER
from tfckpt.objects.restore import CheckpointLoadStatus, InitializationOnlyStatus, Restoration
from tfckpt.reader import load_checkpoint


def write_objects(root: Any, file_prefix: str | os.PathLike[str]) -> str:
    """Writes the object graph under ``root`` and its values as a V2 checkpoint."""
    nodes = graph.collect(root)
    proto = graph.to_proto(nodes)
    with BundleWriter(file_prefix) as writer:
        writer.add_many(
            (key, value_fn())
            for node in nodes
            for _full_name, key, value_fn in node.attributes.values()
        )
        writer.add(OBJECT_GRAPH_KEY, proto.SerializeToString(deterministic=True))
    return os.fspath(file_prefix)


class Checkpoint:
    """Groups NumPy arrays, NumpyState objects, dicts/lists of them and other Checkpoints.

    ``Checkpoint(model=..., optimizer=...)`` as in TensorFlow.  Arrays are saved as
    TensorFlow variables and restored in place; NumpyState attributes are re-created.
    """

    # Set through object.__setattr__ (this class's __setattr__ tracks public names only).
    _children: dict[str, Any]  # tracked children, in order of attachment
    _save_counter: np.ndarray | None  # the int64 counter, created on first access
    _deferred: dict[str, list[tuple[Restoration, int]]]  # restorations awaiting a child

    def __init__(self, **kwargs: Any) -> None:
        object.__setattr__(self, "_children", {})
        object.__setattr__(self, "_save_counter", None)
        object.__setattr__(self, "_deferred", {})
        for name, value in sorted(kwargs.items(), key=lambda item: item[0]):
            setattr(self, name, value)

    # -- children -------------------------------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
            return
        if name == SAVE_COUNTER:
            raise AttributeError("save_counter is managed by the Checkpoint")
        trackable.check_child(value, f"Checkpoint attribute {name!r}")
        self._children[name] = value
        object.__setattr__(self, name, value)
        for restoration, node_id in self._deferred.pop(name, []):
            restoration.bind(value, node_id)  # deferred restoration on attach

    def __delattr__(self, name: str) -> None:
        self._children.pop(name, None)
        object.__delattr__(self, name)

    @property
    def save_counter(self) -> int:
        """The number of ``save()`` calls (restored with the checkpoint); created on access,
        as in TensorFlow, so a later ``write()`` stores it."""
        return int(self._counter()[()])

    def _counter(self) -> np.ndarray:
        counter = self._save_counter
        if counter is None:
            counter = np.zeros((), np.int64)
            object.__setattr__(self, "_save_counter", counter)
            # A counter in a checkpoint read before it existed is restored now (TF creates
            # it lazily too, and deferred restoration fills it in).
            for restoration, node_id in self._deferred.pop(SAVE_COUNTER, []):
                restoration.bind(counter, node_id)
        return counter

    def _tfckpt_children(self) -> list[tuple[str, Any]]:
        children = list(self._children.items())
        if self._save_counter is not None:
            children.append((SAVE_COUNTER, self._save_counter))
        return children

    def _tfckpt_lookup(self, name: str, attributes: set[str]) -> Any:
        if name == SAVE_COUNTER:
            return self._save_counter  # None until created: restored when it is
        return self._children.get(name)

    def _tfckpt_defer(self, name: str, restoration: Restoration, node_id: int) -> None:
        self._deferred.setdefault(name, []).append((restoration, node_id))

    # -- saving ---------------------------------------------------------------------------

    def write(self, file_prefix: str | os.PathLike[str], options: Any = None) -> str:
        """Writes a checkpoint at exactly ``file_prefix``; no counter, no state file."""
        return write_objects(self, file_prefix)

    def save(self, file_prefix: str | os.PathLike[str], options: Any = None) -> str:
        """Writes ``<file_prefix>-<n>`` with the incremented save counter and records it in
        the directory's ``checkpoint`` state file; returns the path."""
        counter = self._counter()
        counter[()] += 1
        path = f"{os.fspath(file_prefix)}-{int(counter)}"
        try:
            write_objects(self, path)
        except BaseException:
            counter[()] -= 1
            raise
        directory = os.path.dirname(path)
        relative = os.path.relpath(path, directory or ".")
        write_state(directory or ".", relative, [relative])
        return path

    # -- restoring ------------------------------------------------------------------------

    def read(self, save_path: str | os.PathLike[str], options: Any = None) -> CheckpointLoadStatus:
        """Restores values matched through the object graph (no save counter creation)."""
        with load_checkpoint(save_path) as reader:
            restoration = Restoration(reader)
            restoration.bind(self, 0)
        return CheckpointLoadStatus(restoration, self)

    def restore(
        self, save_path: str | os.PathLike[str] | None, options: Any = None
    ) -> CheckpointLoadStatus | InitializationOnlyStatus:
        """Restores a checkpoint (prefix, directory with a state file, or SavedModel).

        ``restore(None)`` does nothing and returns a status whose assertions fail, as in
        TensorFlow.  Values for children attached later are restored when attached.
        """
        if save_path is None:
            return InitializationOnlyStatus()
        status = self.read(save_path, options)
        self._counter()
        return status

    def __repr__(self) -> str:
        return f"Checkpoint({', '.join(self._children)})"
