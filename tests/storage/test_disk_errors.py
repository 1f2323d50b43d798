"""A full disk or an I/O error during any save: the previous checkpoint stays, nothing
partial stands under a final name, and the error is a StorageError naming the file.

Failures are injected at every step of each kind of save in turn (the k-th write, gathered
write, fsync or rename fails with ENOSPC or EIO), and made real in a child process whose
file-size limit (RLIMIT_FSIZE) a large save exceeds (EFBIG).  With ``TFCKPT_SMALL_FS`` set
to a directory on a small file system (a 1 MiB tmpfs, say), a save that does not fit there
is tried too (ENOSPC from the kernel).
"""

from __future__ import annotations

import errno
import io
import os
import subprocess
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import tfckpt
from tfckpt.errors import CheckpointError, StorageError
from tfckpt.storage import commit as commit_module
from tfckpt.storage.lock import LOCK_SUFFIX

REPO = Path(__file__).resolve().parents[2]
BIG = 300_000  # elements: a batch large enough to be written with os.writev


@dataclass
class Scenario:
    """A save that replaces an earlier checkpoint, and how to check that the earlier one
    is still what is there."""

    prepare: Callable[[Path], None]  # writes the earlier checkpoint
    save: Callable[[Path], None]  # the save that fails
    check_old: Callable[[Path], None]  # AssertionError unless the earlier one is intact


def _tensors(g: int) -> dict[str, np.ndarray]:
    return {"g": np.array(g), "big": np.full(BIG, g, np.float32), "small": np.full(7, g)}


def _check_tensors(prefix: Path, g: int) -> None:
    tensors = tfckpt.load_tensors(prefix)
    assert int(tensors["g"]) == g and (tensors["big"] == g).all() and (tensors["small"] == g).all()


def _tree(g: int) -> tfckpt.Checkpoint:
    state = tfckpt.NumpyState()
    state.x = np.full(BIG, g, np.float32)
    return tfckpt.Checkpoint(w=np.full(9, g, np.int64), state=state)


def _check_tree(prefix: str | Path, g: int) -> None:
    checkpoint = _tree(0)
    checkpoint.read(prefix).assert_nontrivial_match()
    assert (checkpoint.w == g).all() and (checkpoint.state.x == g).all()


def _manager(directory: Path) -> tfckpt.CheckpointManager:
    return tfckpt.CheckpointManager(_tree(0), directory, max_to_keep=1)


def _manager_save(directory: Path, g: int) -> None:
    manager = _manager(directory)
    manager.checkpoint.w[...] = g
    manager.checkpoint.state.x = np.full(BIG, g, np.float32)
    manager.save(checkpoint_number=g)


def _check_manager(directory: Path) -> None:
    assert tfckpt.latest_checkpoint(directory) == str(directory / "ckpt-1")
    _check_tree(directory / "ckpt-1", 1)
    assert _manager(directory).latest_checkpoint == str(directory / "ckpt-1")


def _merge(directory: Path, g: int) -> None:
    parts = []
    for shard in range(2):
        part = tfckpt.part_prefix(directory / "m", shard, 2)
        tfckpt.save_tensors(part, {f"t{shard}": np.full(BIG, g, np.float32), f"g{shard}": g})
        parts.append(part)
    tfckpt.merge_parts(directory / "m", 2)


def _check_merged(directory: Path, g: int) -> None:
    tensors = tfckpt.load_tensors(directory / "m")
    assert int(tensors["g0"]) == int(tensors["g1"]) == g and (tensors["t1"] == g).all()


