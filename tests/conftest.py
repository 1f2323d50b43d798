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
CORPUS = Path(os.environ.get("TFCKPT_CORPUS", REPO.parent / "shared" / "corpus"))


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
