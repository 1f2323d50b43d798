"""Which files make up a V1 checkpoint."""

from __future__ import annotations

import glob
import os
import re

from tfckpt.storage.location import LOCAL, Storage


def v1_files(prefix: str, storage: Storage = LOCAL) -> list[str]:
    """The files of the V1 checkpoint at ``prefix``: the file itself, its
    ``-NNNNN-of-MMMMM`` shards, or the files a glob pattern in the file name matches (as the
    TF1 Saver records sharded checkpoints, e.g. ``model.ckpt-?????-of-00002``).  Where ``storage``
    cannot list (HTTP), only the file itself."""
    if storage.isfile(prefix):
        return [prefix]
    if not storage.can_list:
        return []
    shards = storage.glob_files(glob.escape(prefix) + "-?????-of-?????")
    if shards:
        return shards
    # A pattern in the file name only, as the Saver writes them: one over directories (a
    # hostile state file's "/*/*/*/*/*") would walk the file system.
    if glob.has_magic(prefix) and not glob.has_magic(os.path.dirname(prefix)):
        return storage.glob_files(prefix)
    return []


_SHARD = re.compile(r"^(.*)-(\d{5})-of-(\d{5})$")


def missing_shards(files: list[str]) -> list[str]:
    """The shard files a sharded V1 checkpoint lacks: every ``-NNNNN-of-MMMMM`` name says
    its checkpoint has MMMMM shards (a file of a checkpoint of another total makes that
    one's shards missing too, rather than two checkpoints read as one)."""
    expected: set[str] = set()
    for name in files:
        match = _SHARD.match(name)
        if match:
            stem, total = match.group(1), int(match.group(3))
            expected.update(f"{stem}-{i:05d}-of-{total:05d}" for i in range(total))
    return sorted(expected - set(files))
