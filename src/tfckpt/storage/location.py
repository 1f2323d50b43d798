"""Where a checkpoint's files are: the local file system, or an fsspec filesystem.

:func:`locate` turns what a caller passed (a local path, an fsspec URL such as
``gs://bucket/model.ckpt-1``, or an fsspec filesystem object and a path on it) into a
:class:`Storage` and the path to hand it.  Everything that finds or lists files (path
resolution, the ``checkpoint`` state file, V1 shards) asks the Storage; everything that
reads bytes opens a :class:`~tfckpt.storage.source.ByteSource` through it.

:func:`commit_for` is the writing side: the same targets give the prefix to write and the
:class:`~tfckpt.storage.commit.Commit` that publishes the files there (LocalCommit for
local paths, :class:`~tfckpt.storage.remote_commit.RemoteCommit` for fsspec filesystems).

Local paths never import fsspec; URLs import :mod:`tfckpt.storage.remote` (and fsspec) on
first use.  Paths are kept in the form the caller gave (URLs stay URLs), so that errors
name them and paths that come back (``latest_checkpoint``) can be passed in again.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping
from typing import Any, Protocol

from tfckpt.errors import InvalidArgumentError, UnsupportedError
from tfckpt.storage.commit import Commit, LocalCommit
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


def locate(
    path: str | os.PathLike[str],
    *,
    fs: Any = None,
    storage_options: Mapping[str, Any] | None = None,
) -> tuple[Storage, str]:
    """The storage holding ``path`` and the path to give it.

    ``path`` is a local path, an fsspec URL (``gs://``, ``s3://``, ``https://``,
    ``memory://``, ``file://``, chained ``simplecache::gs://``...), or, with ``fs`` (an
    fsspec filesystem), a path on that filesystem.  ``storage_options`` go to fsspec when
    it makes the filesystem of a URL (credentials, endpoints; per protocol for chained
    URLs, as fsspec takes them).

    Raises:
        UnsupportedError: a URL whose fsspec backend is not installed (the message names
            the extra to install), or a protocol fsspec does not know.
        InvalidArgumentError: ``storage_options`` with a local path, or both ``fs`` and
            ``storage_options``.

    Example::

        storage, prefix = locate("gs://bucket/run/ckpt-1", storage_options={"token": "anon"})
    """
    return _locate(os.fspath(path), fs, storage_options, "reading")


def commit_for(
    path: str | os.PathLike[str],
    *,
    fs: Any = None,
    storage_options: Mapping[str, Any] | None = None,
    durable: bool = False,
    block_size: int | None = None,
) -> tuple[str, Commit]:
    """Where to write ``path`` and the commit that publishes the files written there.

    ``path``, ``fs`` and ``storage_options`` are taken as :func:`locate` takes them.  A
    local path (or a ``file://`` URL, or fsspec's local filesystem) gives the path as it is
    and a :class:`~tfckpt.storage.commit.LocalCommit` (``durable`` fsyncs); anything else a
    :class:`~tfckpt.storage.remote_commit.RemoteCommit` uploading in blocks of
    ``block_size`` bytes (16 MiB unless given; ``durable`` changes nothing there: an object
    store keeps what it acknowledged), and the path in the caller's form (URLs stay URLs).
    Create the files under the returned path's names, then publish.  Remote writers take
    no lock: one writer per prefix is the caller's job on object stores.

    Raises:
        UnsupportedError: a URL whose fsspec backend is not installed (the message names
            the extra to install), or a protocol fsspec does not know.
        InvalidArgumentError: as :func:`locate`; a chained URL (``simplecache::s3://``),
            which cannot publish safely; a bad ``block_size``.
        StorageError: a read-only store (``http(s)://``).

    Example::

        prefix, commit = commit_for("s3://bucket/run/ckpt-1", storage_options={"anon": False})
        with open("local.index", "rb") as f:
            commit.create(prefix + ".index").write(f.read())
        commit.publish()
    """
    text = os.fspath(path)
    if "::" in text:
        raise InvalidArgumentError(
            "cannot write through a chained URL (simplecache::, filecache::...): write to "
            "the store's own URL",
            path=text,
        )
    storage, target = _locate(text, fs, storage_options, "writing")
    if not storage.remote:
        return target, LocalCommit(durable=durable)
    from tfckpt.storage import remote, remote_commit

    assert isinstance(storage, remote.RemoteStorage)
    options = {} if block_size is None else {"block_size": block_size}
    return target, remote_commit.RemoteCommit(storage, **options)


def _locate(
    text: str, fs: Any, storage_options: Mapping[str, Any] | None, doing: str
) -> tuple[Storage, str]:
    if fs is not None:
        if storage_options:
            raise InvalidArgumentError(
                "pass either an fsspec filesystem (fs=) or storage_options, not both: "
                "the options are for making a filesystem",
                path=text,
            )
        from tfckpt.storage import remote

        return remote.storage_for_filesystem(fs, text)
    if not is_url(text):
        if storage_options:
            raise InvalidArgumentError(
                "storage_options apply to URLs (gs://, s3://, https://, ...), not local paths",
                path=text,
            )
        return LOCAL, text
    if text.startswith("file://") and not storage_options:
        return LOCAL, text[len("file://") :]
    protocol = protocol_of(text)
    try:
        from tfckpt.storage import remote
    except ImportError:
        raise UnsupportedError(
            f"{doing} {protocol}:// URLs needs fsspec and its {protocol} backend, which are "
            f"not installed: {install_hint(protocol)}",
            path=text,
        ) from None
    return remote.storage_for_url(text, dict(storage_options or {}))
