"""tfckpt.storage.source: the one door through which checkpoint files are read."""

from __future__ import annotations

import gc
import os
import threading

import numpy as np
import pytest

import tfckpt
from tfckpt.errors import CheckpointNotFoundError, DataLossError
from tfckpt.storage import source as source_module
from tfckpt.storage.location import open_source
from tfckpt.storage.source import LocalFile
from tfckpt.table.reader import TableReader


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(bytes(range(256)) * 4)
    return path


def test_ranges_views_and_readinto_give_the_file_bytes(data_file):
    """Every way of reading returns exactly the bytes at the offsets asked for."""
    expected = data_file.read_bytes()
    with_source = open_source(data_file)
    assert with_source.size() == len(expected)
    assert with_source.read_ranges([(0, 3), (1000, 24), (5, 0)]) == [
        expected[:3],
        expected[1000:],
        b"",
    ]
    assert bytes(with_source.view(10, 5)) == expected[10:15]
    buffer = np.empty(16, np.uint8)
    with_source.readinto(100, buffer)
    assert buffer.tobytes() == expected[100:116]
    with_source.close()


def test_views_outlive_close(data_file):
    """A view handed out stays valid after the file is closed (the map is kept alive)."""
    source = open_source(data_file)
    view = np.frombuffer(source.view(0, 8), np.uint8)
    source.close()
    assert view.tolist() == list(range(8))


def test_reading_past_the_end_is_data_loss(data_file):
    """A file that ends before the range asked for (truncated while open) is DataLossError
    naming the file, not a short buffer."""
    source = open_source(data_file)
    with pytest.raises(DataLossError) as info:
        source.readinto(1020, bytearray(8))
    assert info.value.path == str(data_file)
    source.close()


def test_missing_file_is_checkpoint_not_found(tmp_path):
    with pytest.raises(CheckpointNotFoundError) as info:
        open_source(tmp_path / "nope")
    assert isinstance(info.value, FileNotFoundError)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_blocking(tmp_path):
    """A data file that is a FIFO would block a plain open forever; it is refused."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    outcome = []
    thread = threading.Thread(target=lambda: outcome.append(_try_open(fifo)), daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "opening a FIFO blocked"
    assert outcome == [DataLossError]


def test_a_directory_is_refused(tmp_path):
    assert _try_open(tmp_path) is DataLossError


def _try_open(path):
    try:
        open_source(path).close()
    except Exception as exc:  # the type is what the test looks at
        return type(exc)
    return None


def test_a_dropped_file_does_not_keep_its_descriptor(data_file):
    """A LocalFile that is never closed releases its descriptor when it is garbage."""
    before = _open_fds()
    for _ in range(50):
        LocalFile(data_file)
    gc.collect()
    assert _open_fds() <= before


def test_a_reader_that_is_never_closed_does_not_leak_descriptors(tmp_path):
    """Readers dropped without close() (as a fuzzer or a careless caller does) leave no
    data file open behind them."""
    prefix = str(tmp_path / "m")
    tfckpt.save_tensors(prefix, {"x": np.arange(4, dtype=np.float32)})
    before = _open_fds()
    for _ in range(50):
        tfckpt.load_checkpoint(prefix).get_tensor("x")
    gc.collect()
    assert _open_fds() <= before


def test_threads_racing_to_open_a_shard_open_it_once(tmp_path, monkeypatch):
    """The reader opens each data file once, however many threads ask for it at once."""
    prefix = str(tmp_path / "m")
    tfckpt.save_tensors(prefix, {f"t{i}": np.full(4, i, np.float32) for i in range(8)})
    opened = []
    original = source_module.LocalFile.__init__

    def counting(self, path):
        opened.append(path)
        original(self, path)

    monkeypatch.setattr(source_module.LocalFile, "__init__", counting)
    reader = tfckpt.load_checkpoint(prefix)
    barrier = threading.Barrier(8)

    def read(i):
        barrier.wait()
        reader.get_tensor(f"t{i}")

    threads = [threading.Thread(target=read, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len([p for p in opened if ".data-" in p]) == 1
    reader.close()


def test_a_large_file_that_is_not_a_table_is_refused_from_its_footer(tmp_path, monkeypatch):
    """A multi-GiB file that is not a table is refused after reading its 48-byte footer,
    not read whole first."""
    path = tmp_path / "big.index"
    with open(path, "wb") as f:
        f.truncate(4 << 30)  # sparse: no disk used
    asked = []
    original = LocalFile.read_ranges

    def spy(self, ranges):
        asked.extend(size for _, size in ranges)
        return original(self, ranges)

    monkeypatch.setattr(LocalFile, "read_ranges", spy)
    with pytest.raises(DataLossError) as info:
        TableReader.open(path)
    assert info.value.path == str(path)
    assert max(asked) <= 48


def test_a_file_that_cannot_be_memory_mapped_is_data_loss(tmp_path, monkeypatch):
    """mmap failing (ENOMEM under an address-space limit, ENODEV on file systems without
    mmap) is a DataLossError naming the file on the zero-copy read paths, not the bare
    OSError it used to escape as (found by the fuzzer with a sparse 64 GiB data file)."""
    import errno
    import mmap

    prefix = tfckpt.save_tensors(tmp_path / "m", {"x": np.arange(4, dtype=np.float32)})

    def refuse(*args, **kwargs):
        raise OSError(errno.ENOMEM, "Cannot allocate memory")

    monkeypatch.setattr(mmap, "mmap", refuse)
    data = f"{prefix}.data-00000-of-00001"
    with pytest.raises(DataLossError, match="cannot map") as info:
        LocalFile(data).view(0, 4)
    assert info.value.path == data
    with tfckpt.load_checkpoint(prefix) as reader:
        with pytest.raises(DataLossError, match="cannot map"):
            reader.get_tensor("x", copy=False)
        np.testing.assert_array_equal(reader.get_tensor("x"), np.arange(4))  # reads work
