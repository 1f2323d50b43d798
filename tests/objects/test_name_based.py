"""Restoring name-based (TF1 Saver) checkpoints into objects, matching by variable name.

``Checkpoint.restore`` of a checkpoint without an object graph matches each array by its
attribute path joined with ``/`` (tfckpt/objects/name_based.py): the committed TF1
fixtures (V1, V2, sharded, partitioned) and the name-based checkpoints of the corpus
restore with TensorFlow's recorded values; NumpyState attributes are replaced and created;
children attached later are restored by name; mismatched names fail the assertions as
TensorFlow's do, listing the names; a mismatch or corrupt value assigns nothing.
"""

from __future__ import annotations

import gc
import logging
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

import tfckpt
from tests import manifest
from tests.conftest import CORPUS, FIXTURES
from tfckpt.errors import DataLossError, InvalidArgumentError
from tfckpt.objects.name_based import NameBasedSaverStatus
from tfckpt.objects.restore_entry import restore_objects

FIXTURE_MANIFEST = {e["path"]: e for e in manifest.load(FIXTURES / "MANIFEST.json")}
TF1_FIXTURES = [
    "v1_format/model.ckpt",
    "v1_sharded/model.ckpt-?????-of-00002",
    "sharded/ckpt",
    "partitioned/ckpt",
]


def np_dtype(name: str) -> np.dtype:
    """A TF dtype name's NumPy dtype (built without tfckpt)."""
    if name == "string":
        return np.dtype(object)
    try:
        return np.dtype(name)
    except TypeError:
        return np.dtype(getattr(ml_dtypes, name))


def tf_digest(info: dict) -> str | None:
    """TensorFlow's digest of a tensor: its reader's, else what RestoreV2 returned."""
    return info.get("sha256") or info.get("tf_restore_v2", {}).get("sha256")


def zeros_for(entry: dict) -> dict[str, np.ndarray]:
    """A zero array of each tensor's dtype and shape, by key, from the manifest alone."""
    out = {}
    for key, info in entry["tensors"].items():
        dtype = np_dtype(info["dtype"])
        shape = tuple(info["shape"])
        out[key] = np.full(shape, b"", object) if dtype.hasobject else np.zeros(shape, dtype)
    return out


def nested(flat: dict[str, np.ndarray]) -> dict:
    """``{"a/b": x}`` -> ``{"a": {"b": x}}``."""
    tree: dict = {}
    for key, value in flat.items():
        *parents, leaf = key.split("/")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def assert_tf_values(targets: dict[str, np.ndarray], entry: dict) -> int:
    compared = 0
    for key, info in entry["tensors"].items():
        digest = tf_digest(info)
        if digest is not None:
            assert manifest.value_digest(targets[key], info["dtype"]) == digest, key
            compared += 1
    return compared


@pytest.mark.parametrize("path", TF1_FIXTURES)
def test_tf1_fixture_restores_by_name_into_nested_dicts(path):
    """Every variable of a TF1 Saver fixture (V1, sharded V1, sharded V2, partitioned V2)
    lands in the array at its path (``model/dense/kernel`` -> ``model["dense"]["kernel"]``)
    with the value TensorFlow recorded; partitioned variables arrive assembled."""
    entry = FIXTURE_MANIFEST[path]
    targets = zeros_for(entry)
    checkpoint = tfckpt.Checkpoint(**nested(targets))
    status = checkpoint.restore(FIXTURES / path)
    assert isinstance(status, NameBasedSaverStatus)
    assert status.assert_consumed() is status
    status.assert_existing_objects_matched().assert_nontrivial_match()
    assert assert_tf_values(targets, entry) == len(entry["tensors"])
    assert checkpoint.save_counter == 0  # no such key: optional, left as it was


def _corpus_entries() -> list[dict]:
    entries = manifest.load(CORPUS / "MANIFEST.json")
    return [
        e
        for e in entries
        if "_CHECKPOINTABLE_OBJECT_GRAPH" not in e["tensors"]
        and e["tensors"]
        and all(tf_digest(info) for info in e["tensors"].values())
    ]


