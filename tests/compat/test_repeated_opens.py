"""load_variable / list_variables once per name reuse the decoded index, and never serve a
rewritten checkpoint stale (src/tfckpt/reader_cache.py, src/tfckpt/reader.py)."""

from __future__ import annotations

import os
import shutil
import sys
import threading

import numpy as np
import pytest

import tfckpt
from tests.conftest import FIXTURES
from tfckpt import reader_cache
from tfckpt.bundle.reader import BundleReader
from tfckpt.checkpoint_state import write_state
from tfckpt.reader_cache import ReaderCache


@pytest.fixture(autouse=True)
def _fresh_cache():
    reader_cache.SHARED.clear()
    yield
    reader_cache.SHARED.clear()


@pytest.fixture
def opens(monkeypatch):
    """Counts BundleReader constructions (index decodes)."""
    count = [0]
    original = BundleReader.__init__

    def counting(self, *args, **kwargs):
        count[0] += 1
        original(self, *args, **kwargs)

    monkeypatch.setattr(BundleReader, "__init__", counting)
    return count


def _tensors(value: float, n: int = 20) -> dict[str, np.ndarray]:
    return {f"layer_{i:02d}/kernel": np.full((3, 2), value + i, np.float32) for i in range(n)}


def _open_files(under) -> list[str]:
    """Paths under ``under`` this process has open (Linux /proc)."""
    fd_dir = "/proc/self/fd"
    if not os.path.isdir(fd_dir):
        pytest.skip("needs /proc/self/fd")
    found = []
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith(str(under)):
            found.append(target)
    return found


def test_one_index_decode_for_a_name_by_name_loop(tmp_path, opens):
    """Hugging Face's loop (list_variables, then load_variable per name) decodes the index
    once, and each call still returns the right, owned, writable array."""
    prefix = tfckpt.save_tensors(tmp_path / "m", _tensors(0))
    names = [name for name, _ in tfckpt.list_variables(prefix)]
    for _ in range(3):
        for i, name in enumerate(names):
            value = tfckpt.load_variable(prefix, name)
            assert value.flags.writeable and value[0, 0] == i
            value[...] = -1  # the caller's copy: later reads are unaffected
    assert opens[0] == 1
    assert tfckpt.load_variable(prefix, names[0])[0, 0] == 0


def test_idle_cached_readers_hold_no_files(tmp_path):
    """Between calls nothing of the checkpoint is open: the index was read whole and the
    data file is closed when the call ends (and reopened by the next)."""
    prefix = tfckpt.save_tensors(tmp_path / "m", _tensors(0))
    for _ in range(5):
        tfckpt.load_variable(prefix, "layer_03/kernel")
        assert _open_files(tmp_path) == []
    assert len(reader_cache.SHARED) == 1


def test_a_rewritten_checkpoint_is_read_again(tmp_path, opens):
    """Saving again to the same prefix (same names, shapes and sizes; new files renamed in)
    is seen by the very next call."""
    prefix = tfckpt.save_tensors(tmp_path / "m", _tensors(0))
    assert tfckpt.load_variable(prefix, "layer_01/kernel")[0, 0] == 1
    tfckpt.save_tensors(tmp_path / "m", _tensors(100))
    assert tfckpt.load_variable(prefix, "layer_01/kernel")[0, 0] == 101
    assert tfckpt.list_variables(prefix) == [(n, [3, 2]) for n in sorted(_tensors(0))]
    assert opens[0] == 2
    assert len(reader_cache.SHARED) == 1  # the old entry was replaced, not kept beside


def test_rewritten_in_place_with_the_same_size_and_mtime(tmp_path):
    """A checkpoint overwritten in place (same inode and size) with its modification time
    put back is still noticed (the inode change time is part of the identity)."""
    prefix = tfckpt.save_tensors(tmp_path / "m", _tensors(0))
    other = tfckpt.save_tensors(tmp_path / "other", _tensors(100))
    assert tfckpt.load_variable(prefix, "layer_01/kernel")[0, 0] == 1
    for suffix in (".index", ".data-00000-of-00001"):
        before = os.stat(prefix + suffix)
        with open(other + suffix, "rb") as source, open(prefix + suffix, "r+b") as target:
            target.write(source.read())
        os.utime(prefix + suffix, ns=(before.st_atime_ns, before.st_mtime_ns))
        after = os.stat(prefix + suffix)
        assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
            before.st_ino,
            before.st_size,
            before.st_mtime_ns,
        )
    assert tfckpt.load_variable(prefix, "layer_01/kernel")[0, 0] == 101


