"""CheckpointManager keeps its directory consistent when saves fail, collide or meet a state
file it did not write: it deletes only inside its directory, a failed state-file write
changes nothing it reports, entries naming deleted checkpoints are dropped, and a second
manager saving into the same directory at the same time fails instead of interleaving.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import tfckpt
from tfckpt.checkpoint_state import read_state, write_state
from tfckpt.errors import CheckpointError, ConcurrentWriteError, StorageError

REPO = Path(__file__).resolve().parents[2]


def _manager(directory: Path, **options) -> tfckpt.CheckpointManager:
    return tfckpt.CheckpointManager(tfckpt.Checkpoint(w=np.arange(4.0)), directory, **options)


def _files(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def test_state_file_entries_outside_the_directory_are_never_deleted(tmp_path):
    """A state file naming checkpoints outside the manager's directory (``../`` and
    absolute paths): saving past ``max_to_keep`` warns about them and deletes nothing
    there, while checkpoints inside are pruned as usual."""
    directory, outside, elsewhere = tmp_path / "run", tmp_path / "outside", tmp_path / "else"
    for where in (directory, outside, elsewhere):
        where.mkdir()
    tfckpt.save_tensors(outside / "ckpt-1", {"keep": np.ones(2)})
    tfckpt.save_tensors(elsewhere / "ckpt-2", {"keep": np.ones(2)})
    paths = ["../outside/ckpt-1", str(elsewhere / "ckpt-2")]
    write_state(directory, paths[-1], paths, [1.0, 2.0], 0.5)
    manager = _manager(directory, max_to_keep=1)
    with pytest.warns(RuntimeWarning, match="outside the manager's directory") as warned:
        manager.save()
        manager.save()
    assert {str(w.message).split("'")[1] for w in warned} >= {
        str(directory / "../outside/ckpt-1"),
        str(elsewhere / "ckpt-2"),
    }
    assert _files(outside) == ["ckpt-1.data-00000-of-00001", "ckpt-1.index"]
    assert _files(elsewhere) == ["ckpt-2.data-00000-of-00001", "ckpt-2.index"]
    assert manager.checkpoints == [str(directory / "ckpt-2")]
    assert not (directory / "ckpt-1.index").exists()


def test_a_failed_state_file_write_changes_nothing_the_manager_reports(tmp_path, monkeypatch):
    """When writing the state file fails (ENOSPC here): a StorageError names the state file,
    ``latest_checkpoint``, ``checkpoints``, the save counter and the state file are as
    before, the checkpoint it could not record is removed, and saving again works."""
    manager = _manager(tmp_path, max_to_keep=2)
    first = manager.save()
    state_before = (tmp_path / "checkpoint").read_bytes()
    real_replace = os.replace

    def full_disk_for_the_state_file(source, target):
        if os.path.basename(target) == "checkpoint":
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", full_disk_for_the_state_file)
    with pytest.raises(StorageError) as info:
        manager.save()
    assert isinstance(info.value, CheckpointError) and info.value.errno == errno.ENOSPC
    assert info.value.path == str(tmp_path / "checkpoint")
    assert manager.latest_checkpoint == first and manager.checkpoints == [first]
    assert manager.checkpoint.save_counter == 1
    assert (tmp_path / "checkpoint").read_bytes() == state_before
    assert _files(tmp_path) == ["checkpoint", "ckpt-1.data-00000-of-00001", "ckpt-1.index"]
    monkeypatch.setattr(os, "replace", real_replace)
    assert manager.save() == str(tmp_path / "ckpt-2")
    assert tfckpt.latest_checkpoint(tmp_path) == str(tmp_path / "ckpt-2")


def test_a_state_path_that_is_a_directory_is_a_clear_error(tmp_path):
    """``<directory>/checkpoint`` being a directory: a StorageError (EISDIR) naming it,
    raised before any checkpoint file is written, and nothing changes."""
    (tmp_path / "checkpoint").mkdir()
    manager = _manager(tmp_path)
    with pytest.raises(StorageError, match="is a directory") as info:
        manager.save()
    assert info.value.errno == errno.EISDIR and info.value.path == str(tmp_path / "checkpoint")
    assert _files(tmp_path) == ["checkpoint"]
    assert manager.latest_checkpoint is None and manager.checkpoint.save_counter == 0


def test_entries_naming_deleted_checkpoints_are_dropped_on_the_next_save(tmp_path):
    """Checkpoints deleted behind the manager's back leave the state file (and
    ``checkpoints``) at the next save instead of being listed for ever."""
    manager = _manager(tmp_path, max_to_keep=5)
    paths = [manager.save() for _ in range(3)]
    for name in ("ckpt-1.index", "ckpt-1.data-00000-of-00001"):
        (tmp_path / name).unlink()
    manager.save()
    state = read_state(tmp_path)
    assert state is not None
    assert state.all_model_checkpoint_paths == [*paths[1:], str(tmp_path / "ckpt-4")]
    assert manager.checkpoints == state.all_model_checkpoint_paths


def test_the_state_file_never_names_a_checkpoint_the_save_deletes(tmp_path, monkeypatch):
    """The state file is written once per save, already without the checkpoints the save
    deletes, which are deleted only after it (TensorFlow writes it before deleting too)."""
    manager = _manager(tmp_path, max_to_keep=1)
    manager.save()
    listed_at_each_write = []
    real_replace = os.replace

    def recording(source, target):
        real_replace(source, target)
        if os.path.basename(target) == "checkpoint":
            state = read_state(tmp_path)
            assert state is not None
            listed_at_each_write.append(state.all_model_checkpoint_paths)
            assert all(os.path.exists(p + ".index") for p in state.all_model_checkpoint_paths)

    monkeypatch.setattr(os, "replace", recording)
    manager.save()
    assert listed_at_each_write == [[str(tmp_path / "ckpt-2")]]
    assert not (tmp_path / "ckpt-1.index").exists()


# A manager saving in another process, slowed down between its renames.
_SLOW_MANAGER = """
import os, sys, time, numpy as np, tfckpt
real_replace = os.replace
def slow_replace(source, target):
    time.sleep(0.3)
    real_replace(source, target)
manager = tfckpt.CheckpointManager(tfckpt.Checkpoint(w=np.ones(3)), sys.argv[1])
print("saving", flush=True)
os.replace = slow_replace
manager.save()
print("saved", flush=True)
"""


def test_two_managers_saving_into_one_directory_at_once_one_fails(tmp_path):
    """While a manager in another process saves into the directory, a second manager's
    save fails with ConcurrentWriteError (nothing written); after it, saving works and the
    directory holds whole checkpoints."""
    other = subprocess.Popen(
        [sys.executable, "-c", _SLOW_MANAGER, str(tmp_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "saving"
        while not any(name.endswith("tempstate-tfckpt-lock") for name in os.listdir(tmp_path)):
            time.sleep(0.005)  # (until the other manager holds the directory)
        manager = _manager(tmp_path)
        with pytest.raises(ConcurrentWriteError, match=f"pid {other.pid}"):
            manager.save()
        assert manager.latest_checkpoint is None
    finally:
        assert other.stdout.readline().strip() == "saved"
        other.wait(timeout=30)
    assert _manager(tmp_path).save() == str(tmp_path / "ckpt-1")
    reader = tfckpt.load_checkpoint(tmp_path)
    assert reader.prefix == str(tmp_path / "ckpt-1")
    assert "w/.ATTRIBUTES/VARIABLE_VALUE" in reader
