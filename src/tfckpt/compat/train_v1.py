"""The ``tf.compat.v1.train`` namespace: :mod:`tfckpt.compat.train` plus the TF1 names
``NewCheckpointReader`` and ``checkpoint_exists``.

Example::

    from tfckpt import tf_compat as tf

    reader = tf.compat.v1.train.NewCheckpointReader("model.ckpt-1000")
    print(reader.debug_string().decode())
"""

from __future__ import annotations

import os

from tfckpt import paths
from tfckpt.compat.train import (
    Checkpoint,
    CheckpointManager,
    CheckpointOptions,
    checkpoints_iterator,
    get_checkpoint_state,
    latest_checkpoint,
    list_variables,
    load_checkpoint,
    load_variable,
)
from tfckpt.reader import CheckpointReader
from tfckpt.storage.location import locate

__all__ = [
    "Checkpoint",
    "CheckpointManager",
    "CheckpointOptions",
    "NewCheckpointReader",
    "checkpoint_exists",
    "checkpoints_iterator",
    "get_checkpoint_state",
    "latest_checkpoint",
    "list_variables",
    "load_checkpoint",
    "load_variable",
]


def NewCheckpointReader(filepattern: str | bytes | os.PathLike[str]) -> CheckpointReader:
    """A reader of the checkpoint at ``filepattern`` (str or bytes, as TensorFlow takes).

    Raises:
        CheckpointNotFoundError: nothing there (a ``tf.errors.NotFoundError``).
        DataLossError: not a checkpoint.

    Example::

        reader = NewCheckpointReader("model.ckpt-1000")
        reader.get_variable_to_shape_map()
    """
    if isinstance(filepattern, bytes):
        filepattern = os.fsdecode(filepattern)
    return CheckpointReader(filepattern)


def checkpoint_exists(checkpoint_prefix: str | os.PathLike[str]) -> bool:
    """Whether a V2 (``prefix.index``) or V1 checkpoint exists at ``checkpoint_prefix`` (a
    local path or an fsspec URL)."""
    storage, prefix = locate(checkpoint_prefix)
    return paths.checkpoint_format(prefix, storage) is not None
