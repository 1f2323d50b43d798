"""File helpers the implementations share (all untimed except ``readinto``)."""

from __future__ import annotations

import os
import shutil
from typing import Any


def fresh_dir(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, exist_ok=True)


def fsync_tree(path: str) -> None:
    """Flushes every file under ``path`` (untimed, after a save) and the directory."""
    for root, _dirs, names in os.walk(path):
        for name in names:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fd = os.open(root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def readinto(path: str, buffer: Any) -> None:
    """Fills ``buffer`` with the file's bytes, unbuffered."""
    view = memoryview(buffer).cast("B")
    done = 0
    with open(path, "rb", buffering=0) as f:
        while done < len(view):
            n = f.readinto(view[done:])
            if not n:
                raise EOFError(path)
            done += n
