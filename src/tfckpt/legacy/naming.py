"""Which files make up a V1 checkpoint."""

from __future__ import annotations

import glob
import os


def v1_files(prefix: str) -> list[str]:
    """The files of the V1 checkpoint at ``prefix``: the file itself, its
    ``-NNNNN-of-MMMMM`` shards, or the files a glob pattern matches (as the TF1 Saver
    records sharded checkpoints, e.g. ``model.ckpt-?????-of-00002``)."""
    if os.path.isfile(prefix):
        return [prefix]
    shards = sorted(
        p for p in glob.glob(glob.escape(prefix) + "-?????-of-?????") if os.path.isfile(p)
    )
    if shards:
        return shards
    if glob.has_magic(prefix):
        return sorted(p for p in glob.glob(prefix) if os.path.isfile(p))
    return []
