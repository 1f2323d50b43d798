"""Shared test configuration.

Tests that need TensorFlow live in tests/tf/ and use the ``tf`` fixture.  Without
TensorFlow they are skipped, unless ``TFCKPT_REQUIRE_TF=1`` (set by CI in its TensorFlow
environment), where a missing TensorFlow is an error rather than a silent skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"
# Real checkpoints written by TensorFlow releases since 2016, with their origin and licence
# (corpus/SOURCES.tsv) and TensorFlow's own reading of each (corpus/MANIFEST.json).
CORPUS = FIXTURES / "corpus"


def fixture_files(root: Path, pattern: str) -> list[Path]:
    """``root.rglob(pattern)``, sorted, without the corpus when ``root`` is FIXTURES."""
    return sorted(p for p in root.rglob(pattern) if root == CORPUS or CORPUS not in p.parents)


def _import_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import tensorflow as tf
    except ImportError:
        if os.environ.get("TFCKPT_REQUIRE_TF") == "1":
            raise
        pytest.skip("TensorFlow is not installed (TFCKPT_REQUIRE_TF=1 makes this an error)")
    return tf


@pytest.fixture(scope="session")
def tf():
    """The tensorflow module (skips the test when TensorFlow is absent)."""
    return _import_tensorflow()
