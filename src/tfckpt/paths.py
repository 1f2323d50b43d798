"""Finding the checkpoint a user path means: a prefix, a directory, or a SavedModel.

Paths may be on any storage (:func:`tfckpt.storage.location.locate`: local files, or URLs
through fsspec).  HTTP(S) servers cannot be listed, so there a checkpoint is found by URL
alone: the prefix itself, a directory URL under which the ``checkpoint`` state file or the
SavedModel's ``variables/variables.index`` is served, or a single-file V1 checkpoint.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from tfckpt.checkpoint_state import read_state
from tfckpt.errors import CheckpointNotFoundError
from tfckpt.legacy.naming import v1_files
from tfckpt.storage.commit import aside_path
from tfckpt.storage.location import LOCAL, Storage, locate

V2 = "v2"
V1 = "v1"


def checkpoint_format(prefix: str, storage: Storage = LOCAL) -> str | None:
    """``'v2'`` when ``prefix.index`` exists, else ``'v1'`` when V1 files match, else None.

    The same order as TensorFlow (tensorflow/c/checkpoint_reader.cc tries the V2 bundle
    first).  A local prefix whose overwrite was killed midway (its old index set aside,
    see :mod:`tfckpt.storage.commit`) is still the old V2 checkpoint.
    """
    if storage.isfile(prefix + ".index"):
        return V2
    if not storage.remote and storage.isfile(aside_path(prefix + ".index")):
        return V2
    if not prefix.endswith(".index") and v1_files(prefix, storage):
        return V1
    return None


def latest_checkpoint(
    checkpoint_dir: str | os.PathLike[str],
    latest_filename: str | None = None,
    *,
    fs: Any = None,
    storage_options: Mapping[str, Any] | None = None,
) -> str | None:
    """The prefix named by the directory's ``checkpoint`` state file, if it exists.

    None when there is no state file or the checkpoint it names is gone, as in TensorFlow.
    ``checkpoint_dir`` may be an fsspec URL (``storage_options`` go to fsspec) or a path on
    the fsspec filesystem ``fs``; the prefix returned has the same form.  Raises
    DataLossError for a state file that cannot be parsed, CheckpointError when a remote
    store fails.

    Example::

        prefix = tfckpt.latest_checkpoint("gs://bucket/run")  # 'gs://bucket/run/ckpt-12'
    """
    storage, directory = locate(checkpoint_dir, fs=fs, storage_options=storage_options)
    found = _latest(directory, storage, latest_filename)
    return found[0] if found is not None else None


def _latest(
    directory: str, storage: Storage, latest_filename: str | None = None
) -> tuple[str, str] | None:
    """``(prefix, format)`` of the checkpoint the state file names, if it exists."""
    state = read_state(directory, latest_filename, storage=storage)
    if state is None:
        return None
    prefix = state.model_checkpoint_path
    fmt = checkpoint_format(prefix, storage)
    return (prefix, fmt) if fmt is not None else None


def resolve(path: str | os.PathLike[str], storage: Storage = LOCAL) -> tuple[str, str]:
    """Resolves a user path on ``storage`` to ``(prefix, format)``.

    ``path`` may be a checkpoint prefix, a directory with a ``checkpoint`` state file, a
    SavedModel directory (its ``variables/variables``) or a SavedModel ``variables``
    directory.  Raises CheckpointNotFoundError when it is none of these.
    """
    path = os.fspath(path)
    if storage.can_list:
        fmt = checkpoint_format(path, storage)
        if fmt is not None:
            return path, fmt
        if not storage.isdir(path):
            raise CheckpointNotFoundError(
                f"no checkpoint: neither {path + '.index'!r} nor a V1 checkpoint file exists",
                path=path,
            )
    elif storage.isfile(path + ".index"):
        return path, V2
    found = _in_directory(path, storage)
    if found is not None:
        return found
    if not storage.can_list and not path.endswith(".index") and v1_files(path, storage):
        return path, V1  # (last: servers may answer for a directory's own URL)
    state = read_state(path, storage=storage)
    if state is not None:
        raise CheckpointNotFoundError(
            f"the state file in {path!r} names this checkpoint, which does not exist",
            path=state.model_checkpoint_path,
        )
    if not storage.can_list:
        raise CheckpointNotFoundError(
            f"no checkpoint at this URL: neither {path + '.index'!r}, nor a 'checkpoint' "
            "state file or SavedModel variables under it, nor a V1 checkpoint file exist. "
            "HTTP(S) servers cannot be listed: give the checkpoint's prefix exactly (its "
            "URL without '.index') or a directory URL under which its 'checkpoint' state "
            "file is served",
            path=path,
        )
    raise CheckpointNotFoundError(
        "a directory without a 'checkpoint' state file, checkpoint or SavedModel variables",
        path=path,
    )


def _in_directory(path: str, storage: Storage) -> tuple[str, str] | None:
    """The checkpoint of a directory: named by its state file, or SavedModel variables."""
    found = _latest(path, storage)
    if found is not None:
        return found
    variables = storage.join(path, "variables")
    for candidate in (storage.join(variables, "variables"), variables):
        if storage.isfile(candidate + ".index"):
            return candidate, V2
    return None
