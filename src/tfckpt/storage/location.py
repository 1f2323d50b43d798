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

import os
from collections.abc import Mapping
from typing import Any

from tfckpt.errors import InvalidArgumentError, UnsupportedError
from tfckpt.storage.base import (
    EXTRAS,
    LOCAL,
    LocalStorage,
    Storage,
    install_hint,
    is_url,
    protocol_of,
)
from tfckpt.storage.commit import Commit, LocalCommit
from tfckpt.storage.source import ByteSource, LocalFile

__all__ = [
    "EXTRAS",
    "LOCAL",
    "LocalStorage",
    "Storage",
    "commit_for",
    "install_hint",
    "is_url",
    "locate",
    "open_source",
    "protocol_of",
]

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


def open_source(
    path: str | os.PathLike[str],
    fs: Any = None,
    storage_options: Mapping[str, Any] | None = None,
) -> ByteSource:
    """Opens ``path`` for reading: a local path (a :class:`LocalFile`), an fsspec URL
    (``gs://``, ``s3://``, ``https://``, ...; ``storage_options`` go to fsspec) or a path
    on the fsspec filesystem ``fs`` (a :class:`tfckpt.storage.remote.RemoteFile`).

    Raises CheckpointNotFoundError when the file does not exist, DataLossError when it is
    not a regular file, UnsupportedError for a URL whose backend is not installed.

    Example::

        source = open_source("gs://bucket/model.ckpt-1.index", storage_options={"token": "anon"})
    """
    if fs is None and not storage_options:
        text = os.fspath(path)
        if "://" not in text and "::" not in text:
            return LocalFile(text)
    storage, where = locate(path, fs=fs, storage_options=storage_options)
    return storage.open(where)
