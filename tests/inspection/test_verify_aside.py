"""tfckpt.inspection.verify on what killed saves leave (tfckpt.storage.commit): an
overwrite interrupted between its renames is reported as such (its own message, the
set-aside files, exit code 1 from ``tfckpt verify``) and the old checkpoint it set aside is
verified, instead of "the index does not exist" or missing and extra data files; leftovers
beside a complete checkpoint are notes; repair_interrupted_overwrite puts the old
checkpoint back."""

from __future__ import annotations

import os

import numpy as np

import tfckpt
from tests.cli.run import tfckpt as run_tfckpt
from tests.inspection.interrupted import OLD, overwrite_killed
from tfckpt.inspection.verify import repair_interrupted_overwrite, verify_checkpoint
from tfckpt.storage.commit import aside_path, temporary_path


def _values(prefix: str) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in tfckpt.load_tensors(prefix).items()}


def test_an_interrupted_overwrite_is_reported_and_its_old_checkpoint_verified(tmp_path):
    """New data already under the final name, old index and data set aside: one problem
    saying the overwrite was interrupted (naming the set-aside index), the set-aside
    files listed, every tensor of the old checkpoint verified with no other problem."""
    prefix = overwrite_killed(tmp_path, data_moved_in=True)
    report = verify_checkpoint(prefix)
    assert report.interrupted and not report.ok
    assert len(report.problems) == 1, report.problems
    problem = report.problems[0]
    assert "overwrite of this checkpoint was interrupted" in problem.message
    assert problem.path == aside_path(prefix + ".index")
    assert report.set_aside == sorted(
        [aside_path(prefix + ".index"), aside_path(prefix + ".data-00000-of-00001")]
    )
    assert report.tensors_checked == report.tensors == 2
    assert report.summary().startswith("INTERRUPTED:")
    assert report.to_dict()["interrupted"] is True


def test_interrupted_before_the_data_was_set_aside_reads_the_final_data(tmp_path):
    """Killed after setting the index aside, before touching the data file: the old
    checkpoint is the aside index with the data file under its final name; verified."""
    prefix = overwrite_killed(tmp_path, data_moved_in=False, data_set_aside=False)
    report = verify_checkpoint(prefix, keep_going=True)
    assert report.interrupted and len(report.problems) == 1, report.problems
    assert report.tensors_checked == 2


def test_tfckpt_verify_exits_1_with_a_distinct_message(tmp_path):
    """The command prints the interrupted-overwrite problem and an INTERRUPTED summary and
    exits with 1 (with the new data file still a temporary, too)."""
    prefix = overwrite_killed(tmp_path, data_moved_in=False)
    done = run_tfckpt("verify", prefix)
    assert done.returncode == 1, done.stderr
    assert "overwrite of this checkpoint was interrupted" in done.stdout
    assert "INTERRUPTED:" in done.stdout
    assert "does not exist" not in done.stdout and "missing" not in done.stdout


def test_leftovers_beside_a_complete_checkpoint_are_notes(tmp_path):
    """Set-aside files of an overwrite killed after its commit point, and temporaries of a
    killed save, beside a complete checkpoint: verified OK, each kind noted."""
    prefix = str(tmp_path / "ckpt")
    tfckpt.save_tensors(prefix, OLD)
    data = prefix + ".data-00000-of-00001"
    with open(aside_path(data), "wb") as f:
        f.write(b"old bytes")
    with open(temporary_path(prefix + ".index", "fedcba9876543210"), "wb") as f:
        f.write(b"half")
    report = verify_checkpoint(prefix)
    assert report.ok and not report.interrupted, report.problems
    assert any("set-aside file(s) of a completed overwrite" in n for n in report.notes)
    assert any("temporary file(s) of killed saves" in n for n in report.notes)


def test_repair_puts_the_old_checkpoint_back(tmp_path):
    """repair_interrupted_overwrite moves the set-aside checkpoint back under its final
    names (TensorFlow can read it again), removes the rest, and verify is clean; a second
    repair has nothing to do."""
    prefix = overwrite_killed(tmp_path, data_moved_in=True)
    assert repair_interrupted_overwrite(prefix) is True
    assert os.path.exists(prefix + ".index")
    assert not [n for n in os.listdir(tmp_path) if ".tempstate-tfckpt-" in n and "lock" not in n]
    report = verify_checkpoint(prefix)
    assert report.ok and not report.interrupted, report.problems
    values = _values(prefix)
    assert set(values) == set(OLD)
    for name, value in OLD.items():
        np.testing.assert_array_equal(values[name], value)
    assert repair_interrupted_overwrite(prefix) is False
