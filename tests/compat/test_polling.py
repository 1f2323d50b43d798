"""checkpoints_iterator and wait_for_new_checkpoint (src/tfckpt/compat/polling.py), run on
a fake clock: checkpoints appear at scripted times while the loop sleeps."""

from __future__ import annotations

import os

import numpy as np
import pytest

import tfckpt
from tfckpt.checkpoint_state import write_state
from tfckpt.compat import polling


class FakeClock:
    """Fake monotonic time; ``sleep`` advances it and writes the checkpoints due by then."""

    def __init__(self, directory, appearances=None) -> None:
        self.elapsed = 0.0
        self.directory = str(directory)
        self.pending = sorted((appearances or {}).items())
        self.sleeps: list[float] = []

    def now(self) -> float:
        return 500.0 + self.elapsed

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.elapsed += seconds
        while self.pending and self.pending[0][0] <= self.elapsed:
            _, name = self.pending.pop(0)
            write_checkpoint(self.directory, name)


def write_checkpoint(directory: str, name: str) -> str:
    prefix = tfckpt.save_tensors(os.path.join(directory, name), {"v": np.zeros(1)})
    write_state(directory, name, [name])
    return prefix


@pytest.fixture
def clock(tmp_path, monkeypatch):
    def make(appearances=None):
        fake = FakeClock(tmp_path, appearances)
        monkeypatch.setattr(polling, "_now", fake.now)
        monkeypatch.setattr(polling, "_sleep", fake.sleep)
        return fake

    return make


def test_yields_each_new_checkpoint_once(clock, tmp_path):
    """New latest checkpoints are yielded once each, in order, polling once a second; one
    replaced before the next poll is never seen; the loop ends ``timeout`` after the last."""
    fake = clock({0.5: "ckpt-1", 2.2: "ckpt-2", 2.7: "ckpt-3", 6.0: "ckpt-4"})
    seen = []
    for path in tfckpt.checkpoints_iterator(tmp_path, timeout=3):
        seen.append((os.path.basename(path), fake.elapsed))
    assert seen == [("ckpt-1", 1.0), ("ckpt-3", 3.0), ("ckpt-4", 6.0)]
    assert fake.elapsed == 9.0  # the 3 s timeout after the last one
    assert set(fake.sleeps) == {1}


def test_min_interval_sleeps_out_the_rest(clock, tmp_path):
    """After a yield, the loop sleeps until ``min_interval_secs`` after the yield, counting
    the time the caller spent."""
    fake = clock()
    write_checkpoint(str(tmp_path), "ckpt-1")
    iterator = polling.checkpoints_iterator(tmp_path, min_interval_secs=5, timeout=0.5)
    assert os.path.basename(next(iterator)) == "ckpt-1"
    fake.advance(2)  # the caller's work
    assert list(iterator) == []
    assert fake.sleeps == [3.0]


def test_timeout_fn_decides_and_is_asked_after_every_yield(clock, tmp_path):
    """timeout_fn is asked after each timeout (False: keep waiting) and, as in TensorFlow,
    after each yielded checkpoint; True ends the loop."""
    fake = clock({0.5: "ckpt-1", 4.5: "ckpt-2"})
    asked = []

    def timeout_fn():
        asked.append(fake.elapsed)
        return len(asked) == 4

    found = polling.checkpoints_iterator(tmp_path, timeout=2, timeout_fn=timeout_fn)
    paths = [os.path.basename(p) for p in found]
    assert paths == ["ckpt-1", "ckpt-2"]
    assert asked == [1.0, 3.0, 5.0, 7.0]  # after ckpt-1, a timeout, after ckpt-2, a timeout


def test_without_timeout_fn_a_timeout_ends_the_loop(clock, tmp_path):
    """With no checkpoint at all, the loop ends after the timeout, polling meanwhile."""
    fake = clock()
    assert list(polling.checkpoints_iterator(tmp_path, timeout=3.5)) == []
    assert fake.sleeps == [1, 1, 1]


def test_wait_for_new_checkpoint(clock, tmp_path):
    """wait_for_new_checkpoint returns a checkpoint other than ``last_checkpoint`` or None
    at the timeout (immediately when the timeout is shorter than one poll)."""
    fake = clock({1.5: "ckpt-2"})
    first = write_checkpoint(str(tmp_path), "ckpt-1")
    assert polling.wait_for_new_checkpoint(tmp_path, timeout=10) == first
    assert polling.wait_for_new_checkpoint(tmp_path, first, timeout=0.5) is None
    assert fake.elapsed == 0
    found = polling.wait_for_new_checkpoint(tmp_path, first, seconds_to_sleep=0.5, timeout=10)
    assert os.path.basename(found) == "ckpt-2" and fake.elapsed == 1.5


def test_a_corrupt_state_file_is_reported(clock, tmp_path):
    """A state file that does not parse raises DataLossError out of the loop (TensorFlow
    would keep waiting as if there were no checkpoint)."""
    clock()
    (tmp_path / "checkpoint").write_text("not a state file {")
    with pytest.raises(tfckpt.DataLossError):
        next(polling.checkpoints_iterator(tmp_path, timeout=5))
