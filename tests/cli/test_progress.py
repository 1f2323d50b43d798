"""Progress bars: drawn with tqdm on a terminal, never when stderr is not one or tqdm is
missing."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import threading

import pytest

from tests.cli.run import _env, tfckpt
from tests.conftest import FIXTURES, REPO
from tfckpt.cli import progress

MANY = FIXTURES / "many_keys" / "ckpt"


def _drain(fd: int, into: list[bytes]) -> None:
    """Reads a pty's output until it closes (a pty must be read while its writer runs)."""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the other side closed
            return
        if not chunk:
            return
        into.append(chunk)


def test_silent_when_stderr_is_not_a_terminal():
    """Piped stderr (scripts, CI): verify prints no bar, stderr stays empty."""
    done = tfckpt("verify", MANY)
    assert done.returncode == 0 and done.stderr == ""


def test_bar_on_a_terminal():
    """With stderr a terminal and tqdm installed, verify draws a byte-count bar there."""
    pytest.importorskip("tqdm")
    leader, follower = pty.openpty()
    # A new pty is 0 columns wide, where tqdm draws an empty bar: make it 80 x 24.
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    reader = threading.Thread(target=_drain, args=(leader, drawn := []))
    reader.start()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tfckpt", "verify", str(MANY)],
            cwd=REPO,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=follower,
            timeout=120,
        )
    finally:
        os.close(follower)
        reader.join(10)
        os.close(leader)
    assert done.returncode == 0
    text = b"".join(drawn)
    assert b"verify" in text and b"B/s" in text  # tqdm's bar, in bytes
    assert done.stdout.decode().startswith("OK: ")


def test_no_bar_without_tqdm(monkeypatch):
    """Without tqdm no bar is wanted even on a terminal (and nothing fails)."""
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now raises ImportError
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert not progress.wanted()
    with progress.ProgressBar(10, "x", enabled=progress.wanted()) as bar:
        bar(5)


def test_no_progress_flag(monkeypatch):
    """--no-progress turns the bar off."""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert not progress.wanted(disabled=True)
