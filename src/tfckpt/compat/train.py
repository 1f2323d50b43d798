"""The ``tf.train`` namespace, for reading (and writing) checkpoints without TensorFlow.

``load_checkpoint``, ``list_variables``, ``load_variable``, ``latest_checkpoint``,
``get_checkpoint_state``, ``checkpoints_iterator``, ``Checkpoint``, ``CheckpointManager``,
``CheckpointOptions`` and ``experimental.MaxShardSizePolicy``, with TensorFlow's
signatures; the differences are listed in the README ("Drop-in for tf.train").

Example::

    from tfckpt import tf_compat as tf

    for name, shape in tf.train.list_variables(path):
        array = tf.train.load_variable(path, name)
"""

from __future__ import annotations

import os
from types import SimpleNamespace

from tfckpt.bundle.sharding import MaxShardSizePolicy
from tfckpt.checkpoint_state import read_state
from tfckpt.compat.options import CheckpointOptions
from tfckpt.compat.polling import checkpoints_iterator
from tfckpt.objects.checkpoint import Checkpoint
from tfckpt.objects.manager import CheckpointManager
from tfckpt.paths import latest_checkpoint
from tfckpt.proto import checkpoint_state_pb2
from tfckpt.reader import list_variables, load_checkpoint, load_variable
from tfckpt.storage.location import locate

__all__ = [
    "Checkpoint",
    "CheckpointManager",
    "CheckpointOptions",
    "checkpoints_iterator",
    "experimental",
    "get_checkpoint_state",
    "latest_checkpoint",
    "list_variables",
    "load_checkpoint",
    "load_variable",
]

# tf.train.experimental: the sharding policy tfckpt honours in CheckpointOptions
# (tensorflow/python/checkpoint/sharding/sharding_policies.py).
experimental = SimpleNamespace(MaxShardSizePolicy=MaxShardSizePolicy)


def get_checkpoint_state(
    checkpoint_dir: str | os.PathLike[str], latest_filename: str | None = None
) -> checkpoint_state_pb2.CheckpointState | None:
    """The directory's ``checkpoint`` state file as a CheckpointState proto (relative paths
    joined to the directory, as TensorFlow returns them), or None when there is none.
    ``checkpoint_dir`` may be an fsspec URL, as for :func:`tfckpt.latest_checkpoint`.

    Raises:
        DataLossError: the file does not parse or names no ``model_checkpoint_path``
            (TensorFlow returns None, or raises ValueError, respectively).

    Example::

        state = get_checkpoint_state("/tmp/train")
        if state and state.model_checkpoint_path:
            restore(state.model_checkpoint_path)
    """
    storage, directory = locate(checkpoint_dir)
    state = read_state(directory, latest_filename, storage=storage)
    if state is None:
        return None
    return checkpoint_state_pb2.CheckpointState(
        model_checkpoint_path=state.model_checkpoint_path,
        all_model_checkpoint_paths=state.all_model_checkpoint_paths,
        all_model_checkpoint_timestamps=state.all_model_checkpoint_timestamps,
        last_preserved_timestamp=state.last_preserved_timestamp,
    )