@pytest.mark.parametrize("entry", _corpus_entries(), ids=lambda e: e["path"])
def test_corpus_name_based_checkpoints_restore_by_name(entry):
    """Name-based checkpoints from the corpus (TF releases since 2016, V1 and V2) restore
    by name into a dict of arrays keyed by variable name, with TensorFlow's values."""
    targets = zeros_for(entry)
    with tfckpt.load_checkpoint(CORPUS / entry["path"]) as reader:
        status = restore_objects(reader, targets)
    status.assert_consumed()
    assert assert_tf_values(targets, entry) == len(entry["tensors"])


# -- names of arrays, lists, dicts, NumpyState ---------------------------------------------


def test_attribute_paths_name_the_arrays(tmp_path):
    """``Checkpoint(w=...)`` matches ``w``, a dict ``model/dense/kernel``, a list item
    ``layers/0``, a dict key with ``/`` spells two levels; unused keys are ignored."""
    values = {
        "w": np.arange(3.0),
        "model/dense/kernel": np.ones((2, 2), np.float32),
        "layers/0": np.int64(7),
        "other/a/b": np.array([True, False]),
        "unused": np.zeros(4),
    }
    prefix = tfckpt.save_tensors(tmp_path / "tf1", values)
    kernel = np.zeros((2, 2), np.float32)
    checkpoint = tfckpt.Checkpoint(
        w=np.zeros(3),
        model={"dense": {"kernel": kernel}},
        layers=[np.zeros((), np.int64)],
        other={"a/b": np.zeros(2, bool)},
    )
    status = checkpoint.restore(prefix)
    status.assert_consumed()
    assert checkpoint.w.tolist() == [0.0, 1.0, 2.0]
    assert kernel.tolist() == [[1.0, 1.0], [1.0, 1.0]]
    assert int(checkpoint.layers[0]) == 7
    assert checkpoint.other["a/b"].tolist() == [True, False]


def test_numpy_state_attributes_are_replaced_and_created(tmp_path):
    """A NumpyState at ``model``: attribute ``kernel`` is replaced by ``model/kernel``
    (its dtype and shape), ``bias`` is created from ``model/bias``; a string tensor is not
    made an attribute, nor are deeper keys."""
    values = {
        "model/kernel": np.arange(6, dtype=np.float32).reshape(2, 3),
        "model/bias": np.int32(5),
        "model/names": np.array([b"a", b"b"], object),
        "model/deeper/x": np.ones(2),
    }
    prefix = tfckpt.save_tensors(tmp_path / "tf1", values)
    state = tfckpt.NumpyState()
    state.kernel = np.zeros(1)
    checkpoint = tfckpt.Checkpoint(model=state)
    checkpoint.restore(prefix).assert_consumed()
    assert state.kernel.dtype == np.float32 and state.kernel.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert state.kernel.flags.writeable and state.kernel.flags.owndata
    assert state.bias.dtype == np.int32 and state.bias.shape == () and int(state.bias) == 5
    assert not hasattr(state, "names") and not hasattr(state, "deeper")


def test_a_string_for_an_existing_numpy_state_attribute_is_refused(tmp_path):
    prefix = tfckpt.save_tensors(tmp_path / "tf1", {"s/x": np.array([b"a"], object)})
    state = tfckpt.NumpyState()
    state.x = np.zeros(1)
    with pytest.raises(InvalidArgumentError, match="nothing was restored") as info:
        tfckpt.Checkpoint(s=state).restore(prefix)
    assert info.value.tensor == "s/x"
    assert state.x.tolist() == [0.0]


