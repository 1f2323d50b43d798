"""``tfckpt verify --repair``: an overwrite killed between its renames (the old checkpoint
set aside beside the new data file) is put back, said in one line (a field in --json), and
verified again, whose outcome is the exit code; without --repair the report suggests it.
Run through the installed console script, on the files the crash leaves
(tests/inspection/interrupted.py, as tests/inspection/test_verify_aside.py makes them)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

import tfckpt
from tests.cli.run import flip_byte, one_line_error
from tests.cli.run import tfckpt as run
from tests.inspection.interrupted import OLD, overwrite_killed
from tfckpt.storage.commit import aside_path
from tfckpt.storage.lock import FileLock

DATA = ".data-00000-of-00001"


def _files(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def _reserved(directory: Path) -> list[str]:
    """Temporaries and set-aside files left in ``directory`` (not the lock file)."""
    return [n for n in _files(directory) if ".tempstate-tfckpt-" in n and "lock" not in n]


def _assert_old_values(prefix: str) -> None:
    values = tfckpt.load_tensors(prefix)
    assert set(values) == set(OLD)
    for name, value in OLD.items():
        np.testing.assert_array_equal(np.asarray(values[name]), value)


def test_repair_puts_the_old_checkpoint_back_and_verifies_again(tmp_path):
    """Old index and data set aside, the new data file in under its final name: --repair
    says in one line what it did, the second verification is clean (exit 0), the old
    checkpoint is back under its final names with its values, and nothing reserved is
    left; verify alone is clean afterwards, with no suggestion."""
    prefix = overwrite_killed(tmp_path, data_moved_in=True)
    done = run("verify", "--repair", prefix, script=True)
    assert done.returncode == 0, (done.stdout, done.stderr)
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"REPAIRED: {prefix}: put the old checkpoint back"), lines
    assert "2 set-aside file(s)" in lines[0]
    assert lines[-1].startswith(f"OK: {prefix} "), lines
    assert len(lines) == 2, lines  # the repair, the clean summary
    assert "INTERRUPTED" not in done.stdout and done.stderr == ""
    assert os.path.exists(prefix + ".index") and os.path.exists(prefix + DATA)
    assert _reserved(tmp_path) == []
    _assert_old_values(prefix)
    again = run("verify", prefix, script=True)
    assert again.returncode == 0 and "--repair" not in again.stdout, again.stdout


def test_repair_json_says_what_was_put_back(tmp_path):
    """--repair --json (the new data file still a temporary): stdout is the JSON report of
    the second verification alone, with ``repaired: true`` and the set-aside files put
    back; exit 0."""
    prefix = overwrite_killed(tmp_path, data_moved_in=False)
    done = run("verify", "--repair", "--json", prefix, script=True)
    assert done.returncode == 0, (done.stdout, done.stderr)
    report = json.loads(done.stdout)
    assert report["repaired"] is True
    assert report["repaired_set_aside"] == sorted(
        [aside_path(prefix + ".index"), aside_path(prefix + DATA)]
    )
    assert report["ok"] is True and report["interrupted"] is False
    assert report["problems"] == [] and report["set_aside"] == []
    assert report["tensors_checked"] == report["tensors"] == len(OLD)
    assert _reserved(tmp_path) == []
    _assert_old_values(prefix)


def test_without_repair_the_report_suggests_it_and_changes_nothing(tmp_path):
    """verify alone on an interrupted overwrite: exit 1, INTERRUPTED, then a line naming
    `tfckpt verify --repair PATH`; no file is touched.  --quiet keeps only the summary;
    --json says ``repaired: false``."""
    prefix = overwrite_killed(tmp_path, data_moved_in=True)
    before = _files(tmp_path)
    done = run("verify", prefix, script=True)
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-2].startswith("INTERRUPTED: "), lines
    assert lines[-1].startswith(f"hint: `tfckpt verify --repair {prefix}`"), lines
    quiet = run("verify", "-q", prefix, script=True)
    assert quiet.returncode == 1 and len(quiet.stdout.splitlines()) == 1, quiet.stdout
    report = json.loads(run("verify", "--json", prefix, script=True).stdout)
    assert report["interrupted"] is True and report["repaired"] is False
    assert report["repaired_set_aside"] == []
    assert _files(tmp_path) == before


def test_repair_with_nothing_to_repair_changes_nothing(tmp_path):
    """--repair on a clean checkpoint: exit 0, a note that nothing was changed; on a
    corrupt one (no interrupted overwrite): exit 1 as without --repair, the file left as
    it is, ``repaired: false``."""
    prefix = tfckpt.save_tensors(tmp_path / "ckpt", OLD)
    done = run("verify", "--repair", prefix, script=True)
    assert done.returncode == 0, done.stderr
    assert "note: --repair: no interrupted overwrite here; nothing was changed" in done.stdout
    assert "REPAIRED" not in done.stdout
    flip_byte(Path(prefix + DATA), 3)
    corrupt = Path(prefix + DATA).read_bytes()
    bad = run("verify", "--repair", "--json", prefix, script=True)
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert report["ok"] is False and report["repaired"] is False
    assert Path(prefix + DATA).read_bytes() == corrupt


def test_exit_code_is_that_of_the_second_verification(tmp_path):
    """A set-aside checkpoint that is itself corrupt is put back all the same (as the next
    save would), and the second verification reports it: exit 1, the REPAIRED line, then
    the bad tensor and a BAD summary."""
    prefix = overwrite_killed(tmp_path, data_moved_in=True)
    flip_byte(Path(aside_path(prefix + DATA)), 3)  # inside tensor 'a' of the old data
    done = run("verify", "--repair", "--all", prefix, script=True)
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"REPAIRED: {prefix}"), lines
    assert any(line.startswith("BAD ") and "tensor 'a'" in line for line in lines), lines
    assert lines[-1].startswith(f"BAD: {prefix} "), lines
    assert os.path.exists(prefix + ".index") and _reserved(tmp_path) == []


def test_repair_while_a_writer_holds_the_prefix_fails_in_one_line(tmp_path):
    """A writer holding the prefix's lock: --repair fails with one error line and exit 1,
    leaving every file as it was (the writer undoes the overwrite itself)."""
    prefix = overwrite_killed(tmp_path, data_moved_in=True)
    with FileLock.acquire(prefix, what="writer of this checkpoint"):
        before = _files(tmp_path)
        done = run("verify", "--repair", prefix, script=True)
        line = one_line_error(done, 1)
        assert "another writer of this checkpoint is writing here" in line
        assert _files(tmp_path) == before


def test_help_documents_repair():
    """`tfckpt verify --help` lists --repair."""
    done = run("verify", "--help", script=True)
    assert done.returncode == 0 and "--repair" in done.stdout
