"""Finding the checkpoint a user path means: a prefix, a directory, or a SavedModel."""

from __future__ import annotations

import os

from tfckpt.checkpoint_state import read_state
from tfckpt.errors import CheckpointNotFoundError
from tfckpt.legacy.naming import v1_files

V2 = "v2"
V1 = "v1"


def checkpoint_format(prefix: str) -> str | None:
    """``'v2'`` when ``prefix.index`` exists, else ``'v1'`` when V1 files match, else None.

    The same order as TensorFlow (tensorflow/c/checkpoint_reader.cc tries the V2 bundle
    first).
    """
    if os.path.isfile(prefix + ".index"):
        return V2
    if v1_files(prefix) and not prefix.endswith(".index"):
        return V1
    return None


def latest_checkpoint(
    checkpoint_dir: str | os.PathLike[str], latest_filename: str | None = None
) -> str | None:
    """The prefix named by the directory's ``checkpoint`` state file, if it exists.

    None when there is no state file or the checkpoint it names is gone, as in TensorFlow.
    """
    state = read_state(checkpoint_dir, latest_filename)
    if state is None:
        return None
    prefix = state.model_checkpoint_path
    return prefix if checkpoint_format(prefix) is not None else None


def resolve(path: str | os.PathLike[str]) -> tuple[str, str]:
    """Resolves a user path to ``(prefix, format)``.

    ``path`` may be a checkpoint prefix, a directory with a ``checkpoint`` state file, a
    SavedModel directory (its ``variables/variables``) or a SavedModel ``variables``
    directory.
    """
    path = os.fspath(path)
    fmt = checkpoint_format(path)
    if fmt is not None:
        return path, fmt
    if os.path.isdir(path):
        latest = latest_checkpoint(path)
        if latest is not None:
            return latest, checkpoint_format(latest) or V2
        for candidate in (
            os.path.join(path, "variables", "variables"),
            os.path.join(path, "variables"),
        ):
            if os.path.isfile(candidate + ".index"):
                return candidate, V2
        state = read_state(path)
        if state is not None:
            raise CheckpointNotFoundError(
                f"the state file in {path!r} names this checkpoint, which does not exist",
                path=state.model_checkpoint_path,
            )
        raise CheckpointNotFoundError(
            "a directory without a 'checkpoint' state file, checkpoint or SavedModel variables",
            path=path,
        )
    raise CheckpointNotFoundError(
        f"no checkpoint: neither {path + '.index'!r} nor a V1 checkpoint file exists",
        path=path,
    )
