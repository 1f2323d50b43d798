"""The ``tfckpt`` command as a whole: both entry points, help, exit codes, error lines."""

from __future__ import annotations

import pytest

from tests.cli.run import one_line_error, tfckpt
from tests.conftest import FIXTURES

COMMANDS = ["inspect", "ls", "tree", "dump", "verify", "diff", "convert", "info"]
OBJECT_BASED = FIXTURES / "object_based" / "ckpt-1"


def test_console_script_and_python_dash_m_agree():
    """The installed `tfckpt` script and `python -m tfckpt` are the same command."""
    by_script = tfckpt("inspect", OBJECT_BASED, script=True)
    by_module = tfckpt("inspect", OBJECT_BASED)
    assert by_script.returncode == by_module.returncode == 0, by_script.stderr
    assert by_script.stdout == by_module.stdout
    assert by_module.stdout.startswith(f"# {OBJECT_BASED} (v2, 22 tensors)\n")


def test_top_level_help_lists_every_command_and_the_exit_codes():
    """`tfckpt --help` names every subcommand and documents the exit codes."""
    done = tfckpt("--help")
    assert done.returncode == 0
    for command in COMMANDS:
        assert command in done.stdout
    assert "exit codes: 0 ok; 1" in done.stdout and "2 usage error" in done.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    """`tfckpt CMD --help` works for every subcommand and shows its usage and exit codes."""
    done = tfckpt(command, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: tfckpt ")
    assert "exit codes:" in done.stdout


def test_version():
    """`tfckpt --version` prints the package version."""
    import tfckpt as package

    done = tfckpt("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"tfckpt {package.__version__}"


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["frobnicate"],
        ["inspect", OBJECT_BASED, "--no-such-option"],
        ["diff", OBJECT_BASED],
        ["diff", OBJECT_BASED, OBJECT_BASED, "--rtol", "much"],
        ["convert", OBJECT_BASED, "x.safetensors", "--names", "nicknames"],
    ],
)
def test_argument_errors_exit_2(args):
    """Wrong arguments are usage errors: exit code 2 and argparse's message."""
    done = tfckpt(*args)
    assert done.returncode == 2, done
    assert "usage: tfckpt" in done.stderr and "Traceback" not in done.stderr


def test_missing_path_is_one_line_exit_1(tmp_path):
    """A path where nothing exists fails with one line naming it and exit code 1."""
    missing = tmp_path / "no" / "model.ckpt"
    for command in ("inspect", "tree", "verify", "info"):
        line = one_line_error(tfckpt(command, missing), 1)
        assert str(missing) in line


def test_not_a_checkpoint_is_one_line_exit_1(tmp_path):
    """A file that is not a checkpoint fails with one line and exit code 1."""
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00" * 100)
    line = one_line_error(tfckpt("inspect", junk), 1)
    assert str(junk) in line


def test_debug_shows_the_traceback(tmp_path):
    """--debug (before or after the command) adds the traceback to the error line."""
    missing = tmp_path / "missing"
    for args in (["--debug", "inspect", missing], ["inspect", missing, "--debug"]):
        done = tfckpt(*args)
        assert done.returncode == 1
        assert "Traceback" in done.stderr
        assert done.stderr.strip().splitlines()[-1].startswith("tfckpt: error: ")


def test_invalid_filter_is_a_usage_error():
    """An invalid regular expression is named and is exit code 2."""
    line = one_line_error(tfckpt("inspect", OBJECT_BASED, "--filter", "(unclosed"), 2)
    assert "(unclosed" in line


def test_closed_pipe_is_not_an_error():
    """`tfckpt inspect big | head -1` ends quietly: exit code 0, no traceback."""
    import subprocess
    import sys

    from tests.cli.run import _env

    script = (
        f"{sys.executable} -m tfckpt inspect {FIXTURES / 'many_keys' / 'ckpt'} --values | head -1"
    )
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", script],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and done.stdout.startswith("# ")
