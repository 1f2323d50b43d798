"""Closing a reader while other threads read from it (tfckpt.bundle.reader,
tfckpt.storage.source): a read in flight completes with the right values, never reads
through a descriptor that was closed (and perhaps reused by another file meanwhile), and
never touches memory that was unmapped under it; arrays viewing the memory map outlive
the close.  A read after close opens the data file again (TensorFlow's reader, which has
no close, can always read; tfckpt's deferred restorations rely on it)."""

from __future__ import annotations

import gc
import os
import random
import threading
import traceback

import numpy as np
import pytest

import tfckpt
from tfckpt.errors import InvalidArgumentError
from tfckpt.storage.source import LocalFile

ITERATIONS = 1500  # reads per reader thread (three of them) in each hammering test


def _tensors() -> dict[str, object]:
    rng = np.random.default_rng(12)
    return {
        "small": np.arange(16, dtype=np.float32),
        "mid": rng.standard_normal((64, 64)),
        "ints": np.arange(5000, dtype=np.int32) * 3,
        "text": np.array([b"alpha", b"", b"gamma" * 40], dtype=object),
        "scalar_text": np.array(b"a scalar string", dtype=object),
    }


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    prefix = str(tmp_path_factory.mktemp("close") / "ckpt")
    tfckpt.save_tensors(prefix, _tensors())
    return prefix


def _same(got, want) -> bool:
    if isinstance(got, bytes):  # a 0-d string tensor's value
        return got == np.asarray(want).item()
    got, want = np.asarray(got), np.asarray(want)
    return got.shape == want.shape and got.dtype == want.dtype and bool((got == want).all())


def _one_read(reader, rng: random.Random, want: dict[str, np.ndarray]) -> tuple[str, bool]:
    """A random read of every kind the reader has; (what, whether the values are right)."""
    kind = rng.randrange(7)
    if kind == 0:
        name = rng.choice(["small", "mid", "ints"])
        return f"get_tensor({name})", _same(reader.get_tensor(name), want[name])
    if kind == 1:
        name = rng.choice(["small", "mid", "ints"])
        value = reader.get_tensor(name, copy=False)
        return f"get_tensor({name}, copy=False)", _same(value, want[name])
    if kind == 2:
        copy = rng.random() < 0.5
        got = reader.get_tensors(None, copy=copy)
        return f"get_tensors(copy={copy})", all(_same(got[n], want[n]) for n in want)
    if kind == 3:
        got = reader.get_tensors(["mid", "ints"], copy=False)
        return "get_tensors(mid, ints)", _same(got["mid"], want["mid"]) and _same(
            got["ints"], want["ints"]
        )
    if kind == 4:
        lo = rng.randrange(5000)
        hi = rng.randrange(lo, 5001)
        got = reader.get_slice("ints")[lo:hi]
        return f"get_slice(ints)[{lo}:{hi}]", _same(got, want["ints"][lo:hi])
    if kind == 5:
        got = reader.get_slice("mid")[3, 5:40]
        return "get_slice(mid)[3, 5:40]", _same(got, want["mid"][3, 5:40])
    view = reader.get_bytes_view("scalar_text")
    return "get_bytes_view(scalar_text)", bytes(view) == b"a scalar string"


def _hammer(reader, want: dict[str, np.ndarray], decoy: str | None) -> list[str]:
    """Three threads read while one closes the reader over and over and (``decoy``)
    another opens a file of the same size but other bytes, so that a descriptor number
    freed by a close is soon another file's; returns every wrong value and error."""
    problems: list[str] = []
    done = threading.Event()
    start = threading.Barrier(3 + 1 + (decoy is not None))

    def read(seed: int) -> None:
        rng = random.Random(seed)
        start.wait()
        for _ in range(ITERATIONS):
            what = "?"
            try:
                what, right = _one_read(reader, rng, want)
                if not right:
                    problems.append(f"wrong values from {what}")
            except Exception as exc:  # anything at all is a failure here
                where = traceback.format_exc(limit=-3)
                problems.append(f"{what}: {type(exc).__name__}: {exc}\n{where}")

    def close() -> None:
        start.wait()
        while not done.is_set():
            reader.close()

    def take_descriptors() -> None:
        assert decoy is not None
        start.wait()
        while not done.is_set():
            fds = [os.open(decoy, os.O_RDONLY) for _ in range(4)]
            for fd in fds:
                os.close(fd)

    readers = [threading.Thread(target=read, args=(i,)) for i in range(3)]
    others = [threading.Thread(target=close)]
    if decoy is not None:
        others.append(threading.Thread(target=take_descriptors))
    for thread in readers + others:
        thread.start()
    for thread in readers:
        thread.join()
    done.set()
    for thread in others:
        thread.join()
    return problems


