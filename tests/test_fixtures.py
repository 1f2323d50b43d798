"""Every fixture in fixtures/ (written by real TensorFlow with tools/make_fixtures.py)
reads exactly as TensorFlow read it (fixtures/MANIFEST.json).  Runs without TensorFlow."""

from __future__ import annotations

import os

import pytest

import tfckpt
from tests import manifest
from tests.conftest import FIXTURES

_MANIFEST = FIXTURES / "MANIFEST.json"
ENTRIES = manifest.load(_MANIFEST) if _MANIFEST.is_file() else []


def _param(entry):
    return pytest.param(entry, id=entry["path"])


def test_fixture_manifest_is_not_empty():
    assert len(ENTRIES) >= 8


@pytest.mark.parametrize("entry", [_param(e) for e in ENTRIES])
def test_fixture_reads_as_tensorflow_read_it(entry):
    prefix = os.path.join(FIXTURES, entry["path"])
    with tfckpt.load_checkpoint(prefix) as reader:
        compared = manifest.check_checkpoint(reader, entry)
    assert compared or not entry["tensors"]


@pytest.mark.parametrize("entry", [_param(e) for e in ENTRIES])
def test_fixture_zero_copy_matches(entry):
    prefix = os.path.join(FIXTURES, entry["path"])
    with tfckpt.load_checkpoint(prefix) as reader:
        dtypes = reader.get_variable_to_dtype_map()
        for name, info in entry["tensors"].items():
            if "sha256" not in info or dtypes[name].name == "string":
                continue
            view = reader.get_tensor(name, copy=False)
            assert manifest.value_digest(view, info["dtype"]) == info["sha256"]
            sliced = entry["container"].get("sliced_tensors", [])
            if entry["format"] == "v2" and info["shape"] and name not in sliced:
                assert not view.flags.writeable, name
