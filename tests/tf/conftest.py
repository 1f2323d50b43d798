"""Every test under tests/tf runs against real TensorFlow: it is marked ``tf`` and gets the
``tf`` fixture (tests/conftest.py), which skips it without TensorFlow unless
``TFCKPT_REQUIRE_TF=1`` makes that an error."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.tf)


@pytest.fixture(autouse=True)
def _require_tf(tf):
    return tf
