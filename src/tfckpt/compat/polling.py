"""Waiting for checkpoints as they appear: ``tf.train.checkpoints_iterator``.

The same loop as tensorflow/python/training/checkpoint_utils.py: poll the directory's
state file (:func:`tfckpt.latest_checkpoint`) once a second; yield each new latest
checkpoint, then sleep out the rest of ``min_interval_secs``; after ``timeout`` seconds
without a new one, stop, or ask ``timeout_fn`` (which TensorFlow also asks after every
yielded checkpoint) whether to stop.  Timeouts are measured on the monotonic clock
(TensorFlow uses the wall clock, which can jump).  A state file that does not parse raises
DataLossError here as everywhere in tfckpt (TensorFlow keeps waiting).

Example::

    for path in checkpoints_iterator("/tmp/train", timeout=600):
        evaluate(tfckpt.load_checkpoint(path))
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator

from tfckpt.paths import latest_checkpoint

_log = logging.getLogger("tfckpt")
# Looked up at each call, so that tests can run the loops on a fake clock.
_now = time.monotonic
_sleep = time.sleep


def wait_for_new_checkpoint(
    checkpoint_dir: str | os.PathLike[str],
    last_checkpoint: str | None = None,
    seconds_to_sleep: float = 1,
    timeout: float | None = None,
) -> str | None:
    """The directory's latest checkpoint once it is not ``last_checkpoint``, polling every
    ``seconds_to_sleep`` seconds; None after ``timeout`` seconds (None: wait for ever).

    Raises:
        DataLossError: the state file does not parse.
    """
    _log.info("Waiting for new checkpoint at %s", checkpoint_dir)
    stop_time = _now() + timeout if timeout is not None else None
    while True:
        checkpoint_path = latest_checkpoint(checkpoint_dir)
        if checkpoint_path is None or checkpoint_path == last_checkpoint:
            if stop_time is not None and _now() + seconds_to_sleep > stop_time:
                return None
            _sleep(seconds_to_sleep)
        else:
            _log.info("Found new checkpoint at %s", checkpoint_path)
            return checkpoint_path


def checkpoints_iterator(
    checkpoint_dir: str | os.PathLike[str],
    min_interval_secs: float = 0,
    timeout: float | None = None,
    timeout_fn: Callable[[], bool] | None = None,
) -> Iterator[str]:
    """Yields the paths of new checkpoints as they appear in ``checkpoint_dir``, as
    ``tf.train.checkpoints_iterator`` does (see the module docstring).

    Raises:
        DataLossError: the state file does not parse.

    Example::

        for path in checkpoints_iterator(directory, timeout=60, timeout_fn=training_done):
            ...
    """
    checkpoint_path = None
    while True:
        new_checkpoint_path = wait_for_new_checkpoint(
            checkpoint_dir, checkpoint_path, timeout=timeout
        )
        if new_checkpoint_path:
            start = _now()
            checkpoint_path = new_checkpoint_path
            yield checkpoint_path
            time_to_next_eval = start + min_interval_secs - _now()
            if time_to_next_eval > 0:
                _sleep(time_to_next_eval)
        elif timeout_fn is None:
            _log.info("Timed-out waiting for a checkpoint (without timeout_fn).")
            return
        if timeout_fn is not None and timeout_fn():
            _log.info("Done. No new checkpoints will be generated.")
            return
