"""The process tests/storage/test_crash.py kills: a fork server of saving children.

Run as ``python -m tests.storage.crash_worker``.  It reads one JSON command a line on stdin
and answers one JSON line on stdout.  Each command forks a child from this process (NumPy
and tfckpt already imported, so a child starts in a millisecond or two) that saves in one of
the :data:`MODES`, every value of generation ``g`` saying ``g`` (:func:`values`):

``{"op": "kill", "mode", "dir", "log", "delay"}``
    the child continues from what is on disk and saves in a loop, appending ``g path`` to
    ``log`` after each save returns; it is killed with SIGKILL after ``delay`` seconds.
``{"op": "crash_at", "mode", "dir", "log", "step"}``
    the child makes one save and kills itself with SIGKILL just before the ``step``-th
    file-system step of it (an ``os.replace``, ``os.remove`` or ``os.fsync``).
``{"op": "save", "mode", "dir", "log"}``
    the child makes one save and exits.

The answer is ``{"signal": n or null, "exit": n or null}`` (how the child ended).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
import traceback
from typing import Any

import numpy as np

import tfckpt

MODES = ("save_tensors", "checkpoint_save", "manager", "numpy_state")
PREFIX_NAME = "model"  # the one prefix of the save_tensors and numpy_state modes
CHECKPOINT_NAME = "ckpt"  # Checkpoint.save's and the manager's prefixes: ckpt-<g>
MAX_TO_KEEP = 3


def values(g: int) -> dict[str, Any]:
    """What generation ``g`` saves with save_tensors: every value says ``g``, and the sizes
    change with ``g`` so that files of different generations differ in length too."""
    return {
        "generation": np.array(g, np.int64),
        "weights": np.full(256 + g % 97, g, np.float32),
        "table": np.full(2048 + 13 * (g % 11), g, np.int64),
        "names": np.array([str(g).encode()] * (1 + g % 5), dtype=object),
    }


def vector(g: int) -> np.ndarray:
    """The NumpyState attribute of generation ``g`` (its size changes with ``g``)."""
    return np.full(100 + g % 97, g, np.float32)


def new_checkpoint() -> tuple[tfckpt.Checkpoint, tfckpt.NumpyState]:
    """The object tree the Checkpoint modes save and restore (fixed-shape arrays restored in
    place, a NumpyState whose attributes are re-created)."""
    state = tfckpt.NumpyState()
    checkpoint = tfckpt.Checkpoint(
        weights=np.zeros(300, np.float32), table=np.zeros(2048, np.int64), state=state
    )
    return checkpoint, state


def stamp(checkpoint: tfckpt.Checkpoint, state: tfckpt.NumpyState, g: int) -> None:
    """Sets every value of the tree to generation ``g`` (the numpy_state mode's tree is
    the NumpyState alone)."""
    if hasattr(checkpoint, "weights"):
        checkpoint.weights[...] = g
        checkpoint.table[...] = g
    state.generation = np.array(g, np.int64)
    state.vector = vector(g)


def check_tree(checkpoint: tfckpt.Checkpoint, state: tfckpt.NumpyState) -> int:
    """The generation a restored tree holds; AssertionError unless every value says it."""
    g = int(state.generation)
    assert (checkpoint.weights == g).all(), f"weights of generation {g}: {checkpoint.weights}"
    assert (checkpoint.table == g).all(), f"table of generation {g}"
    assert np.array_equal(state.vector, vector(g)), f"vector of generation {g}"
    return g


def check_tensors(tensors: dict[str, Any]) -> int:
    """The generation of a save_tensors checkpoint's tensors; AssertionError unless every
    tensor is exactly that generation's."""
    g = int(tensors["generation"])
    expected = values(g)
    assert set(tensors) == set(expected), sorted(tensors)
    for name, value in expected.items():
        assert np.array_equal(np.asarray(tensors[name]), value), f"{name} of generation {g}"
    return g


