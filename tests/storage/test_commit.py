"""The commit protocol (tfckpt.storage.commit.LocalCommit).

Files are written under temporary names beside their final paths and appear under the
final names only on publish, in the order they were added (the last, a checkpoint's index,
is the commit point); durable commits fsync every file before the renames and the
directories after; abort, or a failure while publishing, leaves no temporary behind.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from pathlib import Path

import pytest

from tfckpt.errors import StorageError
from tfckpt.storage import commit as commit_module
from tfckpt.storage import lock as lock_module
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
    """A rename that fails (here the index's) leaves no temporary and puts back what was
    renamed before it: the commit point (the last file) never appears, nor does the rest."""
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
    assert _files(tmp_path) == []


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


@pytest.mark.parametrize("module", [commit_module, lock_module])
def test_the_storage_layer_imports_nothing_above_it(module):
    """storage/commit.py and storage/lock.py are the bottom layer: no tfckpt module but
    errors above them."""
    with open(module.__file__, encoding="utf-8") as f:
        source = f.read()
    imported = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert not [line for line in imported if "tfckpt" in line and "tfckpt.errors" not in line]


# -- overwriting: the old set aside until the new one is committed ------------------------


def _old_set(tmp_path):
    (tmp_path / "a.data").write_bytes(b"old data")
    (tmp_path / "a.index").write_bytes(b"old index")


def _new_commit(tmp_path, **options):
    commit = LocalCommit(**options)
    commit.create(str(tmp_path / "a.data")).write(b"new data")
    commit.create(str(tmp_path / "a.index")).write(b"new index")
    return commit


def test_overwrite_sets_the_old_files_aside_index_first_then_removes_them(tmp_path, monkeypatch):
    """Replacing an existing set: the old index, then the old data, move aside; the new
    data, then the new index, move in; the aside files go last, the index's first."""
    events = []
    real_replace, real_remove = os.replace, os.remove
    monkeypatch.setattr(
        os,
        "replace",
        lambda s, t: (events.append(("rename", _name(s), _name(t))), real_replace(s, t)),
    )
    monkeypatch.setattr(
        os, "remove", lambda p: (events.append(("remove", _name(p))), real_remove(p))
    )
    _old_set(tmp_path)
    _new_commit(tmp_path).publish()
    aside = commit_module.ASIDE_SUFFIX
    assert events == [
        ("rename", "a.index", "a.index" + aside),
        ("rename", "a.data", "a.data" + aside),
        ("rename", "a.data" + TEMP, "a.data"),
        ("rename", "a.index" + TEMP, "a.index"),
        ("remove", "a.index" + aside),
        ("remove", "a.data" + aside),
    ]
    assert _files(tmp_path) == ["a.data", "a.index"]
    assert (tmp_path / "a.data").read_bytes() == b"new data"


TEMP = "<temporary>"


def _name(path) -> str:
    name = os.path.basename(path)
    found = commit_module.reserved_final(name)
    return found[0] + TEMP if found and found[1] == "temporary" else name


@pytest.mark.parametrize("failing", ["a.index", "a.data", "a.data" + "<aside>"])
def test_a_failed_overwrite_puts_the_old_files_back(tmp_path, monkeypatch, failing):
    """Whichever rename of an overwrite fails, the old files are back under their names,
    no temporary or aside file is left, and the error names the file with its errno."""
    real_replace = os.replace
    aside = commit_module.ASIDE_SUFFIX

    failed = []

    def failing_replace(source, target):
        if _name(target).replace(aside, "<aside>") == failing and not failed:
            failed.append(target)  # (once: putting the old files back succeeds)
            raise OSError(errno.EIO, "Input/output error")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", failing_replace)
    _old_set(tmp_path)
    with pytest.raises(StorageError) as info:
        _new_commit(tmp_path).publish()
    assert info.value.errno == errno.EIO and isinstance(info.value, OSError)
    assert _files(tmp_path) == ["a.data", "a.index"]
    assert (tmp_path / "a.data").read_bytes() == b"old data"
    assert (tmp_path / "a.index").read_bytes() == b"old index"


@pytest.mark.parametrize("renamed", [1, 2, 3])
def test_restore_set_aside_puts_back_an_overwrite_killed_before_its_commit_point(tmp_path, renamed):
    """The states an overwrite passes through before its index is in place (old index
    aside; old data aside too; new data in) are put back to the old set; the old set's
    contents are what the reader rule (aside file where there is one) gives."""
    aside = commit_module.aside_path
    _old_set(tmp_path)
    index, data = str(tmp_path / "a.index"), str(tmp_path / "a.data")
    os.replace(index, aside(index))
    if renamed >= 2:
        os.replace(data, aside(data))
    if renamed >= 3:
        (tmp_path / "a.data").write_bytes(b"new data")
    assert not os.path.exists(index)
    seen = {Path(commit_module.set_aside_source(p)).read_bytes() for p in (index, data)}
    assert seen == {b"old index", b"old data"}
    assert commit_module.restore_set_aside(index, [data])
    assert _files(tmp_path) == ["a.data", "a.index"]
    assert (tmp_path / "a.data").read_bytes() == b"old data"


def test_restore_set_aside_removes_what_a_publish_killed_after_its_commit_point_left(tmp_path):
    """With the new index in place, aside files are garbage: removed, nothing moved."""
    aside = commit_module.aside_path
    (tmp_path / "a.index").write_bytes(b"new index")
    (tmp_path / "a.data").write_bytes(b"new data")
    Path(aside(str(tmp_path / "a.data"))).write_bytes(b"old data")
    assert not commit_module.restore_set_aside(
        str(tmp_path / "a.index"), [str(tmp_path / "a.data")]
    )
    assert _files(tmp_path) == ["a.data", "a.index"]
    assert (tmp_path / "a.data").read_bytes() == b"new data"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("m.index.tempstate-tfckpt-0123456789abcdef", ("m.index", "temporary")),
        ("m.data-00000-of-00001.tempstate-tfckpt-old", ("m.data-00000-of-00001", "aside")),
        ("m.index.tempstate12345678901234567890", None),  # TensorFlow's temporaries
        ("m.index.tempstate-tfckpt-0123", None),
        ("m.index.tempstate-tfckpt-lock", None),
        ("m.index", None),
    ],
)
def test_reserved_names_are_recognised_and_nothing_else(name, expected):
    """Only tfckpt's own temporaries and aside files are reserved names (never
    TensorFlow's ``.tempstate<decimal>`` temporaries or other files)."""
    assert commit_module.reserved_final(name) == expected


def test_a_failing_write_is_a_storage_error_naming_the_file(tmp_path, monkeypatch):
    """ENOSPC while a created file is completed is a StorageError (an OSError keeping
    errno) naming the final file, and nothing is left behind."""

    class FullDisk(io.BufferedWriter):
        def flush(self):
            raise OSError(errno.ENOSPC, "No space left on device")

    commit = LocalCommit()
    file = commit.create(str(tmp_path / "a.index"))
    commit._pending[0] = commit._pending[0]._replace(file=FullDisk(io.FileIO(os.devnull, "wb")))
    file.close()
    with pytest.raises(StorageError) as info:
        commit.publish()
    assert info.value.errno == errno.ENOSPC and info.value.path == str(tmp_path / "a.index")
    assert "No space left on device" in str(info.value)
    assert _files(tmp_path) == []
