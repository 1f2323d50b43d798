"""Two writers aimed at one prefix: one of them fails, none mixes its files with the other's.

Writers take an flock on ``<prefix>.tempstate-tfckpt-lock`` (tfckpt.storage.lock), which
the kernel drops when a holder dies, however it dies.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import tfckpt
from tfckpt.errors import ConcurrentWriteError
from tfckpt.storage.lock import LOCK_SUFFIX, FileLock

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not hasattr(os, "fork"), reason="POSIX locks and signals (no locks are taken on Windows)"
)

# A child that holds a BundleWriter on a prefix open until it is killed.
_HOLDER = """
import sys, numpy as np, tfckpt
writer = tfckpt.BundleWriter(sys.argv[1])
writer.add("a", np.ones(10))
print("holding", flush=True)
sys.stdin.read()
"""

# A child that saves its own generations to one prefix for a while, counting conflicts.
_RACER = """
import sys, time, numpy as np, tfckpt
prefix, mark, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
saved = conflicts = 0
end = time.monotonic() + seconds
while time.monotonic() < end:
    g = mark * 1_000_000 + saved
    try:
        tfckpt.save_tensors(prefix, {
            "g": np.array(g), "a": np.full(1000 + saved % 50, g), "b": np.full(77, g, np.int32)
        })
        saved += 1
    except tfckpt.ConcurrentWriteError:
        conflicts += 1
print(saved, conflicts, flush=True)
"""


def _start(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_a_second_bundle_writer_of_a_prefix_fails_until_the_first_is_done(tmp_path):
    """In one process too: the second writer of a prefix fails with ConcurrentWriteError
    (naming the prefix), and once the first finishes the prefix is free again."""
    prefix = str(tmp_path / "m")
    first = tfckpt.BundleWriter(prefix)
    with pytest.raises(ConcurrentWriteError) as info:
        tfckpt.save_tensors(prefix, {"b": np.zeros(3)})
    assert info.value.path == prefix and str(os.getpid()) in str(info.value)
    first.add("a", np.ones(3))
    first.finish()
    tfckpt.save_tensors(prefix, {"b": np.zeros(3)})
    assert tfckpt.load_checkpoint(prefix).keys() == ["b"]
    assert sorted(os.listdir(tmp_path)) == ["m.data-00000-of-00001", "m.index"]


def test_a_writer_in_another_process_holds_the_prefix_until_it_is_killed(tmp_path):
    """While another process writes the prefix, saving there fails and names its pid; once
    it is SIGKILLed, its lock does not block: the next save succeeds at once and leaves no
    lock file behind."""
    prefix = str(tmp_path / "m")
    tfckpt.save_tensors(prefix, {"old": np.arange(5)})
    holder = _start(_HOLDER, prefix)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        with pytest.raises(ConcurrentWriteError, match=f"pid {holder.pid}"):
            tfckpt.save_tensors(prefix, {"new": np.arange(3)})
        assert tfckpt.load_checkpoint(prefix).keys() == ["old"]
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    start = time.monotonic()
    tfckpt.save_tensors(prefix, {"new": np.arange(3)})
    assert time.monotonic() - start < 1.0
    assert tfckpt.load_checkpoint(prefix).keys() == ["new"]
    assert sorted(os.listdir(tmp_path)) == ["m.data-00000-of-00001", "m.index"]


def test_two_processes_saving_to_one_prefix_never_mix_their_checkpoints(tmp_path):
    """Two processes saving their own values to one prefix as fast as they can: each save
    either completes whole or fails with ConcurrentWriteError, and what is there at any
    moment a reader looks, and at the end, is one save of one process."""
    prefix = str(tmp_path / "m")
    racers = [_start(_RACER, prefix, str(mark), "2.0") for mark in (1, 2)]
    reads = 0
    try:
        while any(r.poll() is None for r in racers):
            if tfckpt.paths.checkpoint_format(prefix) is not None:
                _check_whole(prefix, allow_racing=True)
                reads += 1
    finally:
        outputs = [r.communicate(timeout=30)[0].split() for r in racers]
    saved = [int(out[0]) for out in outputs]
    conflicts = sum(int(out[1]) for out in outputs)
    assert all(saved), outputs
    assert conflicts > 0, outputs  # they did collide, and were told
    _check_whole(prefix, allow_racing=False)
    assert sorted(os.listdir(tmp_path)) == ["m.data-00000-of-00001", "m.index"]


def _check_whole(prefix: str, *, allow_racing: bool) -> None:
    """The checkpoint holds one save: every tensor carries the same generation.  A reader
    racing a writer may find files replaced under it; checksums make that an error (never
    a mixture), which is allowed while the racers run."""
    try:
        tensors = tfckpt.load_tensors(prefix)
    except (tfckpt.DataLossError, tfckpt.CheckpointNotFoundError):
        if allow_racing:
            return
        raise
    g = int(tensors["g"])
    assert (tensors["a"] == g).all() and (tensors["b"] == g).all(), g


def test_a_stale_lock_file_from_a_dead_writer_is_taken_over(tmp_path):
    """A lock file that no process holds (its writer died) does not block: the next
    writer takes it and removes it when done."""
    prefix = str(tmp_path / "m")
    Path(prefix + LOCK_SUFFIX).write_text("    999999\n")
    tfckpt.save_tensors(prefix, {"a": np.ones(2)})
    assert sorted(os.listdir(tmp_path)) == ["m.data-00000-of-00001", "m.index"]


def test_a_waiting_lock_gets_the_lock_once_it_is_released(tmp_path):
    """``wait=`` retries until the holder releases (used for the state file)."""
    guarded = str(tmp_path / "checkpoint")
    held = FileLock.acquire(guarded)
    with pytest.raises(ConcurrentWriteError):
        FileLock.acquire(guarded, wait=0.05)
    held.release()
    with FileLock.acquire(guarded, wait=0.05) as again:
        assert again.held
    assert os.listdir(tmp_path) == []