SCENARIOS = {
    "save_tensors": Scenario(
        lambda d: tfckpt.save_tensors(d / "m", _tensors(1)),
        lambda d: tfckpt.save_tensors(d / "m", _tensors(2), durable=True),
        lambda d: _check_tensors(d / "m", 1),
    ),
    "Checkpoint.write": Scenario(
        lambda d: _tree(1).write(d / "m"),
        lambda d: _tree(2).write(d / "m", durable=True),
        lambda d: _check_tree(d / "m", 1),
    ),
    "Checkpoint.save": Scenario(
        lambda d: _tree(1).save(d / "ckpt"),
        lambda d: _tree(2).save(d / "ckpt", durable=True),  # ckpt-1 again: an overwrite
        lambda d: (_check_tree(d / "ckpt-1", 1), _check_latest(d, "ckpt-1")),
    ),
    "CheckpointManager.save": Scenario(
        lambda d: _manager_save(d, 1),
        lambda d: _manager_save(d, 2),  # deletes ckpt-1 once ckpt-2 is recorded
        _check_manager,
    ),
    "merge_parts": Scenario(
        lambda d: _merge(d, 1),
        lambda d: _merge(d, 2),
        lambda d: _check_merged(d, 1),
    ),
}


def _check_latest(directory: Path, name: str) -> None:
    assert tfckpt.latest_checkpoint(directory) == str(directory / name)


def _listing(directory: Path) -> dict[str, bytes]:
    """The files of ``directory`` and their bytes (a merge's parts, in a subdirectory, are
    the caller's; only tfckpt's reserved names must not be left there)."""
    for path in directory.rglob("*"):
        assert commit_module.reserved_final(path.name) is None, path
        assert not path.name.endswith(LOCK_SUFFIX), path
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()}


class _Injector:
    """Counts calls of the file-system steps and fails the chosen one."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, kind: str, fail_at: int, code: int):
        self.kind, self.fail_at, self.code, self.calls = kind, fail_at, code, 0
        if kind in ("replace", "fsync", "writev"):
            real = getattr(os, kind)
            monkeypatch.setattr(os, kind, lambda *a, **k: self._step(real, *a, **k))
        else:  # "write": what a buffered file writes or flushes
            monkeypatch.setattr(commit_module, "io", self._io())

    def _step(self, real, *args, **kwargs):
        self.calls += 1
        if self.calls == self.fail_at:
            raise OSError(self.code, os.strerror(self.code))
        return real(*args, **kwargs)

    def _io(self):
        injector = self

        class Writer(io.BufferedWriter):
            def write(self, data):
                return injector._step(super().write, data)

            def flush(self):
                return injector._step(super().flush)

        return types.SimpleNamespace(
            BufferedWriter=Writer, FileIO=io.FileIO, DEFAULT_BUFFER_SIZE=io.DEFAULT_BUFFER_SIZE
        )


def _steps(monkeypatch: pytest.MonkeyPatch, scenario: Scenario, kind: str, tmp_path) -> int:
    """How many steps of ``kind`` the scenario's save takes."""
    directory = tmp_path / "count"
    directory.mkdir()
    scenario.prepare(directory)
    with monkeypatch.context() as patch:
        injector = _Injector(patch, kind, 0, 0)
        scenario.save(directory)
    return injector.calls


@pytest.mark.parametrize("name", list(SCENARIOS))
@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("write", errno.ENOSPC),
        ("writev", errno.ENOSPC),
        ("fsync", errno.EIO),
        ("replace", errno.EIO),
    ],
)
def test_a_failing_step_leaves_the_previous_checkpoint(monkeypatch, tmp_path, name, kind, code):
    """Whichever write, gathered write, fsync or rename of a save fails: a StorageError
    (a CheckpointError and an OSError, with the errno) names a file, the directory holds
    what it held before (no partial or temporary file), and the earlier checkpoint reads
    as before.  Two failures come after a checkpoint is complete: a directory fsync after
    its commit point (the error says it may not survive a power loss), and the state
    file's write after ``Checkpoint.save`` replaced the checkpoint the state file names
    (that one is then the new one, whole; the state file is unchanged)."""
    scenario = SCENARIOS[name]
    steps = _steps(monkeypatch, scenario, kind, tmp_path)
    if kind != "write" and name != "merge_parts":
        assert steps > 0, f"{name} takes no {kind} step"
    for step in range(1, steps + 1):
        directory = tmp_path / f"{kind}-{step}"
        directory.mkdir()
        scenario.prepare(directory)
        before = _listing(directory)
        with monkeypatch.context() as patch:
            _Injector(patch, kind, step, code)
            with pytest.raises(StorageError) as info:
                scenario.save(directory)
        error = info.value
        assert isinstance(error, CheckpointError) and isinstance(error, OSError)
        assert error.errno == code and error.path and repr(error.path) in str(error)
        if "power loss" in str(error):  # the directory fsync, after the commit point
            assert kind == "fsync"
            continue
        after = _listing(directory)
        if error.path == str(directory / "checkpoint") and name == "Checkpoint.save":
            # It replaced the checkpoint the state file names: that one is new and whole.
            assert after["checkpoint"] == before["checkpoint"]
            _check_tree(directory / "ckpt-1", 2)
            continue
        assert after == before, f"{kind} #{step}: {sorted(after)}"
        scenario.check_old(directory)


