"""Merging bundles written by several independent writers into one checkpoint.

Mirrors MergeBundles in tensorflow/core/util/tensor_bundle/tensor_bundle.cc (the
``MergeV2Checkpoints`` op): the headers must agree on endianness and version; shard counts
add up; every data file is renamed to ``<merged>.data-NNNNN-of-MMMMM`` in order of first
use; entries keep their offsets with the new shard ids; a key present in two bundles is an
error unless both list slices of one partitioned tensor, whose slice lists are then
combined; the merged index is written last and the input indexes are deleted.

Writers follow TensorFlow's naming for the parts of a sharded save
(python/checkpoint/functional_saver.py): ``<prefix>_temp/part-NNNNN-of-MMMMM``.

The merged checkpoint is published as the bundle writer publishes its files
(:mod:`tfckpt.storage.commit`): the merged prefix is claimed first (a concurrent writer of
it fails), a checkpoint it replaces is set aside until the merged index is in place, and
``durable=True`` fsyncs the merged index and the directory.

On an object store (fsspec URLs, or ``fs=``) there is no rename: the merged checkpoint's
data objects are server-side copies of the bundles' (:meth:`~tfckpt.storage.remote_commit.
RemoteCommit.adopt_object`), published as any remote commit is (data first, the merged
index last), after which the bundles' indexes and then their data objects are deleted.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from tfckpt.bundle.claim import claim_prefix
from tfckpt.bundle.naming import data_filename, index_filename
from tfckpt.errors import (
    CheckpointError,
    CheckpointNotFoundError,
    DataLossError,
    InvalidArgumentError,
    StorageError,
)
from tfckpt.proto import tensor_bundle_pb2
from tfckpt.storage.commit import Commit, LocalCommit, storage_error
from tfckpt.storage.location import LOCAL, Storage, commit_for, is_url, locate
from tfckpt.table.reader import TableReader
from tfckpt.table.writer import TableWriter

if TYPE_CHECKING:
    from tfckpt.storage.remote import RemoteStorage
    from tfckpt.storage.remote_commit import RemoteCommit


def part_prefix(prefix: str | os.PathLike[str], shard: int, num_shards: int) -> str:
    """Where writer ``shard`` of ``num_shards`` writes its part of the checkpoint
    (``/``-separated for a URL).

    Raises:
        InvalidArgumentError: ``shard`` is not in ``[0, num_shards)``.
    """
    if not 0 <= shard < num_shards:
        raise InvalidArgumentError(f"shard {shard} is not in [0, {num_shards})")
    text = os.fspath(prefix)
    join = posixpath.join if is_url(text) else os.path.join
    return join(f"{text}_temp", f"part-{shard:05d}-of-{num_shards:05d}")


def merge_bundles(
    prefixes: Sequence[str | os.PathLike[str]],
    merged_prefix: str | os.PathLike[str],
    *,
    allow_missing_files: bool = False,
    durable: bool = False,
    fs: Any = None,
    storage_options: Mapping[str, Any] | None = None,
) -> str:
    """Merges the bundles at ``prefixes`` into one checkpoint at ``merged_prefix``.

    ``durable=True`` fsyncs the data files, the merged index and the directory before
    returning, so the merged checkpoint survives a power loss.

    ``merged_prefix`` (and ``prefixes``) may be fsspec URLs (``storage_options`` go to
    fsspec) or paths on the fsspec filesystem ``fs``: the bundles of a multi-host save
    written to an object store are merged there.  Each data file is then copied by the
    store itself (S3 ``CopyObject``, GCS ``rewrite``: no byte goes through this process;
    a bundle written locally is uploaded instead), the merged index is uploaded last (a
    checkpoint it replaces loses its index first), and then the bundles' indexes and the
    data objects copied are deleted, each index before its data (:mod:`tfckpt.storage.
    remote_commit`; ``durable`` changes nothing there, and there is no lock: one merger
    per prefix is the caller's job).

    Raises:
        CheckpointNotFoundError: a bundle (unless ``allow_missing_files``), every bundle,
            or a data file is missing; nothing is moved.
        InvalidArgumentError: the bundles disagree (endianness, version, a tensor written
            twice or a partitioned tensor's dtype or shape); a bundle is on another store
            than ``merged_prefix`` (only local bundles can join a merge on a store);
            nothing is moved.
        DataLossError: an index is corrupt; nothing is moved.
        ConcurrentWriteError: another writer is writing ``merged_prefix``; nothing is moved.
        StorageError: moving, copying or writing failed; what was at ``merged_prefix`` is
            unchanged (on a store, unless its index was deleted already: the message says
            so).

    Example::

        merge_bundles([part_prefix("gs://b/run/ckpt", i, 2) for i in range(2)],
                      "gs://b/run/ckpt", storage_options={"token": "cloud"})
    """
    storage, merged = locate(merged_prefix, fs=fs, storage_options=storage_options)
    parts = [_locate_part(p, storage, fs, storage_options) for p in prefixes]
    num_shards = 0
    endianness: int | None = None
    version: bytes | None = None
    entries: dict[bytes, Any] = {}
    # data file -> (its storage, merged shard id), in order of first use
    shard_ids: dict[str, tuple[Storage, int]] = {}
    found_any = False
    read_indexes: list[tuple[Storage, str]] = []
    for part_storage, prefix in parts:
        index = index_filename(prefix)
        if not _exists(part_storage, index):
            if allow_missing_files:
                continue
            raise CheckpointNotFoundError(
                "cannot merge: the index does not exist (pass allow_missing_files=True to "
                "skip writers that wrote nothing)",
                path=index,
            )
        found_any = True
        read_indexes.append((part_storage, index))
        header, part_entries = _read_bundle(part_storage, index)
        if endianness is None:
            endianness = header.endianness
            version = header.version.SerializeToString(deterministic=True)
        elif header.endianness != endianness:
            raise InvalidArgumentError(
                "cannot merge: its endianness differs from the other bundles", path=index
            )
        elif header.version.SerializeToString(deterministic=True) != version:
            raise InvalidArgumentError(
                "cannot merge: its format version differs from the other bundles", path=index
            )
        num_shards += header.num_shards
        for key, entry in part_entries:
            name = key.decode("utf-8", "surrogateescape")
            existing = entries.get(key)
            if existing is not None:
                if not existing.slices or not entry.slices:
                    raise InvalidArgumentError(
                        "cannot merge: this writer wrote a tensor that another one wrote too "
                        "(each tensor must be written by exactly one writer)",
                        path=prefix,
                        tensor=name,
                    )
                if existing.dtype != entry.dtype or list(existing.shape.dim) != list(
                    entry.shape.dim
                ):
                    raise InvalidArgumentError(
                        "cannot merge: this writer disagrees with another one on the "
                        "partitioned tensor's dtype or full shape",
                        path=prefix,
                        tensor=name,
                    )
                existing.slices.extend(entry.slices)
                continue
            # As TensorFlow does, every first-seen entry (a sliced tensor's full entry too)
            # claims a merged shard id for its bundle's data file.
            data_file = data_filename(prefix, entry.shard_id, header.num_shards)
            if data_file not in shard_ids:
                shard_ids[data_file] = (part_storage, len(shard_ids))
            entry.shard_id = shard_ids[data_file][1]
            entries[key] = entry
    if not found_any:
        raise CheckpointNotFoundError(
            f"at least one bundle to merge must exist, but none of {[p for _, p in parts]!r} "
            "does",
            path=merged,
        )
    for data_file, (part_storage, _) in shard_ids.items():
        if not _exists(part_storage, data_file):
            raise CheckpointNotFoundError("cannot merge: the data file is missing", path=data_file)
    header = tensor_bundle_pb2.BundleHeaderProto()
    header.num_shards = num_shards
    assert endianness is not None and version is not None
    header.endianness = endianness  # type: ignore[assignment]
    header.version.ParseFromString(version)
    if storage.remote:
        _, commit = commit_for(merged, fs=fs, storage_options=storage_options)
        _publish(commit, merged, shard_ids, header, entries, durable=False)
        _remove_merged_parts(storage, read_indexes, shard_ids)
        return merged
    with claim_prefix(merged):
        _publish(LocalCommit(durable=durable), merged, shard_ids, header, entries, durable)
    for _, index in read_indexes:
        try:
            os.remove(index)
        except FileNotFoundError:
            pass
    return merged


def _locate_part(
    prefix: str | os.PathLike[str],
    merged: Storage,
    fs: Any,
    storage_options: Mapping[str, Any] | None,
) -> tuple[Storage, str]:
    """The storage of a bundle to merge into a checkpoint on ``merged`` and its path there:
    the same store, or (into a store) the local file system.

    Raises:
        InvalidArgumentError: the bundle is on another store.
    """
    text = os.fspath(prefix)
    if not merged.remote:
        if fs is None and not storage_options and not is_url(text):
            return LOCAL, text
        storage, where = locate(text, fs=fs, storage_options=storage_options)
    elif is_url(text) or fs is not None:
        storage, where = locate(text, fs=fs, storage_options=storage_options)
    else:
        storage, where = LOCAL, text  # a local bundle, uploaded into the store
    if storage.remote and (
        not merged.remote or cast("RemoteStorage", storage).fs != cast("RemoteStorage", merged).fs
    ):
        raise InvalidArgumentError(
            "cannot merge: this bundle is on another store than the merged checkpoint "
            "(merge bundles on the same store, or local ones into a store)",
            path=text,
        )
    return storage, where


def _exists(storage: Storage, path: str) -> bool:
    return os.path.exists(path) if not storage.remote else storage.isfile(path)


def _publish(
    commit: Commit,
    merged: str,
    shard_ids: dict[str, tuple[Storage, int]],
    header: Any,
    entries: dict[bytes, Any],
    durable: bool,
) -> None:
    """Moves the data files to the merged checkpoint's names (locally renamed, on a store
    copied there by the store, or uploaded when local), then writes its index (published
    last: the commit point)."""
    index_path = index_filename(merged)
    try:
        for data_file, (part_storage, shard_id) in shard_ids.items():
            final = data_filename(merged, shard_id, len(shard_ids))
            if part_storage.remote:
                cast("RemoteCommit", commit).adopt_object(data_file, final)
                continue
            if durable:
                _fsync_file(data_file)
            commit.adopt(data_file, final)
        table = TableWriter(commit.create(index_path))
        try:
            table.add(b"", header.SerializeToString())
            for key in sorted(entries):
                table.add(key, entries[key].SerializeToString(deterministic=True))
            table.finish()
        except StorageError:
            raise
        except OSError as exc:
            temporary = getattr(commit, "temporary_of", lambda _: None)(index_path)
            raise storage_error(
                exc, "writing the merged index failed", index_path, temporary
            ) from None
        commit.publish()
    except BaseException:
        commit.abort()
        raise


def _remove_merged_parts(
    storage: Storage,
    indexes: list[tuple[Storage, str]],
    shard_ids: dict[str, tuple[Storage, int]],
) -> None:
    """After a merge into a store: deletes the merged bundles' indexes, then their data
    files, which the merged checkpoint now holds copies of (a local merge renames them
    away); objects on the store first, then local files.

    Raises:
        StorageError: a delete failed (the merged checkpoint is complete).
    """
    from tfckpt.storage.remote_commit import remove_objects  # (imports fsspec)

    def on(remote: bool) -> list[str]:
        return [i for where, i in indexes if where.remote == remote] + [
            data for data, (where, _) in shard_ids.items() if where.remote == remote
        ]

    remove_objects(storage, on(True), doing="deleting a merged bundle's object")
    for path in on(False):
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise storage_error(exc, "removing a merged bundle's file failed", path) from None


def _fsync_file(path: str) -> None:
    """Makes an adopted data file's bytes durable (its writer may not have)."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise storage_error(exc, "syncing the data file failed", path) from None


def _read_bundle(storage: Storage, index: str) -> tuple[Any, list[tuple[bytes, Any]]]:
    if not storage.remote:
        table = TableReader.open(index)
    else:
        source = storage.open(index)
        try:
            (data,) = source.read_ranges([(0, source.size())])
        finally:
            source.close()
        table = TableReader(bytes(data), index)
    header = None
    entries = []
    for key, value in table.items():
        proto = (
            tensor_bundle_pb2.BundleHeaderProto()
            if key == b""
            else tensor_bundle_pb2.BundleEntryProto()
        )
        try:
            proto.ParseFromString(value)
        except Exception:
            raise DataLossError(f"entry {key!r} is not parseable", path=index) from None
        if key == b"":
            header = proto
        else:
            entries.append((key, proto))
    if header is None:
        raise DataLossError("no bundle header", path=index)
    return header, entries


def merge_parts(
    prefix: str | os.PathLike[str],
    num_shards: int,
    *,
    allow_missing_files: bool = False,
    durable: bool = False,
    fs: Any = None,
    storage_options: Mapping[str, Any] | None = None,
) -> str:
    """Merges the parts written at ``part_prefix(prefix, i, num_shards)`` into ``prefix``
    and removes the temporary directory, as TensorFlow's sharded save does.

    ``prefix`` may be an fsspec URL (``storage_options`` go to fsspec) or a path on the
    fsspec filesystem ``fs``, the parts written there by each host (``BundleWriter`` or
    :func:`tfckpt.save_tensors` with the same URL form): they are merged on the store as
    :func:`merge_bundles` says, and what is left under ``<prefix>_temp/`` is deleted.

    Removing the temporary directory is best effort, as TensorFlow's is.

    Raises:
        CheckpointError: as :func:`merge_bundles`.

    Example::

        # host i of 2:
        tfckpt.save_tensors(part_prefix("s3://b/run/ckpt", i, 2), tensors_of_host_i)
        # then one host:
        merge_parts("s3://b/run/ckpt", 2)
    """
    text = os.fspath(prefix)
    merged = merge_bundles(
        [part_prefix(text, i, num_shards) for i in range(num_shards)],
        text,
        allow_missing_files=allow_missing_files,
        durable=durable,
        fs=fs,
        storage_options=storage_options,
    )
    storage, temp_dir = locate(f"{text}_temp", fs=fs, storage_options=storage_options)
    if storage.remote:
        _remove_tree(cast("RemoteStorage", storage), temp_dir)
    else:
        shutil.rmtree(temp_dir, ignore_errors=True)
    return merged


def _remove_tree(storage: RemoteStorage, directory: str) -> None:
    """Deletes every object below ``directory`` on the store, best effort (as
    ``shutil.rmtree(ignore_errors=True)``): one listing, one DELETE per object."""
    from tfckpt.storage.remote_commit import guard, remove_objects  # (imports fsspec)

    fs, fs_path = storage.fs, storage.fs_path(directory)
    with contextlib.suppress(CheckpointError):
        with guard("listing the parts' directory", directory, consequence=False):
            fs.invalidate_cache(fs_path)
            found = list(fs.find(fs_path))
        remove_objects(fs, found, doing="deleting a part's object")
