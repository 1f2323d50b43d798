"""The files an overwrite killed between its renames leaves, made by hand (shared by the
verify tests here and tests/cli/test_verify_repair.py)."""

from __future__ import annotations

import os

import numpy as np

import tfckpt
from tfckpt.storage.commit import aside_path, temporary_path

OLD = {"a": np.arange(10.0), "b": np.ones(3, np.int32)}
NEW = {"a": np.arange(5.0)}


def overwrite_killed(tmp_path, *, data_moved_in: bool, data_set_aside: bool = True) -> str:
    """The files of a checkpoint whose overwrite died between its renames, as LocalCommit
    leaves them: the old index set aside, the old data file set aside (or not yet), the
    new data file in under its final name (or still a temporary).  Returns the prefix
    (``OLD`` was the old checkpoint, ``NEW`` the one being written)."""
    prefix = str(tmp_path / "ckpt")
    index, data = prefix + ".index", prefix + ".data-00000-of-00001"
    tfckpt.save_tensors(prefix, OLD)
    new = tfckpt.save_tensors(str(tmp_path / "new"), NEW)
    os.rename(index, aside_path(index))
    if data_set_aside:
        os.rename(data, aside_path(data))
        target = data if data_moved_in else temporary_path(data, "0123456789abcdef")
        os.rename(new + ".data-00000-of-00001", target)
    return prefix