def test_checkpoint_save_refuses_a_state_path_that_is_a_directory_before_writing(tmp_path):
    """``checkpoint`` being a directory: Checkpoint.save raises a clear StorageError (EISDIR)
    naming it before any checkpoint file is written, and its counter is unchanged (the
    manager's case is in tests/objects/test_manager_safety.py)."""
    (tmp_path / "checkpoint").mkdir()
    checkpoint = tfckpt.Checkpoint(w=np.ones(3))
    with pytest.raises(StorageError, match="is a directory") as info:
        checkpoint.save(tmp_path / "c")
    assert info.value.errno == errno.EISDIR and info.value.path == str(tmp_path / "checkpoint")
    assert os.listdir(tmp_path) == ["checkpoint"]
    assert checkpoint.save_counter == 0


# A child whose file-size limit a large save exceeds: the kernel fails the write (EFBIG).
_LIMITED = """
import json, resource, signal, sys
import numpy as np, tfckpt
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # (a failed write instead of a signal)
prefix = sys.argv[1]
tfckpt.save_tensors(prefix, {"g": np.array(1), "x": np.ones(1000, np.float32)})
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
try:
    tfckpt.save_tensors(prefix, {"g": np.array(2), "x": np.ones(1 << 19, np.float32)})
except tfckpt.StorageError as exc:
    print(json.dumps({"errno": exc.errno, "path": exc.path, "message": str(exc)}))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_a_real_write_failure_from_the_kernel_leaves_the_previous_checkpoint(tmp_path):
    """Not injected: a child process whose file-size limit the new data file exceeds gets
    EFBIG from the kernel; the StorageError names the data file, and the earlier
    checkpoint is all that is left."""
    prefix = tmp_path / "m"
    out = subprocess.run(
        [sys.executable, "-c", _LIMITED, str(prefix)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    import json

    error = json.loads(out)
    assert error["errno"] == errno.EFBIG
    assert error["path"] == str(prefix) + ".data-00000-of-00001"
    assert sorted(os.listdir(tmp_path)) == ["m.data-00000-of-00001", "m.index"]
    assert int(tfckpt.load_tensors(prefix)["g"]) == 1


@pytest.mark.skipif(not os.environ.get("TFCKPT_SMALL_FS"), reason="set TFCKPT_SMALL_FS")
def test_a_full_small_file_system_leaves_the_previous_checkpoint(tmp_path_factory):
    """On a small file system (TFCKPT_SMALL_FS, e.g. a 1 MiB tmpfs): a save that does not
    fit fails with ENOSPC from the kernel, and the earlier checkpoint is all that is left."""
    root = Path(os.environ["TFCKPT_SMALL_FS"])
    directory = root / f"tfckpt-enospc-{os.getpid()}"
    directory.mkdir()
    try:
        prefix = directory / "m"
        tfckpt.save_tensors(prefix, {"g": np.array(1), "x": np.ones(1000, np.float32)})
        free = os.statvfs(root).f_bavail * os.statvfs(root).f_frsize
        with pytest.raises(StorageError) as info:
            tfckpt.save_tensors(prefix, {"g": np.array(2), "x": np.ones(free, np.uint8)})
        assert info.value.errno == errno.ENOSPC
        assert sorted(os.listdir(directory)) == ["m.data-00000-of-00001", "m.index"]
        assert int(tfckpt.load_tensors(prefix)["g"]) == 1
    finally:
        for path in directory.iterdir():
            path.unlink()
        directory.rmdir()
