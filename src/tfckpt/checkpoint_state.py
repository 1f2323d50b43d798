"""The ``checkpoint`` state file that names a directory's checkpoints.

It is a text-format CheckpointState (tensorflow/python/training/checkpoint_state.proto)::

    1 model_checkpoint_path            string           the latest checkpoint's prefix
    2 all_model_checkpoint_paths       repeated string  the kept checkpoints, oldest first
    3 all_model_checkpoint_timestamps  repeated double  their times, seconds since the epoch
    4 last_preserved_timestamp         double           time of the last checkpoint kept
                                                        for keep_checkpoint_every_n_hours

as protobuf's ``text_format.MessageToString`` prints it; CheckpointManager writes e.g.::

    model_checkpoint_path: "ckpt-2"
    all_model_checkpoint_paths: "ckpt-1"
    all_model_checkpoint_paths: "ckpt-2"
    all_model_checkpoint_timestamps: 1796301375.2630537
    all_model_checkpoint_timestamps: 1796301375.2704601
    last_preserved_timestamp: 1796301374.2258065

Paths may be relative to the directory.  Read and written as tensorflow/python/checkpoint/
checkpoint_management.py does (python/training/ before TensorFlow 2.9): relative paths are
resolved against the directory on read, and the file is replaced atomically on write.

Writing (update_checkpoint_state_internal) happens after the checkpoint's files are
complete.  generate_checkpoint_state_proto appends ``model_checkpoint_path`` to the list
unless it is already the last element, and refuses timestamps that do not match the paths
one for one; the text goes through file_io.atomic_write_string_to_file, a temporary
``<file>.tmp<uuid4 hex>`` renamed over the file (a direct write where the file system has
no atomic rename).  CheckpointManager writes relative paths with timestamps, once right
after a save and again after deleting old checkpoints; ``tf.train.Checkpoint.save`` writes
only the latest path, relative, without timestamps; the TF1 Saver writes the paths it was
given (``save_relative_paths`` defaults to False).  A checkpoint path equal to the state
file's own path is refused.  Reading (get_checkpoint_state) parses with
``text_format.Merge``, joins relative paths to the directory, raises ValueError without a
``model_checkpoint_path`` and logs and returns None for a file it cannot parse;
latest_checkpoint then returns the path if ``<path>.index`` or ``<path>`` exists.

tfckpt differs here: :func:`read_state` raises DataLossError for a file it cannot parse or
without a ``model_checkpoint_path``, and parses with ``text_format.Parse``, which (unlike
``Merge``) rejects a singular field given twice, and refuses a file larger than
:data:`MAX_STATE_FILE_BYTES` (TensorFlow reads any size); :func:`write_state` writes the
paths as given, without appending ``model_checkpoint_path``, through
``<file>.tempstate-tfckpt-<16 hex digits>`` (fsynced, then the directory, with
``durable=True``); writers hold the state file's lock (:func:`state_lock`) meanwhile, under
which the temporaries killed writers left are removed.

On an object store (``fs=`` or ``storage_options=`` with a URL, as
:func:`tfckpt.storage.location.locate` takes them) the state file is one object replaced by
a single upload (:class:`~tfckpt.storage.remote_commit.RemoteCommit`): readers see the old
file or the new one, never a part.  Write it after the checkpoint's index is published,
so it never names an incomplete checkpoint.  There is no lock there: :func:`state_lock`
holds nothing, and one writer per directory is the caller's job.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tfckpt.errors import DataLossError, StorageError
from tfckpt.storage.commit import (
    LocalCommit,
    fsync_directory,
    reserved_final,
    storage_error,
    temporary_path,
)
from tfckpt.storage.location import LOCAL, Storage, commit_for, is_url, locate
from tfckpt.storage.lock import FileLock

STATE_FILENAME = "checkpoint"
# A state file lists checkpoints, some 80 bytes each with their timestamps: this allows some
# 12,000 and bounds parsing one to about a second (text_format's worst case, a list of short
# numbers, parses about a microsecond per byte; the common layout ten times faster).
MAX_STATE_FILE_BYTES = 1 << 20


@dataclass
class CheckpointState:
    """The contents of a ``checkpoint`` state file."""

    model_checkpoint_path: str
    all_model_checkpoint_paths: list[str] = field(default_factory=list)
    all_model_checkpoint_timestamps: list[float] = field(default_factory=list)
    last_preserved_timestamp: float = 0.0


def state_path(checkpoint_dir: str | os.PathLike[str], latest_filename: str | None = None) -> str:
    return os.path.join(os.fspath(checkpoint_dir), latest_filename or STATE_FILENAME)


def read_state(
    checkpoint_dir: str | os.PathLike[str],
    latest_filename: str | None = None,
    *,
    storage: Storage = LOCAL,
    fs: Any = None,
    storage_options: Mapping[str, Any] | None = None,
) -> CheckpointState | None:
    """Parses the state file of ``checkpoint_dir`` (on ``storage``, or where an fsspec URL,
    ``fs`` or ``storage_options`` say, as :func:`tfckpt.storage.location.locate` takes
    them; local files otherwise); None when there is none.

    Relative paths in the file are returned joined to ``checkpoint_dir`` (as TensorFlow's
    ``get_checkpoint_state`` does).  A file that is not a text CheckpointState raises
    DataLossError (TensorFlow logs a warning and returns None; a silently ignored state file
    would make a training job start over).
    """
    from google.protobuf import text_format

    from tfckpt.proto import checkpoint_state_pb2

    directory = os.fspath(checkpoint_dir)
    if storage is LOCAL and (fs is not None or storage_options or is_url(directory)):
        storage, directory = locate(directory, fs=fs, storage_options=storage_options)
    path = storage.join(directory, latest_filename or STATE_FILENAME)
    raw = storage.read_small(path, MAX_STATE_FILE_BYTES + 1)
    if raw is None:
        return None
    if len(raw) > MAX_STATE_FILE_BYTES:
        raise DataLossError(
            f"not a checkpoint state file: larger than {MAX_STATE_FILE_BYTES} bytes",
            path=path,
        )
    try:
        text = raw.decode("utf-8")
        proto = checkpoint_state_pb2.CheckpointState()
        text_format.Parse(text, proto)
    except (UnicodeDecodeError, text_format.ParseError) as exc:
        raise DataLossError(
            f"not a checkpoint state file (text-format CheckpointState): {exc}",
            path=path,
        ) from None
    if not proto.model_checkpoint_path:
        raise DataLossError(
            "no model_checkpoint_path in the state file (expected the latest checkpoint's prefix)",
            path=path,
        )
    for named in (proto.model_checkpoint_path, *proto.all_model_checkpoint_paths):
        if "\x00" in named:  # no file system has such a path (os functions raise ValueError)
            raise DataLossError(f"a checkpoint path with a NUL character: {named!r}", path=path)

    def resolve(p: str) -> str:
        return p if storage.isabs(p) else storage.join(directory, p)

    return CheckpointState(
        model_checkpoint_path=resolve(proto.model_checkpoint_path),
        all_model_checkpoint_paths=[resolve(p) for p in proto.all_model_checkpoint_paths],
        all_model_checkpoint_timestamps=list(proto.all_model_checkpoint_timestamps),
        last_preserved_timestamp=proto.last_preserved_timestamp,
    )


def format_state(
    model_checkpoint_path: str,
    all_model_checkpoint_paths: Sequence[str] = (),
    all_model_checkpoint_timestamps: Sequence[float] = (),
    last_preserved_timestamp: float | None = None,
) -> str:
    """The text of a state file, exactly as TensorFlow's ``text_format`` writes it."""
    from google.protobuf import text_format

    from tfckpt.proto import checkpoint_state_pb2

    proto = checkpoint_state_pb2.CheckpointState()
    proto.model_checkpoint_path = model_checkpoint_path
    proto.all_model_checkpoint_paths.extend(all_model_checkpoint_paths)
    proto.all_model_checkpoint_timestamps.extend(all_model_checkpoint_timestamps)
    if last_preserved_timestamp is not None:
        proto.last_preserved_timestamp = last_preserved_timestamp
    return str(text_format.MessageToString(proto))


