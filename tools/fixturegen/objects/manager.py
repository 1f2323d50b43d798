"""``manager/``: a CheckpointManager directory after 3 saves, with a fixed clock."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

from .describe import read_state_file

CLOCK_START = 1_700_000_000.0  # the fake time.time() of the manager fixture


CLOCK_STEP = 10.0


@contextlib.contextmanager
def fake_clock() -> Iterator[None]:
    """``time.time`` returning CLOCK_START, then CLOCK_STEP seconds later at each call."""
    real = time.time
    now = [CLOCK_START - CLOCK_STEP]

    def clock():
        now[0] += CLOCK_STEP
        return now[0]

    time.time = clock
    try:
        yield
    finally:
        time.time = real


def write_manager(tf: Any, root: str) -> tuple[list[str], dict[str, Any]]:
    import numpy as np

    directory = os.path.join(root, "manager")
    step = tf.Variable(np.array(0, np.int64), name="step")
    weights = tf.Variable(np.zeros(3, np.float32), name="weights")
    checkpoint = tf.train.Checkpoint(step=step, weights=weights)
    saved = []
    with fake_clock():
        manager = tf.train.CheckpointManager(checkpoint, directory, max_to_keep=2)
        for i in range(3):
            step.assign(10 * (i + 1))
            weights.assign(np.full(3, i + 0.5, np.float32))
            saved.append(manager.save())
    assert [os.path.basename(p) for p in saved] == ["ckpt-1", "ckpt-2", "ckpt-3"], saved
    assert not os.path.exists(saved[0] + ".index")
    state = tf.train.get_checkpoint_state(directory)
    return saved, {
        "writer": "tf.train.CheckpointManager(tf.train.Checkpoint(step, weights), "
        "max_to_keep=2).save() x3 (fake clock)",
        "description": "manager directory: ckpt-1 deleted, ckpt-2 and ckpt-3 kept; state file "
        "with relative paths, all_model_checkpoint_timestamps, last_preserved_timestamp",
        "max_to_keep": 2,
        "latest_checkpoint": os.path.relpath(manager.latest_checkpoint, directory),
        "checkpoints": [os.path.relpath(p, directory) for p in manager.checkpoints],
        "state": read_state_file(tf, directory),
        "state_via_tf": {
            "model_checkpoint_path": os.path.relpath(state.model_checkpoint_path, directory),
            "all_model_checkpoint_paths": [
                os.path.relpath(p, directory) for p in state.all_model_checkpoint_paths
            ],
        },
        "files": sorted(os.listdir(directory)),
        "values": {
            f"ckpt-{i + 1}": {"step": 10 * (i + 1), "weights": [i + 0.5] * 3} for i in range(3)
        },
    }
