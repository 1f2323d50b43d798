"""``tfckpt.CheckpointManager``: numbered checkpoints in a directory, old ones deleted.

Mirrors ``tf.train.CheckpointManager`` (tensorflow/python/checkpoint/checkpoint_management.py):
the same state file (relative paths, per-checkpoint timestamps, last preserved timestamp),
the same numbering by the checkpoint's ``save_counter``, the same deletion and
``keep_checkpoint_every_n_hours`` rules, so a directory can be continued by either library.

Where tfckpt is safer than TensorFlow:

- ``save()`` holds the directory's state-file lock throughout: a second manager (another
  process) saving into the same directory at the same time fails with ConcurrentWriteError;
- the checkpoint is made durable (fsync of its files and the directory) before the state
  file names it, and the state file is written once, already without the checkpoints the
  save deletes, which are deleted only after it (TensorFlow writes it before and after
  deleting, so a crash between leaves it naming deleted checkpoints);
- a failed save (a full disk, a failed state-file write) leaves ``latest_checkpoint``, the
  counter and the state file as they were;
- only files inside the manager's directory are deleted: a state file naming checkpoints
  elsewhere (absolute or ``../`` paths) gets a warning, not a deletion; entries naming
  checkpoints that no longer exist are dropped on the next save;
- temporaries and half-done overwrites that killed saves left are tidied on the next save;
- an asynchronous save (``save(asynchronous=True)`` or ``CheckpointOptions(enable_async=
  True)``, :mod:`tfckpt.objects.async_save`) increments the counter only when it is
  complete (TensorFlow's manager increments it when the save is called), and its error is
  raised by the next ``sync()`` or save (TensorFlow's background thread loses it).

On an object store (``directory`` an fsspec URL, or ``fs=``; :mod:`tfckpt.storage.
remote_commit` says what is atomic on each store) the same order holds: the checkpoint's
data objects, then its index, then the state file (one upload that replaces the old one
whole), then the deletions, each old checkpoint's index first and its data objects after,
so that a reader never finds an index without its data and the state file never names a
checkpoint that is not whole.  There are no locks there (one manager per directory is the
caller's job) and no temporaries to tidy.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from tfckpt.bundle.claim import remove_checkpoint_files
from tfckpt.checkpoint_state import check_state_path, read_state, state_lock, write_state
from tfckpt.errors import CheckpointError, InvalidArgumentError
from tfckpt.objects.checkpoint import Checkpoint, SaveLocation, write_objects


def discard_quietly(prefix: str, where: SaveLocation | None = None) -> None:
    """Removes a checkpoint that a failed save wrote but could not record (best effort: the
    save's own error is the one to report); ``where`` is the store it is on (local files
    when None)."""
    with contextlib.suppress(OSError, CheckpointError):
        if where is None:
            remove_checkpoint_files(prefix)
        else:
            where.remove_checkpoint(prefix)


def remove_checkpoint(prefix: str) -> bool:
    """Deletes the files of the V2 checkpoint at ``prefix`` (missing files are fine), the
    index first; returns False, deleting nothing, when another writer is writing it.

    Raises:
        StorageError: a file could not be removed.
    """
    return remove_checkpoint_files(prefix)


class CheckpointManager:
    """Saves numbered checkpoints of ``checkpoint`` in ``directory`` and prunes old ones.

    ``directory`` may be an fsspec URL (``s3://bucket/run``, ``gs://...``; ``storage_options``
    go to fsspec) or a path on the fsspec filesystem ``fs``: checkpoints, the state file and
    the deletions then happen on the store (see the module), and ``latest_checkpoint`` and
    ``checkpoints`` are URLs (paths on ``fs``) that :meth:`Checkpoint.restore
    <tfckpt.Checkpoint.restore>` and :func:`tfckpt.load_checkpoint` take with the same
    ``storage_options``.  The state file is read once, here.

    Raises:
        InvalidArgumentError: ``max_to_keep`` is not positive; ``checkpoint_interval``
            without ``step_counter``; ``storage_options`` with a local directory, or both
            ``fs`` and ``storage_options``.
        UnsupportedError: a URL whose fsspec backend is not installed.
        DataLossError: the state file cannot be parsed.
        CheckpointError: the store refuses access or keeps failing.

    Example::

        manager = CheckpointManager(
            checkpoint, "s3://bucket/run", max_to_keep=2, storage_options={"anon": False}
        )
        manager.save()  # "s3://bucket/run/ckpt-1"
        manager.restore_or_initialize()
    """

    def __init__(
        self,
        checkpoint: Checkpoint,
        directory: str | os.PathLike[str],
        max_to_keep: int | None = 5,
        keep_checkpoint_every_n_hours: float | None = None,
        checkpoint_name: str = "ckpt",
        step_counter: Any = None,
        checkpoint_interval: int | None = None,
        init_fn: Callable[[], Any] | None = None,
        *,
        fs: Any = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        if max_to_keep is not None and max_to_keep <= 0:
            raise InvalidArgumentError(
                f"Expected a positive integer or None for max_to_keep, got {max_to_keep}"
            )
        if checkpoint_interval is not None and step_counter is None:
            raise InvalidArgumentError(
                "step_counter should be passed if checkpoint_interval is not None"
            )
        self._where = SaveLocation(directory, fs, storage_options)
        self._checkpoint = checkpoint
        self._max_to_keep = max_to_keep
        self._keep_checkpoint_every_n_hours = keep_checkpoint_every_n_hours
        self._directory = self._where.path
        self._prefix = self._where.join(self._directory, checkpoint_name)
        self._step_counter = step_counter
        self._checkpoint_interval = checkpoint_interval
        self._last_checkpoint_step: int | None = None
        self._init_fn = init_fn
        self._maybe_delete: OrderedDict[str, float] = OrderedDict()
        now = time.time()
        state = read_state(self._directory, **self._where.options)
        if state is None:
            self._latest_checkpoint: str | None = None
            self._last_preserved_timestamp = now - 1.0
            return
        self._latest_checkpoint = state.model_checkpoint_path
        self._last_preserved_timestamp = min(state.last_preserved_timestamp, now)
        timestamps = state.all_model_checkpoint_timestamps or [
            self._last_preserved_timestamp
        ] * len(state.all_model_checkpoint_paths)
        for path, timestamp in zip(state.all_model_checkpoint_paths, timestamps):
            timestamp = min(timestamp, now)
            if timestamp > self._last_preserved_timestamp:
                self._maybe_delete[path] = timestamp

    @property
    def directory(self) -> str:
        return self._directory

    @property
    def checkpoint(self) -> Checkpoint:
        return self._checkpoint

    @property
    def checkpoint_interval(self) -> int | None:
        return self._checkpoint_interval

    @property
    def latest_checkpoint(self) -> str | None:
        """The prefix of the newest complete checkpoint (the one the state file names), or
        None; during an asynchronous save, the one before it."""
        return self._latest_checkpoint

    @property
    def checkpoints(self) -> list[str]:
        """Managed checkpoints, oldest first (those kept by the hours rule are not listed)."""
        return list(self._maybe_delete)

    def _current_step(self) -> int:
        counter = self._step_counter
        return int(
            counter()
            if callable(counter)
            else counter[()]
            if hasattr(counter, "shape")
            else counter
        )

    def save(
        self,
        checkpoint_number: int | None = None,
        check_interval: bool = True,
        options: Any = None,
        *,
        durable: bool = True,
        asynchronous: bool = False,
    ) -> str | None:
        """Writes a new checkpoint, records it in the state file, prunes; returns its path.

        Returns None when ``checkpoint_interval`` says it is not time to save yet.  The
        checkpoint's files and directory are fsynced before the state file names it, and
        the state file after (``durable=False`` skips the fsyncs: faster, and still safe
        against a crash of the process, but not of the machine).  ``options`` (a
        CheckpointOptions) and ``asynchronous`` as for :meth:`Checkpoint.write
        <tfckpt.Checkpoint.write>`.

        Asynchronously the path is returned once the values are copied; writing it,
        recording it in the state file, incrementing the save counter and deleting old
        checkpoints happen in the background, in that order, and ``latest_checkpoint`` and
        ``checkpoints`` change only once the state file names the new checkpoint
        (:meth:`sync` waits).  The save holds the directory's state-file lock while it
        writes, in the background too (locally: stores have no locks).

        On a store (the manager's ``fs``/``storage_options``) the data objects, the index,
        the state file and the deletions of old checkpoints follow each other in that
        order (see the module); ``durable`` changes nothing there.

        Raises:
            ConcurrentWriteError: another manager (or ``Checkpoint.save``) is saving in this
                directory, or another writer is writing the checkpoint's prefix (locally).
            StorageError: writing failed (``errno`` says why: ``EACCES`` for a store
                refusing access), naming the file or object, or the state file's path is
                a directory: ``latest_checkpoint``, the counter and the state file are
                unchanged (a checkpoint written before the state file failed is deleted
                again, best effort; one left stays unnamed, and saving again replaces it).
                Deleting an old checkpoint that fails is a RuntimeWarning, not an error.
            InvalidArgumentError: a value cannot be saved.
            CheckpointError: (asynchronously) the error of the previous asynchronous
                save, if it failed; this save's own errors come from :meth:`sync` or the
                next save instead.

        Example::

            manager = CheckpointManager(checkpoint, "/tmp/train", max_to_keep=3)
            manager.save(asynchronous=True)
            manager.sync()
        """
        step = None
        previous_step = self._last_checkpoint_step
        if self._checkpoint_interval is not None:
            step = self._current_step()
            if not self._due(step, check_interval):
                return None
        checkpoint = self._checkpoint
        background, max_shard_size = checkpoint._save_settings(options, asynchronous)
        with checkpoint._saves.turn():
            count = checkpoint.save_counter + 1  # incremented even when a number is given
            number = count if checkpoint_number is None else int(checkpoint_number)
            path = f"{self._prefix}-{number}"
            check_state_path(self._directory, **self._where.options)
            if step is not None:
                self._last_checkpoint_step = step  # at call time, as TensorFlow does

            def job(source: Any) -> None:
                try:
                    with state_lock(
                        self._directory, what="CheckpointManager save", **self._where.options
                    ):
                        self._write_and_record(source, path, durable, max_shard_size)
                except BaseException:
                    if step is not None and self._last_checkpoint_step == step:
                        self._last_checkpoint_step = previous_step
                    raise

            checkpoint._run_save(job, background, count, path)
        return path

    def sync(self) -> None:
        """Waits for an asynchronous save of the checkpoint in flight; returns at once when
        there is none.

        Raises:
            CheckpointError: the exception the asynchronous save raised (once, as it was
                raised).
        """
        self._checkpoint.sync()

    def _due(self, step: int, check_interval: bool) -> bool:
        last = self._last_checkpoint_step
        if last is None:
            return True
        if step == last:
            return False
        return not (check_interval and step < last + (self._checkpoint_interval or 0))

    def _write_and_record(
        self, source: Any, path: str, durable: bool, max_shard_size: int | None
    ) -> None:
        """Writes ``source`` (the checkpoint's graph, or a snapshot of it) at ``path``, then
        the state file without the checkpoints to delete, then deletes them; the manager's
        own state changes only once the state file is written (a checkpoint it could not
        record is removed again, unless the state file names it already)."""
        where = self._where
        try:
            write_objects(
                source, path, durable=durable, max_shard_size=max_shard_size, **where.options
            )
        except BaseException:
            self._forget_if_gone(path)
            raise
        # The index is published: only now may the state file name the checkpoint.
        try:
            kept = self._existing_checkpoints()
            kept.pop(path, None)
            kept[path] = time.time()
            doomed, preserved = self._select_deletions(kept)
            self._write_state(path, kept, preserved, durable)
        except BaseException:
            if path not in self._maybe_delete and path != self._latest_checkpoint:
                discard_quietly(path, where)
            raise
        self._maybe_delete = kept
        self._latest_checkpoint = path
        self._last_preserved_timestamp = preserved
        for old in doomed:
            self._delete(old)
        where.tidy(self._directory, where.basename(self._prefix) + "-", skip=path)

    def _forget_if_gone(self, path: str) -> None:
        """After a failed write at ``path``: if it replaced a checkpoint this manager lists
        and that checkpoint is gone (on a store, an overwrite deletes the old index before
        the new data appears), the manager stops naming it (the state file still does, and
        :func:`tfckpt.latest_checkpoint` finds nothing there).  Best effort."""
        if not self._where.remote:
            return  # (a local overwrite puts the old checkpoint back)
        if path not in self._maybe_delete and path != self._latest_checkpoint:
            return
        try:
            if self._where.exists(path):
                return
        except CheckpointError:
            return  # (cannot tell: keep naming it)
        self._maybe_delete.pop(path, None)
        if self._latest_checkpoint == path:
            self._latest_checkpoint = next(reversed(self._maybe_delete), None)

    def _existing_checkpoints(self) -> OrderedDict[str, float]:
        """The managed checkpoints that still exist (entries naming deleted ones go)."""
        return OrderedDict(
            (path, timestamp)
            for path, timestamp in self._maybe_delete.items()
            if self._where.exists(path)
        )

    def _select_deletions(self, kept: OrderedDict[str, float]) -> tuple[list[str], float]:
        """Pops the checkpoints beyond ``max_to_keep`` from ``kept``: returns those to delete
        and the new last preserved timestamp (``keep_checkpoint_every_n_hours`` keeps some
        without listing them, as in TensorFlow)."""
        doomed: list[str] = []
        preserved = self._last_preserved_timestamp
        if not self._max_to_keep:
            return doomed, preserved
        hours = self._keep_checkpoint_every_n_hours
        while len(kept) > self._max_to_keep:
            path, timestamp = kept.popitem(last=False)
            if hours and timestamp - hours * 3600.0 >= preserved:
                preserved = timestamp
                continue
            doomed.append(path)
        return doomed, preserved

    def _write_state(
        self, latest: str, kept: OrderedDict[str, float], preserved: float, durable: bool
    ) -> None:
        def relative(path: str) -> str:
            # TensorFlow relativizes only absolute paths; tfckpt relativizes every path under
            # the directory so that a relative directory name is not written twice.
            return self._where.relative(path, self._directory)

        write_state(
            self._directory,
            relative(latest),
            [relative(p) for p in kept],
            list(kept.values()),
            preserved,
            durable=durable,
            **self._where.options,
        )

    def _delete(self, path: str) -> None:
        """Deletes an old checkpoint, only inside the directory; failures are warnings (the
        save itself succeeded)."""
        if not self._inside_directory(path):
            warnings.warn(
                f"CheckpointManager: not deleting {path!r}, which the state file names but "
                f"which is outside the manager's directory {self._directory!r}",
                RuntimeWarning,
                stacklevel=4,
            )
            return
        try:
            if self._where.remote:
                deleted = self._where.remove_checkpoint(path)
            else:
                deleted = remove_checkpoint(self._where.local(path))
        except CheckpointError as exc:  # (a StorageError; remotely a refused listing too)
            warnings.warn(f"CheckpointManager: {exc}", RuntimeWarning, stacklevel=4)
            return
        if not deleted:
            warnings.warn(
                f"CheckpointManager: not deleting {path!r}: another writer is writing it",
                RuntimeWarning,
                stacklevel=4,
            )

    def _inside_directory(self, path: str) -> bool:
        return self._where.inside(self._directory, path)

    def restore_or_initialize(self) -> str | None:
        """Restores the latest checkpoint if there is one, else calls ``init_fn``; returns
        the checkpoint restored, or None.

        An asynchronous save in flight is waited for first, so that the checkpoint it
        writes is the latest (its error, if it failed, is left for :meth:`sync`).  On a
        store the checkpoint is read from there (the manager's ``fs``/``storage_options``).

        Raises:
            CheckpointNotFoundError: the state file names a checkpoint that is gone.
            DataLossError: as :meth:`tfckpt.Checkpoint.restore`; nothing was assigned.
            InvalidArgumentError: as :meth:`tfckpt.Checkpoint.restore`; nothing was
                assigned.
            CheckpointError: the store refuses access or keeps failing.

        Example::

            manager = CheckpointManager(checkpoint, "gs://bucket/run", init_fn=initialize)
            manager.restore_or_initialize()  # "gs://bucket/run/ckpt-7", or None
        """
        self._checkpoint._saves.wait()
        if self._latest_checkpoint is not None:
            self._checkpoint.restore(self._latest_checkpoint, **self._where.options)
            if self._checkpoint_interval is not None:
                self._last_checkpoint_step = self._current_step()
            return self._latest_checkpoint
        if self._init_fn is not None:
            self._init_fn()
        return None
