"""tfckpt.inspection.extras: a missing optional package names the extra of tfckpt that
installs it (as pyproject.toml spells the extra), here for h5py, which Keras .weights.h5
output needs; simulated missing by a None entry in sys.modules, as
tests/convert/test_staging_and_extras.py does for safetensors."""

from __future__ import annotations

import sys

import pytest

from tests.conftest import FIXTURES, REPO
from tfckpt import cli
from tfckpt.inspection.extras import _EXTRAS, MissingExtraError, install_hint, require

KERAS = FIXTURES / "objects" / "keras_checkpoint" / "ckpt-1"  # a Keras 3 model's checkpoint


def test_every_extra_named_exists_in_pyproject_and_installs_the_package():
    """Each extra _EXTRAS names is an optional-dependency of pyproject.toml that lists the
    module's distribution (so the printed pip command installs what is missing)."""
    tomllib = pytest.importorskip("tomllib")  # (Python 3.11+)
    with open(REPO / "pyproject.toml", "rb") as f:
        extras = tomllib.load(f)["project"]["optional-dependencies"]
    assert _EXTRAS["h5py"][0] == "h5"
    for module, (extra, _) in _EXTRAS.items():
        if extra is None:
            continue
        assert extra in extras, (module, extra)
        distribution = module.split(".")[0]
        assert any(r.startswith(distribution) for r in extras[extra]), (module, extras[extra])


def test_missing_h5py_names_the_h5_extra(monkeypatch):
    """require("h5py") without h5py: MissingExtraError saying what needs it and
    pip install "tfckpt[h5]"."""
    monkeypatch.setitem(sys.modules, "h5py", None)  # makes `import h5py` raise ImportError
    assert install_hint("h5py") == 'pip install "tfckpt[h5]"'
    with pytest.raises(MissingExtraError, match=r'pip install "tfckpt\[h5\]"') as caught:
        require("h5py")
    assert "h5py is not installed" in str(caught.value)
    assert ".weights.h5" in str(caught.value)
    assert isinstance(caught.value, ImportError)


def test_convert_to_weights_h5_without_h5py_names_the_extra(monkeypatch, tmp_path, capsys):
    """`tfckpt convert CKPT model.weights.h5` without h5py: exit 1, one error line with
    the same words as require("h5py") (the extra to install), nothing written."""
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(MissingExtraError) as expected:
        require("h5py")
    code = cli.main(["convert", str(KERAS), str(tmp_path / "model.weights.h5")])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert err.splitlines() == [f"tfckpt: error: {expected.value}"], err
    assert 'pip install "tfckpt[h5]"' in err
    assert list(tmp_path.iterdir()) == []
