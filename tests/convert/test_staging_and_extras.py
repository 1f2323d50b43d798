"""Safe outputs (tfckpt.convert.staging) and optional packages (tfckpt.inspection.extras)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import tfckpt
from tests.conftest import FIXTURES, REPO
from tfckpt.convert import convert
from tfckpt.convert.staging import OutputExistsError, check_output, staged_file
from tfckpt.errors import InvalidArgumentError
from tfckpt.inspection.extras import MissingExtraError, require


def test_staged_file_renames_on_success_and_cleans_up_on_failure(tmp_path):
    """The final name appears only when the block succeeds; a failure leaves nothing."""
    final = tmp_path / "out.bin"
    with staged_file(str(final)) as temporary:
        with open(temporary, "wb") as f:
            f.write(b"data")
        assert not final.exists()
    assert final.read_bytes() == b"data"
    with pytest.raises(RuntimeError), staged_file(str(tmp_path / "failed.bin")) as temporary:
        with open(temporary, "wb") as f:
            f.write(b"half")
        raise RuntimeError
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_check_output(tmp_path):
    """Existing files and checkpoints are refused without force; directories always."""
    prefix = tfckpt.save_tensors(tmp_path / "ckpt", {"x": np.zeros(1)})
    with pytest.raises(OutputExistsError):
        check_output(prefix, checkpoint=True, force=False)
    check_output(prefix, checkpoint=True, force=True)
    with pytest.raises(InvalidArgumentError, match="directory"):
        check_output(str(tmp_path), checkpoint=True, force=True)
    assert isinstance(OutputExistsError("x"), FileExistsError)


def test_missing_extra_names_the_pip_command(monkeypatch, tmp_path):
    """Without safetensors, converting to .safetensors fails with MissingExtraError saying
    pip install "tfckpt[safetensors]"; nothing is written."""
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(MissingExtraError, match=r'pip install "tfckpt\[safetensors\]"'):
        require("safetensors.numpy")
    out = tmp_path / "x.safetensors"
    with pytest.raises(MissingExtraError):
        convert(FIXTURES / "dtypes" / "ckpt", out, include=["^int8$"])
    assert list(tmp_path.iterdir()) == []


def test_import_tfckpt_imports_no_optional_package():
    """`import tfckpt` (and opening tfckpt.safe_open) import none of the extras."""
    script = (
        "import sys, tfckpt\n"
        f"f = tfckpt.safe_open({str(FIXTURES / 'dtypes' / 'ckpt')!r}); f.get_tensor('int8')\n"
        "import tfckpt.cli, tfckpt.convert, tfckpt.testing, tfckpt.inspection.verify\n"
        "bad = [m for m in ('safetensors', 'tqdm', 'torch', 'jax', 'h5py', 'tensorflow')"
        " if sys.modules.get(m) is not None]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
