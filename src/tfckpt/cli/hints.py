"""What to pass instead, when a path is not a checkpoint.

Checkpoints are named by a prefix, not a file, which trips up everyone once: passing
``model.ckpt.index``, a ``.data-*`` file, the ``checkpoint`` state file or a directory
without a state file gets a message saying which path would work.
"""

from __future__ import annotations

import glob
import os
import re

from tfckpt import paths
from tfckpt.checkpoint_state import STATE_FILENAME, read_state
from tfckpt.errors import CheckpointError
from tfckpt.inspection.sources import file_format

_DATA_FILE = re.compile(r"\.data-\d{5}-of-\d{5}$")
_MAX_LISTED = 4


def _is_checkpoint(prefix: str) -> bool:
    return paths.checkpoint_format(prefix) is not None


def _listing(prefixes: list[str]) -> str:
    shown = ", ".join(repr(p) for p in prefixes[:_MAX_LISTED])
    more = f" (and {len(prefixes) - _MAX_LISTED} more)" if len(prefixes) > _MAX_LISTED else ""
    return shown + more


def _prefixes_in(directory: str, depth: int = 4) -> list[str]:
    """Checkpoint prefixes (V2) in ``directory`` or below it (at most ``depth`` levels), from
    the shallowest level that has any."""
    base = os.path.normpath(directory).count(os.sep)
    found: dict[int, list[str]] = {}
    for root, dirs, files in os.walk(directory):
        level = os.path.normpath(root).count(os.sep) - base
        if level >= depth:
            dirs[:] = []
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".index"):
                found.setdefault(level, []).append(os.path.join(root, name[: -len(".index")]))
    return found[min(found)] if found else []


def wrong_path_hint(path: str, *, files_too: bool = False) -> str | None:
    """A message saying what to pass instead of ``path``, or None when ``path`` is a
    checkpoint (or there is nothing better to say).  ``files_too``: safetensors and
    ``.npz`` files are accepted where the path is used."""
    if files_too and file_format(path) is not None:
        return None
    if paths.checkpoint_format(path) == paths.V2:
        return None
    name = os.path.basename(os.path.normpath(path))
    # Files of a V2 checkpoint: the path resolution would take them for V1 files.
    if path.endswith(".index") and _is_checkpoint(path[: -len(".index")]):
        return (
            f"{path!r} is the index file of a checkpoint; pass its prefix "
            f"{path[: -len('.index')]!r} (without '.index')"
        )
    if _DATA_FILE.search(path) and _is_checkpoint(_DATA_FILE.sub("", path)):
        return (
            f"{path!r} is a data file of a checkpoint; pass its prefix {_DATA_FILE.sub('', path)!r}"
        )
    if path.endswith(".meta") and _is_checkpoint(path[: -len(".meta")]):
        return (
            f"{path!r} is a TensorFlow MetaGraph, not a checkpoint; pass the checkpoint "
            f"prefix {path[: -len('.meta')]!r}"
        )
    if os.path.isfile(path) and name == STATE_FILENAME:
        directory = os.path.dirname(path) or "."
        try:
            state = read_state(directory)
        except CheckpointError:
            state = None
        if state is not None:
            return (
                f"{path!r} is the 'checkpoint' state file, which names checkpoints; pass its "
                f"directory {directory!r} (for the latest, {state.model_checkpoint_path!r})"
            )
    if not files_too and file_format(path) is not None:
        return (
            f"{path!r} is a {file_format(path)} file, not a TensorFlow checkpoint; "
            "`tfckpt convert` turns it into one"
        )
    try:
        paths.resolve(path)
        return None  # a checkpoint after all (the error is about its contents)
    except CheckpointError:
        pass
    if os.path.isdir(path):
        found = _prefixes_in(path)
        if found:
            return (
                f"{path!r} has no 'checkpoint' state file naming its latest checkpoint; "
                f"pass a prefix: {_listing(found)}"
            )
        return f"{path!r} is a directory without checkpoints (no '*.index' files)"
    if not os.path.exists(path):
        near = sorted(p[: -len(".index")] for p in glob.glob(glob.escape(path) + "*.index"))
        if near:
            return f"no checkpoint at {path!r}; did you mean {_listing(near)}?"
    return None
