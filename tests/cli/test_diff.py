"""``tfckpt diff``: what differs between two checkpoints, and how much."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tfckpt
from tests.cli.run import tfckpt as run
from tests.conftest import CORPUS, FIXTURES

TFX = CORPUS / "tensorflow-tfx" / "tfx" / "components" / "testdata" / "trainer" / "current"
OBJECT_BASED = FIXTURES / "object_based" / "ckpt-1"


@pytest.fixture
def pair(tmp_path):
    """Checkpoint A and a B with: one value changed in two elements, one tensor removed,
    one added, one with another dtype, one with another shape."""
    a = {
        "same": np.arange(6, dtype=np.float32).reshape(2, 3),
        "changed": np.array([1.0, 2.0, 4.0, 8.0], np.float32),
        "removed": np.zeros(2, np.int64),
        "retyped": np.ones(3, np.float32),
        "reshaped": np.ones((2, 3), np.float32),
        "words": np.array([b"a", b"b"], dtype=object),
    }
    b = dict(a)
    b["changed"] = np.array([1.0, 2.5, 4.0, 7.0], np.float32)
    del b["removed"]
    b["added"] = np.ones(1, np.int8)
    b["retyped"] = np.ones(3, np.float64)
    b["reshaped"] = np.ones((3, 2), np.float32)
    return (
        tfckpt.save_tensors(tmp_path / "a" / "ckpt", a),
        tfckpt.save_tensors(tmp_path / "b" / "ckpt", b),
    )


def test_identical_checkpoints(tmp_path):
    """A checkpoint against itself: exit 0 and EQUAL with the count."""
    done = run("diff", OBJECT_BASED, OBJECT_BASED)
    assert done.returncode == 0
    assert done.stdout.splitlines()[-1] == "EQUAL: 20 tensors (rtol=0, atol=0)"


def test_every_kind_of_difference(pair):
    """Only in A, only in B, dtype, shape and values each get a section; exit code 1."""
    a, b = pair
    done = run("diff", a, b)
    assert done.returncode == 1
    out = done.stdout
    assert "only in A (1):\n  removed  int64 [2]\n" in out
    assert "only in B (1):\n  added  int8 [1]\n" in out
    assert "dtype differs (1):\n  retyped  A: float32 [3]  B: float64 [3]\n" in out
    assert "shape differs (1):\n  reshaped  A: float32 [2, 3]  B: float32 [3, 2]\n" in out
    assert (
        "values differ (1):\n  changed  2 of 4 elements differ (50%), max abs diff 1, "
        "max rel diff 0.2\n" in out
    )
    assert out.splitlines()[-1] == (
        "DIFFERENT: 1 only in A, 1 only in B, 1 with another dtype, 1 with another shape, "
        "1 with other values, 2 equal (rtol=0, atol=0)"
    )


def test_tolerances(pair):
    """--atol/--rtol decide which values count as equal, as numpy.isclose."""
    a, b = pair
    loose = json.loads(run("diff", a, b, "--atol", "1", "--json").stdout)
    assert loose["values_differ"] == [] and "changed" in loose["equal"]
    relative = json.loads(run("diff", a, b, "--rtol", "0.15", "--json").stdout)
    (changed,) = relative["values_differ"]
    assert changed["differing"] == 1 and changed["max_abs"] == 0.5


def test_json_report(pair):
    """--json has every section, machine-readable."""
    a, b = pair
    report = json.loads(run("diff", a, b, "--json").stdout)
    assert report["same"] is False
    assert report["only_in_a"] == [{"name": "removed", "dtype": "int64", "shape": [2]}]
    assert report["values_differ"][0]["differing"] == 2
    assert sorted(report["equal"]) == ["same", "words"]


def test_two_real_checkpoints_of_one_training_run():
    """Two steps of one TFX training run: same names and shapes, values differ."""
    done = run(
        "diff", TFX / "Format-Serving" / "model.ckpt-0", TFX / "Format-Serving" / "model.ckpt-1000"
    )
    assert done.returncode == 1
    assert "only in A" not in done.stdout and "values differ" in done.stdout
    assert "global_step  1 of 1 elements differ" in done.stdout


def test_by_object_path_and_without_optimizer(tmp_path):
    """--names paths matches by object path; --exclude-optimizer leaves slots out; the
    object graph and save counter are compared only with --bookkeeping."""
    pytest.importorskip("safetensors")
    out = tmp_path / "w.safetensors"
    assert run("convert", OBJECT_BASED, out, "--names", "paths").returncode == 0
    done = run("diff", OBJECT_BASED, out, "--names", "paths")
    assert done.returncode == 0, done.stdout
    assert "not compared (bookkeeping): _CHECKPOINTABLE_OBJECT_GRAPH, save_counter" in done.stdout
    bookkeeping = run("diff", OBJECT_BASED, out, "--names", "paths", "--bookkeeping")
    assert bookkeeping.returncode == 1 and "only in A (1):\n  _CHECKPOINTABLE_OBJECT_GRAPH" in (
        bookkeeping.stdout
    )
    no_optimizer = run("diff", OBJECT_BASED, out, "--names", "paths", "--exclude-optimizer")
    assert "EQUAL: 8 tensors" in no_optimizer.stdout


def test_filter_and_exclude(pair):
    """--filter compares only matching names, --exclude leaves names out."""
    a, b = pair
    assert run("diff", a, b, "--filter", "^(same|words)$").returncode == 0
    done = run("diff", a, b, "--exclude", "changed|removed|added|retyped|reshaped")
    assert done.returncode == 0 and "EQUAL: 2 tensors" in done.stdout


def test_nan_and_negative_zero(tmp_path):
    """NaN equals NaN and -0.0 equals 0.0; integers are compared exactly."""
    a = tfckpt.save_tensors(
        tmp_path / "a", {"f": np.array([np.nan, -0.0, 1.0]), "i": np.array([2**62 + 1])}
    )
    b = tfckpt.save_tensors(
        tmp_path / "b", {"f": np.array([np.nan, 0.0, 1.0]), "i": np.array([2**62])}
    )
    report = json.loads(run("diff", a, b, "--json").stdout)
    assert report["equal"] == ["f"] and report["values_differ"][0]["name"] == "i"