def write_state(
    checkpoint_dir: str | os.PathLike[str],
    model_checkpoint_path: str,
    all_model_checkpoint_paths: Sequence[str] = (),
    all_model_checkpoint_timestamps: Sequence[float] = (),
    last_preserved_timestamp: float | None = None,
    latest_filename: str | None = None,
    *,
    durable: bool = False,
    fs: Any = None,
    storage_options: Mapping[str, Any] | None = None,
) -> str:
    """Atomically replaces the state file of ``checkpoint_dir``; returns its path.

    Paths are written as given (pass paths relative to the directory for a movable
    directory, as CheckpointManager does).  ``durable=True`` fsyncs the file before it
    replaces the old one and the directory after, so the new state survives a power loss.
    ``checkpoint_dir`` may be an fsspec URL (with ``storage_options``) or a path on the
    fsspec filesystem ``fs``: the file is then replaced by one upload (see the module).

    Raises:
        StorageError: the file could not be written (``errno`` says why: ``EACCES`` for a
            store refusing access) or its path is a directory; the state file is unchanged.

    Example::

        write_state("s3://bucket/run", "ckpt-2", ["ckpt-1", "ckpt-2"], [1.0, 2.0])
    """
    text = format_state(
        model_checkpoint_path,
        all_model_checkpoint_paths,
        all_model_checkpoint_timestamps,
        last_preserved_timestamp,
    )
    check_state_path(checkpoint_dir, latest_filename, fs=fs, storage_options=storage_options)
    path, commit = commit_for(
        state_path(checkpoint_dir, latest_filename),
        fs=fs,
        storage_options=storage_options,
        durable=durable,
    )
    if not isinstance(commit, LocalCommit):
        # One file: the upload replaces the old object whole (the commit deletes nothing).
        try:
            commit.create(path).write(text.encode("utf-8"))
            commit.publish()
        except BaseException:
            commit.abort()
            raise
        return path
    # Locally one os.replace is atomic (LocalCommit would set the old file aside first).
    directory = os.path.dirname(path) or "."
    temp = temporary_path(path, secrets.token_hex(8))
    try:
        os.makedirs(directory, exist_ok=True)
        with open(temp, "w", encoding="utf-8") as f:
            f.write(text)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(temp, path)
    except OSError as exc:
        _remove_quietly(temp)
        raise storage_error(exc, "writing the state file failed", path, temp) from None
    except BaseException:
        _remove_quietly(temp)
        raise
    if durable:
        fsync_directory(directory)
    return path


