"""Wrong paths get told what to pass instead (exit code 1, one line)."""

from __future__ import annotations

import shutil

import pytest

from tests.cli.run import one_line_error, tfckpt
from tests.conftest import CORPUS, FIXTURES

OBJECT_BASED = FIXTURES / "object_based"


def test_index_file():
    """Passing prefix.index says to pass the prefix."""
    line = one_line_error(tfckpt("inspect", OBJECT_BASED / "ckpt-1.index"), 1)
    assert "index file" in line and f"pass its prefix '{OBJECT_BASED / 'ckpt-1'}'" in line


def test_data_file():
    """Passing a .data-* file says to pass the prefix (for every command that reads)."""
    for command in ("inspect", "verify", "tree", "info"):
        line = one_line_error(tfckpt(command, OBJECT_BASED / "ckpt-1.data-00000-of-00001"), 1)
        assert "data file" in line and f"'{OBJECT_BASED / 'ckpt-1'}'" in line


def test_state_file():
    """Passing the 'checkpoint' state file says to pass its directory."""
    line = one_line_error(tfckpt("inspect", OBJECT_BASED / "checkpoint"), 1)
    assert "state file" in line and f"pass its directory '{OBJECT_BASED}'" in line


def test_directory_without_state_file(tmp_path):
    """A directory without a state file lists the prefixes in it (or below it)."""
    shutil.copytree(OBJECT_BASED, tmp_path / "run")
    (tmp_path / "run" / "checkpoint").unlink()
    line = one_line_error(tfckpt("inspect", tmp_path / "run"), 1)
    assert f"pass a prefix: '{tmp_path / 'run' / 'ckpt-1'}'" in line
    line = one_line_error(tfckpt("inspect", tmp_path), 1)
    assert "ckpt-1" in line
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "without checkpoints" in one_line_error(tfckpt("inspect", empty), 1)


def test_prefix_close_to_existing_ones():
    """A prefix that does not exist but starts others suggests them."""
    line = one_line_error(tfckpt("inspect", OBJECT_BASED / "ckpt"), 1)
    assert f"did you mean '{OBJECT_BASED / 'ckpt-1'}'" in line


def test_safetensors_file_where_a_checkpoint_is_needed(tmp_path):
    """A .safetensors file given to inspect says it is not a checkpoint and what reads it;
    diff and convert take it as it is."""
    pytest.importorskip("safetensors")
    out = tmp_path / "x.safetensors"
    assert (
        tfckpt("convert", FIXTURES / "dtypes" / "ckpt", out, "--include", "^int8$").returncode == 0
    )
    line = one_line_error(tfckpt("inspect", out), 1)
    assert "safetensors file" in line and "tfckpt convert" in line
    assert tfckpt("diff", FIXTURES / "dtypes" / "ckpt", out, "--filter", "^int8$").returncode == 0


def test_keras_tuner_prefix_named_checkpoint_is_not_mistaken_for_the_state_file():
    """A prefix literally named 'checkpoint' next to the state file still reads."""
    prefix = next(CORPUS.glob("tensorflow-tfx@86bbd368b2/**/epoch_0/checkpoint.index"))
    done = tfckpt("inspect", prefix.with_suffix(""))
    assert done.returncode == 0 and "(v2, 30 tensors)" in done.stdout