def test_a_directory_follows_its_state_file(tmp_path):
    """Given a directory, every call reads the state file, so a new latest checkpoint is
    picked up at once."""
    for step in (1, 2):
        tfckpt.save_tensors(tmp_path / f"ckpt-{step}", {"w": np.array(step)})
        write_state(tmp_path, f"ckpt-{step}")
        assert tfckpt.load_variable(tmp_path, "w") == step


def test_errors_are_not_cached(tmp_path):
    """A missing checkpoint fails on every call until it exists; a deleted one fails."""
    for _ in range(2):
        with pytest.raises(tfckpt.CheckpointNotFoundError):
            tfckpt.load_variable(tmp_path / "m", "layer_00/kernel")
    prefix = tfckpt.save_tensors(tmp_path / "m", _tensors(0))
    assert tfckpt.load_variable(prefix, "layer_00/kernel")[0, 0] == 0
    with pytest.raises(tfckpt.TensorNotFoundError):
        tfckpt.load_variable(prefix, "nope")
    os.remove(prefix + ".index")
    with pytest.raises(tfckpt.CheckpointNotFoundError):
        tfckpt.load_variable(prefix, "layer_00/kernel")


def test_bounded_in_entries_and_bytes(tmp_path):
    """At most ``max_entries`` checkpoints are kept (least recently used out first), and a
    checkpoint whose files exceed ``max_bytes`` is used but not kept."""
    cache = ReaderCache(max_entries=3, max_bytes=1 << 20)
    prefixes = [tfckpt.save_tensors(tmp_path / f"m{i}", _tensors(i, 2)) for i in range(6)]
    for prefix in prefixes:
        with cache.borrow(prefix, "v2", lambda p=prefix: BundleReader(p)) as backend:
            assert backend.prefix == prefix
    assert len(cache) == 3
    kept = [key[0] for key in cache._entries]
    assert kept == prefixes[-3:]
    small = ReaderCache(max_bytes=100)
    v1 = str(FIXTURES / "v1_format" / "model.ckpt")
    from tfckpt.legacy.reader import V1Reader

    with small.borrow(v1, "v1", lambda: V1Reader(v1)) as backend:
        assert "float32" in backend
    assert len(small) == 0


def test_files_changed_while_opening_are_not_kept(tmp_path):
    """If the checkpoint is replaced while its index is being decoded, the reader serves
    that one call and is not kept (the next call opens the new files)."""
    cache = ReaderCache()
    prefix = tfckpt.save_tensors(tmp_path / "m", _tensors(0))

    def open_while_rewriting():
        backend = BundleReader(prefix)
        tfckpt.save_tensors(tmp_path / "m", _tensors(100))
        return backend

    with cache.borrow(prefix, "v2", open_while_rewriting):
        pass
    assert len(cache) == 0


def test_many_threads_share_one_reader(tmp_path, opens):
    """Threads calling load_variable on the same checkpoints at once all get the right
    values; the index is decoded about once per checkpoint, and no file is left open."""
    prefixes = [tfckpt.save_tensors(tmp_path / f"m{k}", _tensors(100 * k)) for k in range(2)]
    names = sorted(_tensors(0))
    failures = []
    barrier = threading.Barrier(8)

    def work(seed: int) -> None:
        barrier.wait()
        rng = np.random.default_rng(seed)
        for _ in range(150):
            k = int(rng.integers(2))
            i = int(rng.integers(len(names)))
            value = tfckpt.load_variable(prefixes[k], names[i])
            if value[1, 1] != 100 * k + i:
                failures.append((k, i, value))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, to interleave the calls
    try:
        threads = [threading.Thread(target=work, args=(s,)) for s in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert failures == []
    assert 2 <= opens[0] <= 2 * 8  # racing first opens may each decode; then shared
    assert len(reader_cache.SHARED) == 2
    assert _open_files(tmp_path) == []


def test_v1_checkpoints_are_cached_too(tmp_path):
    """A small V1 checkpoint is kept like a V2 one and re-read when its file changes."""
    shutil.copy(FIXTURES / "v1_format" / "model.ckpt", tmp_path / "model.ckpt")
    prefix = str(tmp_path / "model.ckpt")
    first = tfckpt.load_variable(prefix, "float32")
    assert len(reader_cache.SHARED) == 1
    assert np.array_equal(tfckpt.load_variable(prefix, "float32"), first, equal_nan=True)
    os.remove(prefix)
    with pytest.raises(tfckpt.CheckpointNotFoundError):
        tfckpt.load_variable(prefix, "float32")
