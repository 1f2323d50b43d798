"""The commit protocol (tfckpt.storage.commit.LocalCommit).

Files are written under temporary names beside their final paths and appear under the
final names only on publish, in the order they were added (the last, a checkpoint's index,
is the commit point); durable commits fsync every file before the renames and the
directories after; abort, or a failure while publishing, leaves no temporary behind.
"""

from __future__ import annotations

import os
import stat

import pytest

from tfckpt.storage import commit as commit_module
from tfckpt.storage.commit import Commit, LocalCommit


def _files(directory) -> list[str]:
    return sorted(os.listdir(directory))


def test_local_commit_is_a_commit():
    """LocalCommit has every method of the Commit protocol (what a remote writer implements)."""
    commit: Commit = LocalCommit()
    for name in ("create", "adopt", "publish", "abort"):
        assert callable(getattr(commit, name))


def test_nothing_appears_under_the_final_names_before_publish(tmp_path):
    """Written files are temporaries in the final directory until publish moves them."""
    commit = LocalCommit()
    commit.create(str(tmp_path / "a.data")).write(b"data")
    commit.create(str(tmp_path / "a.index")).write(b"index")
    names = _files(tmp_path)
    assert len(names) == 2 and all(".tempstate" in n for n in names)
    commit.publish()
    assert _files(tmp_path) == ["a.data", "a.index"]
    assert (tmp_path / "a.data").read_bytes() == b"data"
    assert (tmp_path / "a.index").read_bytes() == b"index"


def test_publish_renames_in_the_order_the_files_were_added(tmp_path, monkeypatch):
    """Data first, index last: the order of create/adopt calls, whatever the names."""
    renamed = []
    real_replace = os.replace

    def recording_replace(source, target):
        renamed.append(os.path.basename(target))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", recording_replace)
    (tmp_path / "old").write_bytes(b"adopted")
    commit = LocalCommit()
    commit.create(str(tmp_path / "z.data-00000-of-00002"))
    commit.adopt(str(tmp_path / "old"), str(tmp_path / "y.data-00001-of-00002"))
    commit.create(str(tmp_path / "a.index"))
    commit.publish()
    assert renamed == ["z.data-00000-of-00002", "y.data-00001-of-00002", "a.index"]
    assert (tmp_path / "y.data-00001-of-00002").read_bytes() == b"adopted"


@pytest.mark.parametrize("durable", [False, True])
def test_fsync_only_when_durable(tmp_path, monkeypatch, durable):
    """A durable commit fsyncs each file before any rename, then the directory once."""
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def recording_fsync(fd):
        events.append("fsync-dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync-file")
        real_fsync(fd)

    def recording_replace(source, target):
        events.append("rename")
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    commit = LocalCommit(durable=durable)
    commit.create(str(tmp_path / "a.data")).write(b"x")
    commit.create(str(tmp_path / "a.index")).write(b"y")
    commit.publish()
    if durable:
        assert events[:4] == ["fsync-file", "fsync-file", "rename", "rename"]
        assert events[4:] in (["fsync-dir"], [])  # [] where directories cannot be fsynced
    else:
        assert events == ["rename", "rename"]


def test_abort_removes_the_temporaries(tmp_path):
    """abort closes and removes every temporary; adopted files stay where they are."""
    (tmp_path / "old").write_bytes(b"keep")
    commit = LocalCommit()
    commit.create(str(tmp_path / "a.data")).write(b"x" * 100_000)
    commit.adopt(str(tmp_path / "old"), str(tmp_path / "new"))
    commit.abort()
    assert _files(tmp_path) == ["old"]
    commit.abort()  # twice is fine
    commit.publish()  # nothing left to publish
    assert _files(tmp_path) == ["old"]


def test_failure_while_publishing_removes_the_temporaries(tmp_path, monkeypatch):
    """A rename that fails (here the index's) leaves no temporary; what was renamed before
    stays, and the commit point (the last file) never appears."""
    real_replace = os.replace

    def failing_replace(source, target):
        if target.endswith(".index"):
            raise OSError("disk full")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", failing_replace)
    commit = LocalCommit()
    commit.create(str(tmp_path / "a.data")).write(b"x")
    commit.create(str(tmp_path / "a.index")).write(b"y")
    with pytest.raises(OSError, match="disk full"):
        commit.publish()
    assert _files(tmp_path) == ["a.data"]


def test_failure_while_completing_a_file_removes_the_temporaries(tmp_path, monkeypatch):
    """An fsync that fails (a durable commit) renames nothing and removes everything."""

    def failing_fsync(fd):
        raise OSError("I/O error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    commit = LocalCommit(durable=True)
    commit.create(str(tmp_path / "a.data")).write(b"x")
    commit.create(str(tmp_path / "a.index")).write(b"y")
    with pytest.raises(OSError, match="I/O error"):
        commit.publish()
    assert _files(tmp_path) == []


def test_create_makes_the_directory_and_refuses_a_path_twice(tmp_path):
    """Missing parent directories are made; one final path cannot be added twice."""
    commit = LocalCommit()
    commit.create(str(tmp_path / "x" / "y" / "a.index"))
    with pytest.raises(ValueError, match="already part"):
        commit.create(str(tmp_path / "x" / "y" / "a.index"))
    commit.abort()
    assert _files(tmp_path / "x" / "y") == []


def test_the_storage_layer_imports_nothing_above_it():
    """storage/commit.py is the bottom layer: no tfckpt module but errors above it."""
    with open(commit_module.__file__, encoding="utf-8") as f:
        source = f.read()
    imported = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert not [line for line in imported if "tfckpt" in line and "tfckpt.errors" not in line]
