"""Durability against power loss where it is promised: the order of fsyncs and renames.

``CheckpointManager.save`` (by default) and the writers given ``durable=True`` fsync every
file before renaming it into place and the directory after the renames, and the manager
does so for the checkpoint before the state file names it, and for the state file before
any old checkpoint is deleted.  The tests record every ``os.fsync``, ``os.replace`` and
``os.remove`` (with the file each one concerns) and check that order.
"""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

import tfckpt
from tfckpt.storage.commit import reserved_final

pytestmark = pytest.mark.skipif(
    not os.path.isdir("/proc/self/fd"), reason="names fsynced files through /proc/self/fd"
)


@pytest.fixture
def events(monkeypatch):
    """``[(kind, name)]`` of every fsync ("fsync-file", "fsync-dir"), rename (the target's
    name, its source's kept as "from") and removal, in order."""
    recorded: list[tuple[str, str]] = []
    real_fsync, real_replace, real_remove = os.fsync, os.replace, os.remove

    def fsync(fd):
        mode = os.fstat(fd).st_mode
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        recorded.append(("fsync-dir" if stat.S_ISDIR(mode) else "fsync-file", name))
        real_fsync(fd)

    def replace(source, target):
        recorded.append(("from", os.path.basename(source)))
        recorded.append(("rename", os.path.basename(target)))
        real_replace(source, target)

    def remove(path):
        recorded.append(("remove", os.path.basename(path)))
        real_remove(path)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "remove", remove)
    return recorded


def _renames(events: list[tuple[str, str]]) -> list[tuple[int, str, str]]:
    """``(position, source, target)`` of every rename."""
    return [
        (i, events[i - 1][1], name) for i, (kind, name) in enumerate(events) if kind == "rename"
    ]


def _position(events, kind: str, name: str) -> int:
    return next(i for i, event in enumerate(events) if event == (kind, name))


def _assert_each_file_synced_before_its_rename(events) -> None:
    for position, source, target in _renames(events):
        if reserved_final(source) is None:  # moved aside (already durable), not written
            continue
        synced = [i for i, e in enumerate(events[:position]) if e == ("fsync-file", source)]
        assert synced, f"{target} renamed from {source} before it was fsynced: {events}"


def _assert_directory_synced_between(events, first: int, last: int) -> None:
    between = [kind for kind, _ in events[first + 1 : last]]
    assert "fsync-dir" in between, f"no directory fsync between {events[first]} and {events[last]}"


def test_manager_save_makes_the_checkpoint_durable_before_the_state_file_names_it(tmp_path, events):
    """Data and index fsynced, renamed, the directory fsynced; only then the state file
    (fsynced, renamed, the directory fsynced); old checkpoints are deleted after that."""
    checkpoint = tfckpt.Checkpoint(w=np.ones(100, np.float32))
    manager = tfckpt.CheckpointManager(checkpoint, tmp_path, max_to_keep=1)
    manager.save()
    events.clear()
    manager.save()  # ckpt-2; deletes ckpt-1
    _assert_each_file_synced_before_its_rename(events)
    index = _position(events, "rename", "ckpt-2.index")
    state = _position(events, "rename", "checkpoint")
    assert index < state
    _assert_directory_synced_between(events, index, state)
    assert events[-1:] != [] and any(kind == "fsync-dir" for kind, _ in events[state:])
    deletions = [
        i for i, (kind, name) in enumerate(events) if kind == "remove" and "ckpt-1." in name
    ]
    assert deletions and min(deletions) > state  # the state file no longer names it first
    assert tfckpt.latest_checkpoint(tmp_path) == str(tmp_path / "ckpt-2")


def test_manager_save_durable_false_fsyncs_nothing(tmp_path, events):
    """``durable=False`` is the fast path: no fsync at all, the same renames."""
    checkpoint = tfckpt.Checkpoint(w=np.ones(10, np.float32))
    tfckpt.CheckpointManager(checkpoint, tmp_path).save(durable=False)
    assert not [e for e in events if e[0].startswith("fsync")]
    assert [name for _, _, name in _renames(events)] == [
        "ckpt-1.data-00000-of-00001",
        "ckpt-1.index",
        "checkpoint",
    ]


def test_checkpoint_save_durable_orders_checkpoint_then_state_file(tmp_path, events):
    """``Checkpoint.save(durable=True)``: the same order as the manager's."""
    tfckpt.Checkpoint(w=np.ones(10, np.float32)).save(tmp_path / "ckpt", durable=True)
    _assert_each_file_synced_before_its_rename(events)
    index = _position(events, "rename", "ckpt-1.index")
    state = _position(events, "rename", "checkpoint")
    _assert_directory_synced_between(events, index, state)
    assert any(kind == "fsync-dir" for kind, _ in events[state:])


@pytest.mark.parametrize(
    "write",
    [
        lambda prefix: tfckpt.Checkpoint(w=np.ones(4)).write(prefix, durable=True),
        lambda prefix: tfckpt.save_tensors(prefix, {"w": np.ones(4)}, durable=True),
    ],
    ids=["Checkpoint.write", "save_tensors"],
)
def test_durable_writers_sync_files_then_directory_also_when_overwriting(tmp_path, events, write):
    """An overwrite with ``durable=True``: the new files fsynced before any rename (the old
    ones move aside first), the directory fsynced after the new index is in place and
    before the old files are removed."""
    prefix = str(tmp_path / "m")
    write(prefix)
    events.clear()
    write(prefix)
    _assert_each_file_synced_before_its_rename(events)
    first_rename = _renames(events)[0][0]
    assert all(kind != "fsync-file" for kind, _ in events[first_rename:])
    index = _position(events, "rename", "m.index")
    removal = next(
        i for i, (kind, name) in enumerate(events) if kind == "remove" and "-old" in name
    )
    _assert_directory_synced_between(events, index, removal)


@pytest.mark.parametrize(
    "write",
    [
        lambda prefix: tfckpt.Checkpoint(w=np.ones(4)).write(prefix),
        lambda prefix: tfckpt.save_tensors(prefix, {"w": np.ones(4)}),
        lambda prefix: tfckpt.Checkpoint(w=np.ones(4)).save(prefix),
    ],
    ids=["Checkpoint.write", "save_tensors", "Checkpoint.save"],
)
def test_lower_level_writers_are_not_durable_by_default(tmp_path, events, write):
    """Without ``durable=True`` the lower-level writers do not fsync (as TensorFlow)."""
    write(str(tmp_path / "m"))
    assert not [e for e in events if e[0].startswith("fsync")]
