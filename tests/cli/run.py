"""Running the ``tfckpt`` command as a user does: ``python -m tfckpt`` and the installed
console script, in a fresh process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

# The console script that `pip install` put next to this interpreter.
SCRIPT = Path(sys.executable).with_name("tfckpt")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "src")  # this working tree, installed or not
    env.pop("COLUMNS", None)
    return env


def tfckpt(*args: str | os.PathLike[str], script: bool = False, cwd: Path | None = None):
    """Runs ``tfckpt ARGS`` (``python -m tfckpt``, or the console script with ``script``);
    returns the CompletedProcess with text stdout and stderr."""
    if script:
        if not SCRIPT.is_file():
            pytest.skip(f"no console script at {SCRIPT} (tfckpt is not installed here)")
        command = [str(SCRIPT)]
    else:
        command = [sys.executable, "-m", "tfckpt"]
    return subprocess.run(
        [*command, *map(str, args)],
        cwd=cwd or REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_line_error(done: subprocess.CompletedProcess[str], code: int) -> str:
    """Asserts the command failed with ``code``, printing one line ``tfckpt: error: ...``
    and no traceback; returns that line."""
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("tfckpt: error: "), done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def copy_checkpoint(prefix: Path, into: Path) -> Path:
    """Copies the files of the checkpoint at ``prefix`` into directory ``into``; returns the
    new prefix."""
    into.mkdir(parents=True, exist_ok=True)
    for file in prefix.parent.glob(prefix.name + ".*"):
        shutil.copy(file, into / file.name)
    return into / prefix.name


def flip_byte(path: Path, offset: int) -> None:
    """Corrupts ``path`` by flipping the lowest bit of the byte at ``offset``."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 1
    path.write_bytes(bytes(data))
