"""``tfckpt info``: format, version, byte order, files, tensors by dtype, object graph and
state file."""

from __future__ import annotations

import json

import numpy as np

import tfckpt
from tests.cli.run import tfckpt as run
from tests.conftest import CORPUS, FIXTURES

OBJECT_BASED = FIXTURES / "object_based" / "ckpt-1"
T5 = CORPUS / "google-research-t5x" / "t5x" / "testdata" / "mtf_tiny_t5" / "model.ckpt-0"


def test_object_based_checkpoint():
    """A TF2 checkpoint: V2 header, its two files with sizes, bytes by dtype, the object
    graph's variables and slots with the optimizers, and the state file naming it."""
    done = run("info", OBJECT_BASED)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "format:       V2 (TensorBundle), producer version 1, min consumer 0, " in out
    assert "little-endian, 1 data shard(s)" in out
    assert "ckpt-1.index  1.3 KiB" in out and "ckpt-1.data-00000-of-00001  2.5 KiB" in out
    assert "float32: 16 tensor(s), 196 B" in out
    assert "16 variables, 4 slot variables, 0 NumpyState values" in out
    assert "optimizers: optimizer, v1_optimizer" in out
    assert "latest: ckpt-1 (this one)" in out


def test_json_summary():
    """--json has the same facts, machine-readable."""
    info = json.loads(run("info", OBJECT_BASED, "--json").stdout)
    assert info["format"] == "v2" and info["endianness"] == "little"
    assert info["version"] == {"producer": 1, "min_consumer": 0}
    assert info["tensors"] == 22 and info["by_dtype"]["int64"] == {"tensors": 2, "bytes": 16}
    assert [f["role"] for f in info["files"]] == ["index", "data"]
    assert info["object_graph"]["slot_variables"] == 4
    assert info["state_file"]["latest"] == "ckpt-1"


def test_missing_shard_and_name_based():
    """A checkpoint whose second shard is absent lists it as MISSING; a TF1 checkpoint has
    no object graph; the state file lists kept checkpoints."""
    out = run("info", T5).stdout
    assert "model.ckpt-0.data-00001-of-00002  MISSING" in out
    assert "bfloat16: 52 tensor(s)" in out and "object graph: none" in out


def test_v1_and_big_endian(tmp_path):
    """V1 checkpoints say so with their table files; big-endian bundles say big-endian."""
    out = run("info", FIXTURES / "v1_sharded" / "model.ckpt-?????-of-00002").stdout
    assert "V1 (saved tensor slices), 2 table file(s)" in out
    with tfckpt.BundleWriter(tmp_path / "big", big_endian=True) as writer:
        writer.add("x", np.arange(3, dtype=np.int32))
    assert "big-endian" in run("info", tmp_path / "big").stdout


def test_state_file_timestamps(tmp_path):
    """Checkpoints kept by a CheckpointManager are listed with their times."""
    checkpoint = tfckpt.Checkpoint(weights={"w": np.zeros(2)})
    manager = tfckpt.CheckpointManager(checkpoint, tmp_path, max_to_keep=2)
    manager.save()
    latest = manager.save()
    out = run("info", latest).stdout
    assert "latest: ckpt-2 (this one)" in out
    assert "kept: ckpt-1  20" in out and " UTC" in out
