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
``Merge``) rejects a singular field given twice; :func:`write_state` writes the paths as
given, without appending ``model_checkpoint_path``, through ``<file>.tmp<16 hex digits>``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from tfckpt.errors import DataLossError

STATE_FILENAME = "checkpoint"


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
    checkpoint_dir: str | os.PathLike[str], latest_filename: str | None = None
) -> CheckpointState | None:
    """Parses the state file of ``checkpoint_dir``; None when there is none.

    Relative paths in the file are returned joined to ``checkpoint_dir`` (as TensorFlow's
    ``get_checkpoint_state`` does).  A file that is not a text CheckpointState raises
    DataLossError (TensorFlow logs a warning and returns None; a silently ignored state file
    would make a training job start over).
    """
    from google.protobuf import text_format

    from tfckpt.proto import checkpoint_state_pb2

    directory = os.fspath(checkpoint_dir)
    path = state_path(directory, latest_filename)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
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

    def resolve(p: str) -> str:
        return p if os.path.isabs(p) else os.path.join(directory, p)

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
) -> str:
    """Atomically replaces the state file of ``checkpoint_dir``; returns its path.

    Paths are written as given (pass paths relative to the directory for a movable
    directory, as CheckpointManager does).
    """
    path = state_path(checkpoint_dir, latest_filename)
    text = format_state(
        model_checkpoint_path,
        all_model_checkpoint_paths,
        all_model_checkpoint_timestamps,
        last_preserved_timestamp,
    )
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    temp = f"{path}.tmp{secrets.token_hex(8)}"
    try:
        with open(temp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.remove(temp)
        raise
    return path
