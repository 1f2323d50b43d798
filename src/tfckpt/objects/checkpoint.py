"""``tfckpt.Checkpoint``: TensorFlow's object-based checkpoints without TensorFlow.

Mirrors ``tf.train.Checkpoint`` (tensorflow/python/checkpoint/checkpoint.py): children are
tracked in sorted keyword order and then in order of attachment; ``save()`` numbers
checkpoints with a ``save_counter`` (an int64 stored as a variable under
``save_counter/.ATTRIBUTES/VARIABLE_VALUE``) and updates the ``checkpoint`` state file;
``write()`` does neither; ``restore()``/``read()`` match values through the object graph.

Saving replaces files all or none (:mod:`tfckpt.storage.commit`): a crash leaves the old
checkpoint or the new one; ``durable=True`` also makes it survive a power loss before the
state file names it.  Restoring reads and checks every value before assigning any
(:mod:`tfckpt.objects.restore`): a failed restore changes nothing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from tfckpt.bundle.claim import remove_checkpoint_files, tidy_prefixes
from tfckpt.bundle.writer import BundleWriter
from tfckpt.checkpoint_state import check_state_path, read_state, state_lock, write_state
from tfckpt.errors import CheckpointError
from tfckpt.objects import graph, trackable
from tfckpt.objects.keys import OBJECT_GRAPH_KEY, SAVE_COUNTER
from tfckpt.objects.restore import (
    CheckpointLoadStatus,
    InitializationOnlyStatus,
    Restoration,
    restore_objects,
)
from tfckpt.reader import load_checkpoint

# How long Checkpoint.save waits for another writer of the state file (a CheckpointManager
# saving in the same directory holds it throughout its save).
_STATE_WAIT_SECONDS = 10.0


def write_objects(root: Any, file_prefix: str | os.PathLike[str], *, durable: bool = False) -> str:
    """Writes the object graph under ``root`` and its values as a V2 checkpoint.

    Raises:
        As :class:`~tfckpt.bundle.writer.BundleWriter`.
    """
    nodes = graph.collect(root)
    proto = graph.to_proto(nodes)
    with BundleWriter(file_prefix, durable=durable) as writer:
        writer.add_many(
            (key, value_fn())
            for node in nodes
            for _full_name, key, value_fn in node.attributes.values()
        )
        writer.add(OBJECT_GRAPH_KEY, proto.SerializeToString(deterministic=True))
    return os.fspath(file_prefix)


def _discard_unrecorded(directory: str, path: str) -> None:
    """Removes the checkpoint a save wrote when it could not be recorded in the state file,
    unless the state file names it already (it replaced the latest checkpoint); best
    effort, the save's own error is the one to report."""
    with contextlib.suppress(OSError, CheckpointError):
        state = read_state(directory)
        named = state.model_checkpoint_path if state is not None else None
        if named is None or os.path.abspath(named) != os.path.abspath(path):
            remove_checkpoint_files(path)


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

    def write(
        self, file_prefix: str | os.PathLike[str], options: Any = None, *, durable: bool = False
    ) -> str:
        """Writes a checkpoint at exactly ``file_prefix``; no counter, no state file.

        A checkpoint already there is replaced all or none.  ``durable=True`` fsyncs the
        files and the directory before returning (``options``, a CheckpointOptions, changes
        nothing here).

        Raises:
            ConcurrentWriteError: another writer is writing ``file_prefix``.
            StorageError: writing failed (``errno`` says why); what was there is unchanged.
            InvalidArgumentError: a value cannot be saved.
        """
        return write_objects(self, file_prefix, durable=durable)

    def save(
        self, file_prefix: str | os.PathLike[str], options: Any = None, *, durable: bool = False
    ) -> str:
        """Writes ``<file_prefix>-<n>`` with the incremented save counter and records it in
        the directory's ``checkpoint`` state file; returns the path.

        ``durable=True`` makes the checkpoint durable (fsync of its files and directory)
        before the state file names it, and the state file after.

        Raises:
            ConcurrentWriteError: another writer is writing the prefix, or holds the state
                file for longer than 10 seconds (a CheckpointManager saving there).
            StorageError: writing failed, or the state file's path is a directory; the
                counter and the state file are unchanged.
            InvalidArgumentError: a value cannot be saved.
        """
        counter = self._counter()
        path = f"{os.fspath(file_prefix)}-{int(counter) + 1}"
        directory = os.path.dirname(path) or "."
        check_state_path(directory)
        counter[()] += 1
        try:
            write_objects(self, path, durable=durable)
        except BaseException:
            counter[()] -= 1
            raise
        try:
            relative = os.path.relpath(path, directory)
            with state_lock(directory, wait=_STATE_WAIT_SECONDS):
                write_state(directory, relative, [relative], durable=durable)
        except BaseException:
            counter[()] -= 1
            _discard_unrecorded(directory, path)
            raise
        # What killed saves left beside the earlier checkpoints of this name (this one's
        # own leftovers were tidied by its writer).
        tidy_prefixes(directory, os.path.basename(os.fspath(file_prefix)) + "-", skip=path)
        return path

    # -- restoring ------------------------------------------------------------------------

    def read(
        self,
        save_path: str | os.PathLike[str],
        options: Any = None,
        *,
        fs: Any = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> CheckpointLoadStatus:
        """Restores values matched through the object graph (no save counter creation).

        ``save_path`` may be an fsspec URL or, with ``fs``, a path on an fsspec filesystem
        (see :func:`tfckpt.load_checkpoint` for ``fs`` and ``storage_options``).
        """
        with load_checkpoint(save_path, fs=fs, storage_options=storage_options) as reader:
            return restore_objects(reader, self)

    def restore(
        self,
        save_path: str | os.PathLike[str] | None,
        options: Any = None,
        *,
        fs: Any = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> CheckpointLoadStatus | InitializationOnlyStatus:
        """Restores a checkpoint (prefix, directory with a state file, or SavedModel; an
        fsspec URL, or a path on the fsspec filesystem ``fs``, as for :meth:`read`).

        ``restore(None)`` does nothing and returns a status whose assertions fail, as in
        TensorFlow.  Values for children attached later are restored when attached.
        """
        if save_path is None:
            return InitializationOnlyStatus()
        status = self.read(save_path, options, fs=fs, storage_options=storage_options)
        self._counter()
        return status

    def __repr__(self) -> str:
        return f"Checkpoint({', '.join(self._children)})"
