"""A failed restore changes nothing: every value is read and checked before any is assigned.

Checkpoint.restore/read and NumpyState restores that fail (shape or dtype mismatch, a
read-only target, a corrupt tensor, a missing data file) leave every array, NumpyState
attribute, save counter and deferred restoration as it was, and say so.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import tfckpt
from tfckpt.errors import CheckpointNotFoundError, DataLossError, InvalidArgumentError

# Values whose bytes are easy to find in the data file, one per tensor to corrupt.
MARK, MARK_Y, MARK_Q = 12345.678, 23456.789, 34567.891


def _saved(tmp_path: Path) -> str:
    """``a``, ``b`` (full of MARK), ``later`` and a NumpyState with ``x`` and ``y``."""
    state = tfckpt.NumpyState()
    state.x = np.arange(5.0)
    state.y = np.full(6, MARK_Y)
    checkpoint = tfckpt.Checkpoint(
        a=np.ones(3), b=np.full(100, MARK), later=np.full(2, 7.0), state=state
    )
    return checkpoint.save(tmp_path / "ckpt")


def _targets(b: np.ndarray | None = None):
    state = tfckpt.NumpyState()
    state.x = np.zeros(1)
    checkpoint = tfckpt.Checkpoint(a=np.zeros(3), b=np.zeros(100) if b is None else b, state=state)
    return checkpoint, state


def _assert_untouched(checkpoint: tfckpt.Checkpoint, state: tfckpt.NumpyState) -> None:
    assert not checkpoint.a.any() and not checkpoint.b.any()
    assert state.x.tolist() == [0.0] and not hasattr(state, "y")
    assert checkpoint.save_counter == 0


def _corrupt(prefix: str, mark: float) -> None:
    """Flips one byte of the tensor full of ``mark`` in the data file."""
    path = Path(prefix + ".data-00000-of-00001")
    data = bytearray(path.read_bytes())
    data[data.index(np.full(6, mark).tobytes()) + 3] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "b",
    [np.zeros(99), np.zeros(100, np.float32)],
    ids=["shape", "dtype"],
)
def test_a_mismatch_in_one_value_assigns_none(tmp_path, b):
    """A shape or dtype mismatch of ``b`` (restored after ``a``): nothing was assigned,
    not ``a``, not the NumpyState, not the counter; the error says so."""
    path = _saved(tmp_path)
    checkpoint, state = _targets(b)
    with pytest.raises(InvalidArgumentError, match="nothing was restored") as info:
        checkpoint.restore(path)
    assert info.value.tensor == "b/.ATTRIBUTES/VARIABLE_VALUE"
    assert not checkpoint.a.any() and not checkpoint.b.any()
    assert state.x.tolist() == [0.0] and not hasattr(state, "y")


def test_a_read_only_target_assigns_none(tmp_path):
    """A read-only array to restore into fails the whole restore before any assignment."""
    path = _saved(tmp_path)
    b = np.zeros(100)
    b.flags.writeable = False
    checkpoint, state = _targets(b)
    with pytest.raises(InvalidArgumentError, match="read-only"):
        checkpoint.read(path)
    assert not checkpoint.a.any() and state.x.tolist() == [0.0]


def test_a_corrupt_tensor_assigns_none(tmp_path):
    """A checksum mismatch in ``b``: DataLossError, and ``a`` (read before it) untouched."""
    path = _saved(tmp_path)
    _corrupt(path, MARK)
    checkpoint, state = _targets()
    with pytest.raises(DataLossError, match="nothing was restored"):
        checkpoint.restore(path)
    _assert_untouched(checkpoint, state)


def test_a_corrupt_numpy_state_attribute_creates_and_replaces_nothing(tmp_path):
    """``state.y`` corrupt: ``state.x`` keeps its value and ``y`` is not created, although
    restoring creates NumpyState attributes (the bytes are checked first)."""
    path = _saved(tmp_path)
    _corrupt(path, MARK_Y)  # y is restored last: a, b and x were checked before it
    checkpoint, state = _targets()
    with pytest.raises(DataLossError, match="nothing was restored"):
        checkpoint.restore(path)
    _assert_untouched(checkpoint, state)


def test_a_missing_data_file_assigns_none(tmp_path):
    """Without its data file the restore fails with CheckpointNotFoundError, changing
    nothing."""
    path = _saved(tmp_path)
    os.remove(path + ".data-00000-of-00001")
    checkpoint, state = _targets()
    with pytest.raises(CheckpointNotFoundError):
        checkpoint.restore(path)
    _assert_untouched(checkpoint, state)


def test_a_failed_restore_leaves_no_deferred_restoration_behind(tmp_path):
    """A child attached after a failed restore is not restored from it (the deferral
    belonged to the restore that failed); one attached after a good restore is."""
    path = _saved(tmp_path)
    good, state = _targets()
    good.restore(path)
    _corrupt(path, MARK_Y)  # y comes after ``later`` was found missing and deferred
    checkpoint, _ = _targets()
    with pytest.raises(DataLossError):
        checkpoint.restore(path)
    checkpoint.later = np.zeros(2)
    assert not checkpoint.later.any()
    good.later = np.zeros(2)
    assert good.later.tolist() == [7.0, 7.0]
    assert good.a.tolist() == [1.0] * 3 and state.y.tolist() == [MARK_Y] * 6
    assert good.save_counter == 1


def test_numpy_state_alone_restores_all_or_nothing(tmp_path):
    """A NumpyState restored through a Checkpoint of its own: a corrupt attribute leaves
    the others as they were."""
    state = tfckpt.NumpyState()
    state.p = np.full(6, MARK)
    state.q = np.full(6, MARK_Q)
    path = tfckpt.Checkpoint(s=state).write(tmp_path / "m")
    _corrupt(path, MARK_Q)
    target = tfckpt.NumpyState()
    target.p = np.zeros(2)
    with pytest.raises(DataLossError, match="nothing was restored"):
        tfckpt.Checkpoint(s=target).read(path)
    assert target.p.tolist() == [0.0, 0.0] and not hasattr(target, "q")