def check_state_path(
    checkpoint_dir: str | os.PathLike[str],
    latest_filename: str | None = None,
    *,
    fs: Any = None,
    storage_options: Mapping[str, Any] | None = None,
) -> None:
    """Raises StorageError (``errno.EISDIR``) when the state file's path is a directory,
    before anything is written (on the store that ``fs``/``storage_options`` give, as
    :func:`write_state` takes them).

    Raises:
        StorageError: it is a directory.
        CheckpointError: the store cannot be asked (access denied...).
    """
    path = state_path(checkpoint_dir, latest_filename)
    storage, where = locate(path, fs=fs, storage_options=storage_options)
    if storage.isdir(where):
        raise StorageError(
            "the checkpoint state file's path is a directory: move it away, or name another "
            "state file (latest_filename)",
            path=where,
            errno=errno.EISDIR,
        )


@contextlib.contextmanager
def state_lock(
    checkpoint_dir: str | os.PathLike[str],
    latest_filename: str | None = None,
    *,
    wait: float = 0.0,
    what: str = "writer",
    fs: Any = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Iterator[None]:
    """Holds the lock of the directory's state file (waiting up to ``wait`` seconds) and
    removes the temporaries of it that killed writers left.

    On an object store (``fs``/``storage_options`` as :func:`write_state` takes them)
    there is no lock to take: it holds nothing (one writer per directory is the caller's
    job there).

    Raises:
        ConcurrentWriteError: another writer (a CheckpointManager saving, or another state
            file write) holds it.
        StorageError: the lock file cannot be made.
    """
    path = state_path(checkpoint_dir, latest_filename)
    storage, path = locate(path, fs=fs, storage_options=storage_options)
    if storage.remote:
        yield
        return
    with FileLock.acquire(path, wait=wait, what=what) as lock:
        if lock.inherited:  # a writer died holding it: its temporary may be there
            _remove_state_temporaries(path)
        yield


def _remove_state_temporaries(path: str) -> None:
    directory, name = os.path.split(path)
    try:
        names = os.listdir(directory or ".")
    except OSError:
        return
    for other in names:
        if reserved_final(other) == (name, "temporary"):
            _remove_quietly(os.path.join(directory, other))


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)