def _decoy_of(path: str, tmp_path) -> str:
    """A file as long as ``path`` whose bytes are all different from it."""
    with open(path, "rb") as f:
        data = bytes((b + 1) % 256 for b in f.read())
    decoy = tmp_path / "decoy"
    decoy.write_bytes(data)
    return str(decoy)


@pytest.mark.parametrize("verify_checksums", [True, False])
def test_closing_while_threads_read_local_files_gives_right_values(
    checkpoint, tmp_path, verify_checksums
):
    """Thousands of reads of every kind (get_tensor owned and copy=False, get_tensors,
    get_slice, get_bytes_view) racing close() in a loop and a thread that reuses freed
    descriptor numbers for another file: every read returns the right values, none
    raises.  Without checksums a read through a reused descriptor would return the other
    file's bytes: none does."""
    want = {k: np.asarray(v) for k, v in _tensors().items()}
    decoy = _decoy_of(f"{checkpoint}.data-00000-of-00001", tmp_path)
    before = len(os.listdir("/proc/self/fd"))
    reader = tfckpt.load_checkpoint(checkpoint, verify_checksums=verify_checksums)
    problems = _hammer(reader, want, decoy)
    assert not problems, problems[:10]
    reader.close()
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) <= before


def test_closing_while_threads_read_a_remote_checkpoint_gives_right_values(checkpoint):
    """The same race on a memory:// checkpoint (fsspec): right values every time, and the
    reader stays pinned to the versions of the files it first read."""
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    root = f"/close-{os.getpid()}"
    for suffix in (".index", ".data-00000-of-00001"):
        with open(checkpoint + suffix, "rb") as f:
            fs.pipe_file(f"{root}/ckpt{suffix}", f.read())
    want = {k: np.asarray(v) for k, v in _tensors().items()}
    try:
        reader = tfckpt.load_checkpoint(f"memory://{root}/ckpt")
        problems = _hammer(reader, want, None)
        assert not problems, problems[:10]
        reader.close()
    finally:
        fs.rm(root, recursive=True)


def test_views_of_the_map_outlive_close_and_the_map_goes_with_the_last(checkpoint):
    """copy=False arrays read before close() keep their values after it and after the
    reader is dropped (close cannot unmap memory they use: the map is left to them); once
    the last of them is gone, nothing of the data file stays mapped."""
    data = os.path.realpath(f"{checkpoint}.data-00000-of-00001")

    def mapped() -> int:
        with open("/proc/self/maps") as maps:
            return sum(1 for line in maps if line.rstrip().endswith(data))

    gc.collect()
    before = mapped()
    reader = tfckpt.load_checkpoint(checkpoint)
    views = reader.get_tensors(["mid", "ints"], copy=False)
    small = reader.get_tensor("small", copy=False)
    reader.close()
    del reader
    gc.collect()
    want = _tensors()
    assert _same(views["mid"], want["mid"]) and _same(views["ints"], want["ints"])
    assert _same(small, want["small"])
    assert mapped() > before
    del views, small
    gc.collect()
    assert mapped() == before


def test_a_read_after_close_opens_the_data_file_again(checkpoint):
    """close() releases the data file; the reader still reads (right values), and closes
    the file it opened again when it is closed or dropped."""
    before = len(os.listdir("/proc/self/fd"))
    reader = tfckpt.load_checkpoint(checkpoint)
    assert _same(reader.get_tensor("ints"), _tensors()["ints"])
    reader.close()
    assert len(os.listdir("/proc/self/fd")) == before
    assert _same(reader.get_tensor("ints", copy=False), _tensors()["ints"])
    assert _same(reader.get_slice("mid")[1:3], _tensors()["mid"][1:3])
    del reader
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) == before


def test_a_local_file_closes_when_the_last_operation_in_flight_ends(checkpoint):
    """LocalFile.close() while a caller holds the file (acquire) defers closing the
    descriptor to the release; operations started after close raise InvalidArgumentError
    naming the file, and a closed file cannot be acquired again."""
    path = f"{checkpoint}.data-00000-of-00001"
    source = LocalFile(path)
    fd = source.fd
    assert source.acquire()
    source.close()
    os.fstat(fd)  # still open: an operation is in flight
    buffer = bytearray(8)
    os.preadv(source.fd, [buffer], 0)
    source.release()
    assert source.closed and source.fd == -1
    with pytest.raises(OSError):
        os.fstat(fd)  # (unless another thread reused the number meanwhile: none here)
    assert not source.acquire()
    for operation in (
        lambda: source.readinto(0, bytearray(4)),
        lambda: source.view(0, 4),
        source.current_size,
    ):
        with pytest.raises(InvalidArgumentError, match="closed") as info:
            operation()
        assert info.value.path == path
    source.close()  # again: nothing
