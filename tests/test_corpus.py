"""Every checkpoint of ../shared/corpus (written by TensorFlow releases over the years)
reads exactly as TensorFlow 2.21 read it (MANIFEST.json)."""

from __future__ import annotations

import os

import pytest

import tfckpt
from tests import manifest
from tests.conftest import CORPUS

if not (CORPUS / "MANIFEST.json").is_file():  # pragma: no cover - CI always has the corpus
    pytest.fail(f"the shared corpus is missing at {CORPUS}", pytrace=False)

ENTRIES = manifest.load(CORPUS / "MANIFEST.json")


def _param(entry):
    return pytest.param(entry, id=entry["path"])


@pytest.mark.parametrize("entry", [_param(e) for e in ENTRIES])
def test_corpus_checkpoint_reads_as_tensorflow_read_it(entry):
    prefix = os.path.join(CORPUS, entry["path"])
    with tfckpt.load_checkpoint(prefix) as reader:
        assert reader.prefix == prefix
        manifest.check_checkpoint(reader, entry)


def test_corpus_covers_what_it_should():
    formats = {e["format"] for e in ENTRIES}
    assert formats == {"v1", "v2"}
    assert sum(len(e["tensors"]) for e in ENTRIES) > 1500


@pytest.mark.parametrize(
    "entry", [e for e in ENTRIES if "state_file" in e], ids=lambda e: e["path"]
)
def test_corpus_state_files(entry):
    state = entry["state_file"]
    directory = CORPUS / os.path.dirname(state["path"])
    parsed = tfckpt.checkpoint_state.read_state(directory)
    assert parsed is not None

    def resolve(p):
        return p if os.path.isabs(p) else os.path.join(directory, p)

    assert parsed.model_checkpoint_path == resolve(state["model_checkpoint_path"])
    assert parsed.all_model_checkpoint_paths == [
        resolve(p) for p in state["all_model_checkpoint_paths"]
    ]
    latest = tfckpt.latest_checkpoint(directory)
    expected = resolve(state["model_checkpoint_path"])
    exists = os.path.exists(expected + ".index") or os.path.isfile(expected)
    assert latest == (expected if exists else None)
