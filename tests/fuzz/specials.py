"""Files that are not what they seem: FIFOs, directories, devices, loops, sparse giants.

Each special replaces one file of a seed (a data file, the index, a V1 file, the state
file) in the case directory.  Reading must not block on a FIFO, follow a symlink into
``/dev/zero`` forever, or read a sparse 64 GiB file into memory: the outcome is a
CheckpointError (or, where the file is not needed, the right values).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tests.fuzz.mutant import Mutant
from tfckpt.checkpoint_state import STATE_FILENAME

if TYPE_CHECKING:
    from tests.fuzz.seeds import Seed

Maker = Callable[[Path], None]
SPARSE_SIZE = 64 << 30


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _directory(path: Path) -> None:
    path.mkdir()


def _dev_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def _symlink_loop(path: Path) -> None:
    path.symlink_to(path.name)


def _dangling(path: Path) -> None:
    path.symlink_to(path.name + ".missing")


def _sparse_giant(path: Path) -> None:
    with open(path, "wb") as f:
        f.truncate(SPARSE_SIZE)


def _sparse_giant_after(original: bytes) -> Maker:
    """The original bytes followed by a sparse hole up to 64 GiB."""

    def make(path: Path) -> None:
        with open(path, "wb") as f:
            f.write(original)
            f.truncate(SPARSE_SIZE)

    return make


MAKERS: dict[str, Maker] = {
    "a FIFO": _fifo,
    "a directory": _directory,
    "a symlink to /dev/zero": _dev_zero,
    "a symlink to itself": _symlink_loop,
    "a dangling symlink": _dangling,
    "a sparse 64 GiB file": _sparse_giant,
}


def _replacing(name: str, maker: Maker) -> Callable[[Path], None]:
    def setup(directory: Path) -> None:
        target = directory / name
        if target.exists() or target.is_symlink():
            target.unlink()
        maker(target)

    return setup


SPARSE_AFTER = "its bytes then a sparse hole to 64 GiB"
KINDS = (*MAKERS, SPARSE_AFTER)


def targets(seed: Seed) -> list[str]:
    """The files a special may replace: the seed's own and the state file."""
    return sorted({*seed.own, STATE_FILENAME})


def mutate(
    rng: random.Random, seed: Seed, name: str | None = None, kind: str | None = None
) -> Mutant:
    """One of the seed's files (or its absent state file) replaced by a special file
    (``name`` and ``kind`` random unless given)."""
    name = name or rng.choice(sorted({*seed.files, STATE_FILENAME}))
    kind = kind or rng.choice(KINDS)
    maker = MAKERS.get(kind) or _sparse_giant_after(seed.files.get(name, b""))
    return Mutant(
        f"{name}: replaced by {kind}",
        setup=_replacing(name, maker),
        changed=frozenset({"*"}),
    )
