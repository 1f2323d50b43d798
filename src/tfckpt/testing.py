"""Test helpers: compare checkpoints, and compare what a project writes with a golden one.

:func:`assert_checkpoints_equal` fails with the report ``tfckpt diff`` prints (the same code:
:func:`tfckpt.inspection.compare.diff`).  The ``golden_checkpoint`` pytest fixture compares a
checkpoint a test writes with a golden one, written by TensorFlow and committed next to the tests.
Enable it in ``conftest.py``::

    pytest_plugins = ["tfckpt.testing"]

and use it in a test (the golden path is relative to the test file's directory)::

    def test_export_matches_tensorflow(tmp_path, golden_checkpoint):
        prefix = my_project.export(tmp_path / "ckpt")
        golden_checkpoint(prefix, "golden/model/ckpt-1", names="paths", rtol=1e-6)

Make the golden checkpoint once with TensorFlow (``tf.train.Checkpoint(...).write(...)``)
and commit its ``.index`` and ``.data-*`` files; tfckpt reads it without TensorFlow, so the
test does not need TensorFlow.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tfckpt.inspection.compare import DiffReport, diff
from tfckpt.inspection.selection import Naming

__all__ = ["assert_checkpoints_equal", "golden_checkpoint"]

# Sections of the report shown in a failure message are cut to this many lines.
_REPORT_LINES = 25


def assert_checkpoints_equal(
    a: str | os.PathLike[str],
    b: str | os.PathLike[str],
    *,
    rtol: float = 0.0,
    atol: float = 0.0,
    names: Naming = "keys",
    optimizer: bool = True,
    bookkeeping: bool = False,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> DiffReport:
    """Asserts that checkpoints (or ``.safetensors`` / ``.npz`` files) ``a`` and ``b`` hold
    the same tensors with the same dtypes, shapes and values (within ``rtol``/``atol``, as
    ``numpy.isclose``); returns the report.

    ``names`` matches tensors by checkpoint key or object path; ``optimizer=False`` leaves
    optimizer state out; the object graph and save counter are compared only with
    ``bookkeeping=True``; ``include``/``exclude`` are regular expressions on the names.

    Raises:
        AssertionError: they differ; the message is the report of ``tfckpt diff``.
        CheckpointError: one of them cannot be read.

    Example::

        assert_checkpoints_equal(tmp_path / "ckpt-1", "golden/ckpt-1", rtol=1e-6)
    """
    report = diff(
        a,
        b,
        rtol=rtol,
        atol=atol,
        names=names,
        optimizer=optimizer,
        bookkeeping=bookkeeping,
        include=include,
        exclude=exclude,
    )
    if not report.same:
        raise AssertionError("checkpoints differ\n" + report.format(limit=_REPORT_LINES))
    return report


def _golden_comparer(base: Path) -> Callable[..., DiffReport]:
    def compare(
        actual: str | os.PathLike[str], golden: str | os.PathLike[str], **options: Any
    ) -> DiffReport:
        """Asserts that ``actual`` equals ``golden`` (relative to the test's directory);
        ``options`` are those of :func:`assert_checkpoints_equal`."""
        golden_path = Path(golden)
        if not golden_path.is_absolute():
            golden_path = base / golden_path
        return assert_checkpoints_equal(actual, golden_path, **options)

    return compare


try:
    import pytest
except ImportError:  # pragma: no cover - the assertion helper works without pytest
    pass
else:

    @pytest.fixture
    def golden_checkpoint(request: pytest.FixtureRequest) -> Callable[..., DiffReport]:
        """``golden_checkpoint(actual, golden, **options)``: asserts that the checkpoint
        ``actual`` equals the golden checkpoint ``golden`` (a path relative to the test
        file's directory), with the options of :func:`assert_checkpoints_equal`."""
        return _golden_comparer(Path(str(request.path)).parent)
