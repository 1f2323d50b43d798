"""Unrestored values are reported when a restoration is collected, unless expect_partial().

As TensorFlow's ``_CheckpointRestoreCoordinatorDeleter``: when the restoration of an
object-based checkpoint is garbage collected (its status gone, and no deferred restoration
of it pending), ``logging.warning`` on the ``tfckpt`` logger names each checkpoint value no
object took and each attribute an object did not restore, with TensorFlow's messages and
node names; ``status.expect_partial()`` silences it; a complete restore, a failed one and
a name-based one report nothing.  No handler is installed.
"""

from __future__ import annotations

import gc
import logging

import numpy as np
import pytest

import tfckpt
from tfckpt.objects import restore

HEADER = "Detecting that an object or model or tfckpt.Checkpoint is being deleted"


def _records(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "tfckpt"]


@pytest.fixture
def saved(tmp_path) -> str:
    state = tfckpt.NumpyState()
    state.q = np.arange(3)
    checkpoint = tfckpt.Checkpoint(a=np.ones(2), model={"b": np.ones(3), "c": np.ones(1)})
    checkpoint.state = state
    return checkpoint.save(tmp_path / "ckpt")


def _restore_and_drop(checkpoint: tfckpt.Checkpoint, path: str, *, partial: bool) -> None:
    status = checkpoint.restore(path)
    if partial:
        assert status.expect_partial() is status
    del status
    gc.collect()  # (the restoration may sit in a cycle with the objects it matched)


def test_a_partial_restore_is_reported_when_collected(saved, caplog):
    """Values for ``model.c`` and ``state`` (nothing takes them), and ``state.q``'s
    ``py_state`` restored into an array (which takes VARIABLE_VALUE only): TensorFlow's
    header, then one line per value and per unrestored attribute, TF's node names."""
    checkpoint = tfckpt.Checkpoint(a=np.zeros(2), model={"b": np.zeros(3)})
    checkpoint.state = {"q": np.zeros(3, np.int64)}
    with caplog.at_level(logging.WARNING, logger="tfckpt"):
        _restore_and_drop(checkpoint, saved, partial=False)
        del checkpoint
        gc.collect()
    lines = _records(caplog)
    assert lines[0].startswith(HEADER) and "status.expect_partial()" in lines[0]
    assert "Value in checkpoint could not be found in the restored object: (root).model.c" in lines
    assert (
        "An attribute in the restored object could not be found in the checkpoint. "
        "Object: (root).state.q, attribute: ['py_state']" in lines
    )
    assert all(r.levelno == logging.WARNING for r in caplog.records if r.name == "tfckpt")


def test_expect_partial_silences_the_report(saved, caplog):
    checkpoint = tfckpt.Checkpoint(a=np.zeros(2))
    with caplog.at_level(logging.WARNING, logger="tfckpt"):
        _restore_and_drop(checkpoint, saved, partial=True)
        del checkpoint
        gc.collect()
    assert _records(caplog) == []
    assert checkpoint_restored_anyway(saved)


def checkpoint_restored_anyway(path: str) -> bool:
    """expect_partial changes what is reported, not what is restored."""
    a = np.zeros(2)
    tfckpt.Checkpoint(a=a).restore(path).expect_partial()
    return a.tolist() == [1.0, 1.0]


def test_a_complete_restore_reports_nothing(saved, caplog):
    state = tfckpt.NumpyState()
    checkpoint = tfckpt.Checkpoint(
        a=np.zeros(2), model={"b": np.zeros(3), "c": np.zeros(1)}, state=state
    )
    with caplog.at_level(logging.WARNING, logger="tfckpt"):
        _restore_and_drop(checkpoint, saved, partial=False)
        del checkpoint
        gc.collect()
    assert _records(caplog) == []


def test_a_failed_restore_reports_nothing(saved, caplog):
    """The error says that nothing was restored; no report follows it."""
    checkpoint = tfckpt.Checkpoint(a=np.zeros(5))
    with caplog.at_level(logging.WARNING, logger="tfckpt"):
        with pytest.raises(tfckpt.InvalidArgumentError, match="nothing was restored"):
            checkpoint.restore(saved)
        del checkpoint
        gc.collect()
    assert _records(caplog) == []


def test_values_restored_by_deferred_restoration_are_not_reported(saved, caplog):
    """While a child is still awaited the restoration lives on (nothing is reported when
    the status goes); attached, it is restored, and the report, when the checkpoint goes,
    names only what is still missing."""
    checkpoint = tfckpt.Checkpoint(a=np.zeros(2))
    with caplog.at_level(logging.WARNING, logger="tfckpt"):
        _restore_and_drop(checkpoint, saved, partial=False)
        assert _records(caplog) == []
        checkpoint.model = {"b": np.zeros(3), "c": np.zeros(1)}
        assert checkpoint.model["c"].tolist() == [1.0]
        del checkpoint
        gc.collect()
    lines = _records(caplog)
    assert not any("(root).model" in line for line in lines)
    assert "Value in checkpoint could not be found in the restored object: (root).state.q" in (
        lines
    )


def test_name_based_status_reports_nothing(tmp_path, caplog):
    """TensorFlow's name-based status logs no report on deletion; expect_partial is a
    no-op returning the status."""
    prefix = tfckpt.save_tensors(tmp_path / "tf1", {"w": np.ones(1), "v": np.ones(1)})
    with caplog.at_level(logging.WARNING, logger="tfckpt"):
        checkpoint = tfckpt.Checkpoint(w=np.zeros(1))
        status = checkpoint.restore(prefix)
        assert status.expect_partial() is status
        del status, checkpoint
        gc.collect()
    assert [line for line in _records(caplog) if line.startswith(HEADER)] == []


def test_the_report_is_bounded(tmp_path, caplog):
    """1000 unrestored values: the report names the first REPORT_LINES and counts the
    rest, whatever the graph's size."""
    checkpoint = tfckpt.Checkpoint(many={f"v{i:04d}": np.ones(1) for i in range(1000)})
    path = checkpoint.write(tmp_path / "many")
    with caplog.at_level(logging.WARNING, logger="tfckpt"):
        _restore_and_drop(tfckpt.Checkpoint(), path, partial=False)
        gc.collect()
    lines = _records(caplog)
    assert len(lines) == 1 + restore.REPORT_LINES + 1
    assert lines[-1] == f"... and {1000 - restore.REPORT_LINES} more values"


def test_deep_paths_are_shortened_in_the_report():
    """A node 5000 levels down is named by its first and last names only."""
    from tfckpt.proto import trackable_object_graph_pb2

    proto = trackable_object_graph_pb2.TrackableObjectGraph()
    for i in range(5001):
        node = proto.nodes.add()
        if i < 5000:
            ref = node.children.add()
            ref.node_id, ref.local_name = i + 1, "c"
    name = restore._NodeNames(proto)(5000)
    assert name.startswith("(root).c.c") and name.endswith(".c.c")
    assert f"({5001 - restore.NAME_PARTS} more)" in name
    assert len(name) < 20 * restore.NAME_PARTS


def test_reporting_installs_no_handler(saved):
    """The report goes to the ``tfckpt`` logger as it is configured: nothing is added to
    it or to the root logger (Python's last-resort handler shows warnings by default)."""
    before = (list(logging.getLogger("tfckpt").handlers), list(logging.getLogger().handlers))
    checkpoint = tfckpt.Checkpoint()
    _restore_and_drop(checkpoint, saved, partial=False)
    del checkpoint
    gc.collect()
    after = (list(logging.getLogger("tfckpt").handlers), list(logging.getLogger().handlers))
    assert after == before
