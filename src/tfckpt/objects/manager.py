"""``tfckpt.CheckpointManager``: numbered checkpoints in a directory, old ones deleted.

Mirrors ``tf.train.CheckpointManager`` (tensorflow/python/checkpoint/checkpoint_management.py):
the same state file (relative paths, per-checkpoint timestamps, last preserved timestamp),
the same numbering by the checkpoint's ``save_counter``, the same deletion and
``keep_checkpoint_every_n_hours`` rules, so a directory can be continued by either library.
"""

from __future__ import annotations

import glob
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from tfckpt.checkpoint_state import read_state, write_state
from tfckpt.errors import InvalidArgumentError
from tfckpt.objects.checkpoint import Checkpoint, write_objects


def remove_checkpoint(prefix: str) -> None:
    """Deletes the files of the V2 checkpoint at ``prefix`` (missing files are fine)."""
    for pattern in (glob.escape(prefix) + ".index", glob.escape(prefix) + ".data-?????-of-?????"):
        for path in glob.glob(pattern):
            try:
                os.remove(path)
            except FileNotFoundError:
                pass  # another process deleted it first


class CheckpointManager:
    """Saves numbered checkpoints of ``checkpoint`` in ``directory`` and prunes old ones."""

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
    ) -> None:
        if max_to_keep is not None and max_to_keep <= 0:
            raise InvalidArgumentError(
                f"Expected a positive integer or None for max_to_keep, got {max_to_keep}"
            )
        if checkpoint_interval is not None and step_counter is None:
            raise InvalidArgumentError(
                "step_counter should be passed if checkpoint_interval is not None"
            )
        self._checkpoint = checkpoint
        self._max_to_keep = max_to_keep
        self._keep_checkpoint_every_n_hours = keep_checkpoint_every_n_hours
        self._directory = os.fspath(directory)
        self._prefix = os.path.join(self._directory, checkpoint_name)
        self._step_counter = step_counter
        self._checkpoint_interval = checkpoint_interval
        self._last_checkpoint_step: int | None = None
        self._init_fn = init_fn
        self._maybe_delete: OrderedDict[str, float] = OrderedDict()
        now = time.time()
        state = read_state(self._directory)
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
        """The prefix of the newest checkpoint, or None."""
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
        self, checkpoint_number: int | None = None, check_interval: bool = True, options: Any = None
    ) -> str | None:
        """Writes a new checkpoint, records it in the state file, prunes; returns its path.

        Returns None when ``checkpoint_interval`` says it is not time to save yet.
        """
        if self._checkpoint_interval is not None:
            step = self._current_step()
            if self._last_checkpoint_step is not None:
                if step == self._last_checkpoint_step:
                    return None
                if check_interval and step < self._last_checkpoint_step + self._checkpoint_interval:
                    return None
            self._last_checkpoint_step = step
        counter = self._checkpoint._counter()
        counter[()] += 1
        number = int(counter) if checkpoint_number is None else int(checkpoint_number)
        path = f"{self._prefix}-{number}"
        try:
            write_objects(self._checkpoint, path)
        except BaseException:
            counter[()] -= 1
            raise
        self._maybe_delete.pop(path, None)
        self._maybe_delete[path] = time.time()
        self._latest_checkpoint = path
        self._record_state()
        self._sweep()
        self._record_state()
        return path

    def _sweep(self) -> None:
        if not self._max_to_keep:
            return
        while len(self._maybe_delete) > self._max_to_keep:
            path, timestamp = self._maybe_delete.popitem(last=False)
            hours = self._keep_checkpoint_every_n_hours
            if hours and timestamp - hours * 3600.0 >= self._last_preserved_timestamp:
                self._last_preserved_timestamp = timestamp
                continue
            remove_checkpoint(path)

    def _record_state(self) -> None:
        assert self._latest_checkpoint is not None

        def relative(path: str) -> str:
            # TensorFlow relativizes only absolute paths; tfckpt relativizes every path under
            # the directory so that a relative directory name is not written twice.
            return os.path.relpath(path, self._directory)

        paths = [relative(p) for p in self._maybe_delete]
        latest = relative(self._latest_checkpoint)
        timestamps = list(self._maybe_delete.values())
        if not paths or paths[-1] != latest:
            paths.append(latest)
            timestamps.append(time.time())
        write_state(
            self._directory,
            latest,
            paths,
            timestamps,
            self._last_preserved_timestamp,
        )

    def restore_or_initialize(self) -> str | None:
        """Restores the latest checkpoint if there is one, else calls ``init_fn``."""
        if self._latest_checkpoint is not None:
            self._checkpoint.restore(self._latest_checkpoint)
            if self._checkpoint_interval is not None:
                self._last_checkpoint_step = self._current_step()
            return self._latest_checkpoint
        if self._init_fn is not None:
            self._init_fn()
        return None

    def sync(self) -> None:
        """Nothing to wait for: tfckpt writes synchronously."""
