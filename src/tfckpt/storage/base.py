"""What every storage is: the :class:`Storage` protocol that path resolution, the state
file and the readers ask, the local file system (:data:`LOCAL`), and how URLs are told
apart.  The fsspec storages (:mod:`tfckpt.storage.remote`) implement the same protocol;
:mod:`tfckpt.storage.location` picks one for what a caller passed.
"""

from __future__ import annotations

import glob
import os
from typing import Protocol

from tfckpt.storage.source import ByteSource, LocalFile

# The tfckpt extra that installs each protocol's fsspec backend.
EXTRAS = {"gs": "gcs", "gcs": "gcs", "s3": "s3", "s3a": "s3", "http": "http", "https": "http"}


class Storage(Protocol):
    """Finds, lists and opens the files of checkpoints on one file system."""

    remote: bool  # False for the local file system (memory maps and positional reads)
    can_list: bool  # False where directories cannot be listed (HTTP)

    def open(self, path: str) -> ByteSource:
        """The file at ``path`` for reading.

        Raises CheckpointNotFoundError when it does not exist.
        """
        ...

    def isfile(self, path: str) -> bool: ...

    def isdir(self, path: str) -> bool: ...

    def glob_files(self, pattern: str) -> list[str]:
        """The files (not directories) matching the glob ``pattern``, sorted."""
        ...

    def read_small(self, path: str, limit: int) -> bytes | None:
        """The first ``limit`` bytes of a small file (a state file), in one request; None
        when there is no such file."""
        ...

    def join(self, directory: str, name: str) -> str: ...

    def isabs(self, path: str) -> bool: ...


class LocalStorage:
    """:class:`Storage` on the local file system."""

    remote = False
    can_list = True

    def open(self, path: str) -> ByteSource:
        return LocalFile(path)

    def isfile(self, path: str) -> bool:
        return os.path.isfile(path)

    def isdir(self, path: str) -> bool:
        return os.path.isdir(path)

    def glob_files(self, pattern: str) -> list[str]:
        return sorted(p for p in glob.glob(pattern) if os.path.isfile(p))

    def read_small(self, path: str, limit: int) -> bytes | None:
        if not os.path.isfile(path):
            return None
        with open(path, "rb") as f:
            return f.read(limit)

    def join(self, directory: str, name: str) -> str:
        return os.path.join(directory, name)

    def isabs(self, path: str) -> bool:
        return os.path.isabs(path)


LOCAL = LocalStorage()


def is_url(path: str) -> bool:
    """Whether ``path`` is an fsspec URL (``proto://...``, or chained ``a::proto://...``)."""
    return "://" in path or "::" in path


def protocol_of(url: str) -> str:
    """The protocol of the innermost (last) link of an fsspec URL: ``simplecache::gs://b``
    gives ``gs``."""
    last = url.rsplit("::", 1)[-1]
    return last.split("://", 1)[0].lower() if "://" in last else "file"


def install_hint(protocol: str) -> str:
    """The pip command that installs what reading or writing ``protocol`` needs."""
    return f'pip install "tfckpt[{EXTRAS.get(protocol, "remote")}]"'
