"""tfckpt.testing: assert_checkpoints_equal and the golden_checkpoint pytest fixture."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tfckpt
from tests.conftest import FIXTURES, REPO
from tfckpt.testing import assert_checkpoints_equal

OBJECT_BASED = FIXTURES / "object_based" / "ckpt-1"


def _rewrite(source, prefix, change=None):
    """A copy of ``source``'s tensors at ``prefix``, with ``change`` applied to the dict."""
    tensors = tfckpt.load_tensors(source)
    if change is not None:
        change(tensors)
    return tfckpt.save_tensors(prefix, tensors)


def test_equal_checkpoints_pass_and_return_the_report(tmp_path):
    """A TensorFlow checkpoint and a tfckpt rewrite of it are equal (bookkeeping left out by
    default, compared with bookkeeping=True)."""
    copy = _rewrite(OBJECT_BASED, tmp_path / "copy")
    report = assert_checkpoints_equal(OBJECT_BASED, copy)
    assert report.same and len(report.equal) == 20
    assert_checkpoints_equal(OBJECT_BASED, copy, bookkeeping=True)


def test_differences_fail_with_the_diff_report(tmp_path):
    """A changed value fails with the same report `tfckpt diff` prints: the tensor, how
    many elements differ and by how much."""

    def change(tensors):
        tensors["net/w/.ATTRIBUTES/VARIABLE_VALUE"] = np.float32([[0.99, 1.99], [2.99, 4.0]])
        del tensors["net/b/.ATTRIBUTES/VARIABLE_VALUE"]

    changed = _rewrite(OBJECT_BASED, tmp_path / "changed", change)
    with pytest.raises(AssertionError) as info:
        assert_checkpoints_equal(OBJECT_BASED, changed)
    message = str(info.value)
    assert message.startswith("checkpoints differ\n--- A: ")
    assert "only in A (1):\n  net/b/.ATTRIBUTES/VARIABLE_VALUE  float32 [2]" in message
    assert "net/w/.ATTRIBUTES/VARIABLE_VALUE  1 of 4 elements differ (25%)" in message
    assert message.splitlines()[-1].startswith("DIFFERENT: 1 only in A, 1 with other values")


def test_tolerances_names_and_selection(tmp_path):
    """rtol/atol, names='paths', optimizer=False and exclude narrow what must match."""

    def nudge(tensors):
        key = "net/w/.ATTRIBUTES/VARIABLE_VALUE"
        tensors[key] = tensors[key] * np.float32(1 + 1e-6)
        key = "net/w/.OPTIMIZER_SLOT/v1_optimizer/m/.ATTRIBUTES/VARIABLE_VALUE"
        tensors[key] = tensors[key] + 1

    nudged = _rewrite(OBJECT_BASED, tmp_path / "nudged", nudge)
    with pytest.raises(AssertionError):
        assert_checkpoints_equal(OBJECT_BASED, nudged, optimizer=False)
    assert_checkpoints_equal(OBJECT_BASED, nudged, rtol=1e-5, optimizer=False, names="paths")
    assert_checkpoints_equal(OBJECT_BASED, nudged, rtol=1e-5, exclude=["OPTIMIZER_SLOT"])


def test_golden_checkpoint_fixture_in_a_project(tmp_path):
    """A project enabling the plugin (pytest_plugins = ["tfckpt.testing"]) compares what its
    code writes with a golden TensorFlow checkpoint committed next to its tests: a match
    passes, a mismatch fails with the diff report in pytest's output."""
    project = tmp_path / "project"
    (project / "golden").mkdir(parents=True)
    for file in OBJECT_BASED.parent.glob("ckpt-1.*"):
        shutil.copy(file, project / "golden" / file.name)
    (project / "conftest.py").write_text('pytest_plugins = ["tfckpt.testing"]\n')
    (project / "test_export.py").write_text(
        textwrap.dedent(
            """
            import numpy as np
            import tfckpt

            def export(prefix, change=0.0):
                tensors = tfckpt.load_tensors("golden/ckpt-1")  # what the project would make
                tensors["net/w/.ATTRIBUTES/VARIABLE_VALUE"] = tensors[
                    "net/w/.ATTRIBUTES/VARIABLE_VALUE"
                ] + np.float32(change)
                return tfckpt.save_tensors(prefix, tensors)

            def test_matches(tmp_path, golden_checkpoint):
                golden_checkpoint(export(tmp_path / "ckpt"), "golden/ckpt-1", names="paths")

            def test_differs(tmp_path, golden_checkpoint):
                golden_checkpoint(export(tmp_path / "ckpt", 0.5), "golden/ckpt-1", atol=0.1)
            """
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(project)],
        cwd=project,
        env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "1 failed, 1 passed" in done.stdout, done.stdout + done.stderr
    assert "test_differs" in done.stdout and "checkpoints differ" in done.stdout
    assert "net/w/.ATTRIBUTES/VARIABLE_VALUE  4 of 4 elements differ" in done.stdout
