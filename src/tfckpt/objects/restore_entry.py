"""The one entry point of a restore: by the object graph (:mod:`tfckpt.objects.restore`)
when the checkpoint has one, else by variable name (:mod:`tfckpt.objects.name_based`), as
TensorFlow's ``TrackableSaver.restore`` chooses (tensorflow/python/checkpoint/checkpoint.py).
"""

from __future__ import annotations

from typing import Any

from tfckpt.objects.keys import OBJECT_GRAPH_KEY
from tfckpt.objects.name_based import restore_by_name
from tfckpt.objects.restore import CheckpointLoadStatus, LoadStatus, Restoration
from tfckpt.reader import CheckpointReader


def restore_objects(reader: CheckpointReader, root: Any) -> LoadStatus:
    """Restores ``root`` and what hangs from it from ``reader``; the status says what
    matched.

    Through the object graph (``root`` is its node 0) when the checkpoint has one; a
    name-based checkpoint (``tf.compat.v1.train.Saver``'s, no ``_CHECKPOINTABLE_OBJECT_GRAPH``
    key) by variable name instead (:mod:`tfckpt.objects.name_based`), as TensorFlow's
    ``TrackableSaver.restore`` does.  The status is a :class:`CheckpointLoadStatus` or a
    :class:`~tfckpt.objects.name_based.NameBasedSaverStatus` accordingly.

    Raises:
        CheckpointError: the checkpoint cannot be read or a value does not fit its target;
            nothing is assigned then.

    Example::

        with tfckpt.load_checkpoint(path) as reader:
            restore_objects(reader, checkpoint).assert_consumed()
    """
    if not reader.has_tensor(OBJECT_GRAPH_KEY):
        return restore_by_name(reader, root)
    restoration = Restoration(reader)
    try:
        restoration.bind(root, 0)
    except BaseException:
        restoration.expect_partial()  # the error says that nothing was restored
        raise
    return CheckpointLoadStatus(restoration, root)