class Saver:
    """One mode's saves into ``directory``, continuing from what is there."""

    def __init__(self, mode: str, directory: str) -> None:
        self.mode = mode
        self.directory = directory
        self.prefix = os.path.join(directory, PREFIX_NAME)
        self.generation = 0
        self.checkpoint, self.state = new_checkpoint()
        self.manager: tfckpt.CheckpointManager | None = None
        getattr(self, f"_resume_{mode}")()

    def save(self) -> str:
        """Saves generation ``self.generation + 1``; returns its path."""
        g = self.generation + 1
        stamp(self.checkpoint, self.state, g)
        if self.mode == "save_tensors":
            path = tfckpt.save_tensors(self.prefix, values(g))
        elif self.mode == "checkpoint_save":
            path = self.checkpoint.save(os.path.join(self.directory, CHECKPOINT_NAME))
        elif self.mode == "manager":
            assert self.manager is not None
            saved = self.manager.save()
            assert saved is not None
            path = saved
        else:
            path = self.checkpoint.write(self.prefix)
        self.generation = g
        return path

    def _resume_save_tensors(self) -> None:
        if os.path.exists(self.prefix + ".index") or _interrupted(self.prefix):
            self.generation = check_tensors(tfckpt.load_tensors(self.prefix))

    def _resume_numpy_state(self) -> None:
        self.checkpoint = tfckpt.Checkpoint(state=self.state)
        if os.path.exists(self.prefix + ".index") or _interrupted(self.prefix):
            self.checkpoint.read(self.prefix).assert_consumed()
            self.generation = int(self.state.generation)
            assert np.array_equal(self.state.vector, vector(self.generation))

    def _resume_checkpoint_save(self) -> None:
        latest = tfckpt.latest_checkpoint(self.directory)
        if latest is not None:
            self.checkpoint.restore(latest).assert_consumed()
            self.generation = check_tree(self.checkpoint, self.state)
            assert self.checkpoint.save_counter == self.generation

    def _resume_manager(self) -> None:
        self.manager = tfckpt.CheckpointManager(
            self.checkpoint,
            self.directory,
            max_to_keep=MAX_TO_KEEP,
            checkpoint_name=CHECKPOINT_NAME,
        )
        if self.manager.restore_or_initialize() is not None:
            self.generation = check_tree(self.checkpoint, self.state)
            assert self.checkpoint.save_counter == self.generation


def _interrupted(prefix: str) -> bool:
    from tfckpt.storage.commit import aside_path

    return os.path.exists(aside_path(prefix + ".index"))


def _log(log: str, g: int, path: str) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{g} {path}\n".encode())
    finally:
        os.close(fd)


def _die_at(step: int) -> None:
    """Makes the ``step``-th file-system step from now on kill this process first."""
    count = [0]

    def trap(real: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            count[0] += 1
            if count[0] == step:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)

        return call

    for name in ("replace", "remove", "fsync"):
        setattr(os, name, trap(getattr(os, name)))


def child(command: dict[str, Any]) -> int:
    saver = Saver(command["mode"], command["dir"])
    op = command["op"]
    if op == "crash_at":
        _die_at(command["step"])
    while True:
        path = saver.save()
        _log(command["log"], saver.generation, path)
        if op != "kill":
            return 0


def run(command: dict[str, Any]) -> dict[str, Any]:
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            code = child(command)
        except BaseException:
            traceback.print_exc()
            sys.stderr.flush()
        finally:
            os._exit(code)
    if command["op"] == "kill":
        time.sleep(command["delay"])
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return {
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
    }


def warm_up() -> None:
    """Saves and resumes once in every mode here, so that what tfckpt imports lazily is
    imported once, not again in every child."""
    with tempfile.TemporaryDirectory() as scratch:
        for mode in MODES:
            directory = os.path.join(scratch, mode)
            os.mkdir(directory)
            Saver(mode, directory).save()
            Saver(mode, directory).save()


def main() -> None:
    warm_up()
    for line in sys.stdin:
        print(json.dumps(run(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
