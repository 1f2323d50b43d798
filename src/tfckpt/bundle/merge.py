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
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from typing import Any

from tfckpt.bundle.claim import claim_prefix
from tfckpt.bundle.naming import data_filename, index_filename
from tfckpt.errors import CheckpointNotFoundError, DataLossError, InvalidArgumentError
from tfckpt.proto import tensor_bundle_pb2
from tfckpt.storage.commit import LocalCommit, storage_error
from tfckpt.table.reader import TableReader
from tfckpt.table.writer import TableWriter


def part_prefix(prefix: str | os.PathLike[str], shard: int, num_shards: int) -> str:
    """Where writer ``shard`` of ``num_shards`` writes its part of the checkpoint.

    Raises:
        InvalidArgumentError: ``shard`` is not in ``[0, num_shards)``.
    """
    if not 0 <= shard < num_shards:
        raise InvalidArgumentError(f"shard {shard} is not in [0, {num_shards})")
    return os.path.join(f"{os.fspath(prefix)}_temp", f"part-{shard:05d}-of-{num_shards:05d}")


def merge_bundles(
    prefixes: Sequence[str | os.PathLike[str]],
    merged_prefix: str | os.PathLike[str],
    *,
    allow_missing_files: bool = False,
    durable: bool = False,
) -> str:
    """Merges the bundles at ``prefixes`` into one checkpoint at ``merged_prefix``.

    ``durable=True`` fsyncs the data files, the merged index and the directory before
    returning, so the merged checkpoint survives a power loss.

    Raises:
        CheckpointNotFoundError: a bundle (unless ``allow_missing_files``), every bundle,
            or a data file is missing; nothing is moved.
        InvalidArgumentError: the bundles disagree (endianness, version, a tensor written
            twice or a partitioned tensor's dtype or shape); nothing is moved.
        DataLossError: an index is corrupt; nothing is moved.
        ConcurrentWriteError: another writer is writing ``merged_prefix``; nothing is moved.
        StorageError: moving or writing failed; what was at ``merged_prefix`` is unchanged.
    """
    merged = os.fspath(merged_prefix)
    parts = [os.fspath(p) for p in prefixes]
    num_shards = 0
    endianness: int | None = None
    version: bytes | None = None
    entries: dict[bytes, Any] = {}
    shard_ids: dict[str, int] = {}  # data file -> merged shard id, in order of first use
    found_any = False
    for prefix in parts:
        index = index_filename(prefix)
        if not os.path.exists(index):
            if allow_missing_files:
                continue
            raise CheckpointNotFoundError(
                "cannot merge: the index does not exist (pass allow_missing_files=True to "
                "skip writers that wrote nothing)",
                path=index,
            )
        found_any = True
        header, part_entries = _read_bundle(index)
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
            entry.shard_id = shard_ids.setdefault(data_file, len(shard_ids))
            entries[key] = entry
    if not found_any:
        raise CheckpointNotFoundError(
            f"at least one bundle to merge must exist, but none of {parts!r} does",
            path=merged,
        )
    for data_file in shard_ids:
        if not os.path.exists(data_file):
            raise CheckpointNotFoundError("cannot merge: the data file is missing", path=data_file)
    header = tensor_bundle_pb2.BundleHeaderProto()
    header.num_shards = num_shards
    assert endianness is not None and version is not None
    header.endianness = endianness  # type: ignore[assignment]
    header.version.ParseFromString(version)
    with claim_prefix(merged):
        _publish(merged, shard_ids, header, entries, durable)
    for prefix in parts:
        try:
            os.remove(index_filename(prefix))
        except FileNotFoundError:
            pass
    return merged


def _publish(
    merged: str, shard_ids: dict[str, int], header: Any, entries: dict[bytes, Any], durable: bool
) -> None:
    """Renames the data files to the merged checkpoint's names, then writes its index
    (renamed last: the commit point)."""
    commit = LocalCommit(durable=durable)
    index_path = index_filename(merged)
    try:
        for data_file, shard_id in shard_ids.items():
            if durable:
                _fsync_file(data_file)
            commit.adopt(data_file, data_filename(merged, shard_id, len(shard_ids)))
        table = TableWriter(commit.create(index_path))
        try:
            table.add(b"", header.SerializeToString())
            for key in sorted(entries):
                table.add(key, entries[key].SerializeToString(deterministic=True))
            table.finish()
        except OSError as exc:
            temporary = commit.temporary_of(index_path)
            raise storage_error(
                exc, "writing the merged index failed", index_path, temporary
            ) from None
        commit.publish()
    except BaseException:
        commit.abort()
        raise


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


def _read_bundle(index: str) -> tuple[Any, list[tuple[bytes, Any]]]:
    table = TableReader.open(index)
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
) -> str:
    """Merges the parts written at ``part_prefix(prefix, i, num_shards)`` into ``prefix``
    and removes the temporary directory, as TensorFlow's sharded save does.

    Raises:
        As :func:`merge_bundles`.
    """
    merged = merge_bundles(
        [part_prefix(prefix, i, num_shards) for i in range(num_shards)],
        prefix,
        allow_missing_files=allow_missing_files,
        durable=durable,
    )
    temp_dir = f"{os.fspath(prefix)}_temp"
    shutil.rmtree(temp_dir, ignore_errors=True)
    return merged