def test_a_shared_array_is_named_by_its_first_path(tmp_path):
    """An array reachable as ``a`` and ``z/a`` is matched by ``a`` (breadth-first)."""
    prefix = tfckpt.save_tensors(tmp_path / "tf1", {"a": np.ones(2), "z/a": np.full(2, 9.0)})
    shared = np.zeros(2)
    tfckpt.Checkpoint(a=shared, z={"a": shared}).restore(prefix).assert_consumed()
    assert shared.tolist() == [1.0, 1.0]


# -- assertions --------------------------------------------------------------------------


def test_unmatched_names_fail_every_assertion_listing_them(tmp_path):
    """Objects whose names the checkpoint lacks: all three assertions raise TensorFlow's
    ``Some objects had attributes which were not restored`` with the names; the values
    that did match are restored."""
    prefix = tfckpt.save_tensors(tmp_path / "tf1", {"w": np.ones(2)})
    checkpoint = tfckpt.Checkpoint(w=np.zeros(2), model={"extra": np.zeros(3)})
    status = checkpoint.restore(prefix)
    assert checkpoint.w.tolist() == [1.0, 1.0]
    for assertion in (
        status.assert_consumed,
        status.assert_existing_objects_matched,
        status.assert_nontrivial_match,
    ):
        with pytest.raises(AssertionError, match="Some objects had attributes") as info:
            assertion()
        assert "['model/extra']" in str(info.value)
        assert "model/extra (array(shape=[3], dtype=float64))" in str(info.value)
    assert status.expect_partial() is status


def test_an_object_attached_after_the_restore_fails_the_assertions(tmp_path):
    """An array added to a dict after the restore: its name held by the checkpoint gives
    ``Object not restored``; a name it lacks is listed as unmatched (as TF, which restores
    later dependencies by name)."""
    prefix = tfckpt.save_tensors(tmp_path / "tf1", {"d/a": np.ones(2), "d/b": np.ones(1)})
    checkpoint = tfckpt.Checkpoint(d={"a": np.zeros(2)})
    status = checkpoint.restore(prefix)
    status.assert_consumed()
    checkpoint.d["b"] = np.zeros(1)
    with pytest.raises(AssertionError, match="Object not restored: d/b"):
        status.assert_consumed()
    del checkpoint.d["b"]
    checkpoint.d["c"] = np.zeros(1)
    with pytest.raises(AssertionError, match=r"(?s)Some objects.*\['d/c'\]"):
        status.assert_consumed()


def test_save_counter_is_restored_when_present_and_optional_otherwise(tmp_path):
    with_counter = tfckpt.save_tensors(
        tmp_path / "a", {"w": np.ones(1), "save_counter": np.int64(4)}
    )
    checkpoint = tfckpt.Checkpoint(w=np.zeros(1))
    checkpoint.restore(with_counter).assert_consumed()
    assert checkpoint.save_counter == 4
    without = tfckpt.save_tensors(tmp_path / "b", {"w": np.ones(1)})
    checkpoint = tfckpt.Checkpoint(w=np.zeros(1))
    assert checkpoint.save_counter == 0  # exists before the restore: still optional
    checkpoint.restore(without).assert_consumed()


# -- deferred restoration ----------------------------------------------------------------


def test_children_attached_later_are_restored_by_name(tmp_path):
    """Keys under a child the Checkpoint does not have yet are restored when it is
    attached, by the same names; then the assertions pass."""
    values = {"w": np.ones(2), "model/dense/kernel": np.full((2, 2), 3.0)}
    prefix = tfckpt.save_tensors(tmp_path / "tf1", values)
    checkpoint = tfckpt.Checkpoint(w=np.zeros(2))
    status = checkpoint.restore(prefix)
    status.assert_consumed()
    kernel = np.zeros((2, 2))
    checkpoint.model = {"dense": {"kernel": kernel}}
    assert kernel.tolist() == [[3.0, 3.0], [3.0, 3.0]]
    status.assert_consumed()
    late = tfckpt.Checkpoint()
    late.restore(prefix)
    late.w = np.zeros(2)  # a deferred array at the root
    assert late.w.tolist() == [1.0, 1.0]


def test_a_mismatch_in_a_deferred_child_raises_on_attach(tmp_path):
    prefix = tfckpt.save_tensors(tmp_path / "tf1", {"m/a": np.ones(2), "m/b": np.ones(2)})
    checkpoint = tfckpt.Checkpoint()
    checkpoint.restore(prefix)
    a = np.zeros(2)
    with pytest.raises(InvalidArgumentError, match="nothing was restored"):
        checkpoint.m = {"a": a, "b": np.zeros(3)}
    assert not a.any()


# -- atomic restores ---------------------------------------------------------------------


@pytest.mark.parametrize("b", [np.zeros(99), np.zeros(100, np.float32)], ids=["shape", "dtype"])
def test_a_mismatch_assigns_nothing(tmp_path, b):
    """A shape or dtype mismatch of ``b``: InvalidArgumentError naming its key, and ``a``
    (matched before it), the NumpyState and the counter untouched."""
    values = {"a": np.ones(3), "b": np.ones(100), "s/x": np.ones(2), "save_counter": np.int64(3)}
    prefix = tfckpt.save_tensors(tmp_path / "tf1", values)
    state = tfckpt.NumpyState()
    state.x = np.zeros(1)
    checkpoint = tfckpt.Checkpoint(a=np.zeros(3), b=b, s=state)
    with pytest.raises(InvalidArgumentError, match="nothing was restored") as info:
        checkpoint.restore(prefix)
    assert info.value.tensor == "b"
    assert not checkpoint.a.any() and not b.any() and state.x.tolist() == [0.0]
    assert checkpoint.save_counter == 0


def test_a_corrupt_value_assigns_nothing(tmp_path):
    mark = np.full(50, 12345.678)
    prefix = tfckpt.save_tensors(tmp_path / "tf1", {"a": np.ones(3), "b": mark})
    data = Path(prefix + ".data-00000-of-00001")
    raw = bytearray(data.read_bytes())
    raw[raw.index(mark.tobytes()) + 5] ^= 0xFF
    data.write_bytes(bytes(raw))
    checkpoint = tfckpt.Checkpoint(a=np.zeros(3), b=np.zeros(50))
    with pytest.raises(DataLossError, match="nothing was restored"):
        checkpoint.restore(prefix)
    assert not checkpoint.a.any() and not checkpoint.b.any()
    checkpoint.later = np.zeros(1)  # no deferral left behind by the failed restore


def test_read_only_target_assigns_nothing(tmp_path):
    prefix = tfckpt.save_tensors(tmp_path / "tf1", {"a": np.ones(3), "b": np.ones(2)})
    b = np.zeros(2)
    b.flags.writeable = False
    checkpoint = tfckpt.Checkpoint(a=np.zeros(3), b=b)
    with pytest.raises(InvalidArgumentError, match="read-only"):
        checkpoint.read(prefix)
    assert not checkpoint.a.any()


# -- warnings ------------------------------------------------------------------------------


def test_a_name_based_restore_warns_once_and_reports_nothing_on_deletion(tmp_path, caplog):
    """Like TensorFlow's deprecation warning: one warning on the ``tfckpt`` logger saying
    that names are matched; no report of unrestored values when the status goes, with or
    without expect_partial (TF's name-based status has none)."""
    prefix = tfckpt.save_tensors(tmp_path / "tf1", {"w": np.ones(1), "x": np.ones(1)})
    with caplog.at_level(logging.WARNING, logger="tfckpt"):
        status = tfckpt.Checkpoint(w=np.zeros(1), extra=np.zeros(1)).restore(prefix)
        del status
        gc.collect()
    messages = [r.getMessage() for r in caplog.records if r.name == "tfckpt"]
    assert len(messages) == 1
    assert "name-based tf.compat.v1.train.Saver checkpoint" in messages[0]
    assert str(prefix) in messages[0]
