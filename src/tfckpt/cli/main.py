"""The ``tfckpt`` command: parser, dispatch, and how errors become one line and an exit code.

Exit codes:

* 0: done (``verify``: no problem; ``diff``: equal);
* 1: the checkpoint (or file) is missing, unreadable or bad, ``verify`` found a problem,
  ``diff`` found a difference, an output format cannot hold a value, an optional package is
  missing, or the system failed (disk full, permission denied);
* 2: a usage error: bad options, an unknown tensor name, an output that exists without
  ``--force``, invalid patterns or renames.

Errors are printed as one line, ``tfckpt: error: ...``; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from tfckpt.cli import cmd_convert, cmd_diff, cmd_dump, cmd_info, cmd_inspect, cmd_tree, cmd_verify
from tfckpt.cli.common import UsageError, add_debug
from tfckpt.cli.hints import wrong_path_hint
from tfckpt.errors import CheckpointError, InvalidArgumentError

EXIT_OK = 0
EXIT_BAD = 1
EXIT_USAGE = 2

_COMMANDS = (cmd_inspect, cmd_tree, cmd_dump, cmd_verify, cmd_diff, cmd_convert, cmd_info)
_EPILOG = """\
exit codes: 0 ok; 1 a checkpoint is missing or bad (or verify found a problem, diff a
difference); 2 usage error.  Run 'tfckpt COMMAND --help' for a command's options.
"""
# Arguments that name inputs, in the order their hints are tried; (name, files accepted).
_INPUTS = (("path", False), ("a", True), ("b", True), ("src", True))


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``tfckpt`` and its subcommands."""
    from tfckpt import __version__

    parser = argparse.ArgumentParser(
        prog="tfckpt",
        description="Read, check, compare and convert TensorFlow checkpoints without TensorFlow.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tfckpt {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in _COMMANDS:
        command.register(commands)
    for subparser in {id(p): p for p in commands.choices.values()}.values():  # (aliases)
        add_debug(subparser)
        subparser.formatter_class = argparse.RawDescriptionHelpFormatter
        subparser.epilog = _EPILOG.splitlines()[0] + "\n" + _EPILOG.splitlines()[1]
    return parser


def _hint(args: argparse.Namespace) -> str | None:
    for attribute, files_too in _INPUTS:
        path = getattr(args, attribute, None)
        if isinstance(path, str):
            hint = wrong_path_hint(path, files_too=files_too)
            if hint is not None:
                return hint
    return None


def _fail(message: str, code: int, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    print(f"tfckpt: error: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``tfckpt`` and ``python -m tfckpt``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # Tensor names that are not UTF-8 (kept with surrogateescape) print as their bytes.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="surrogateescape")
            except (ValueError, OSError):  # a stream that cannot change (closed, replaced)
                pass
    debug = bool(getattr(args, "debug", False))
    try:
        hint = _hint(args)  # a wrong path (an index file, a directory, ...): what to pass
        if hint is not None:
            return _fail(hint, EXIT_BAD, debug=False)
        return int(args.run(args))
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE, debug)
    except InvalidArgumentError as exc:  # bad patterns, renames, existing outputs
        return _fail(str(exc), EXIT_USAGE, debug)
    except CheckpointError as exc:
        return _fail(str(exc), EXIT_BAD, debug)
    except BrokenPipeError:  # e.g. `tfckpt inspect big | head`
        _silence_stdout()
        return EXIT_OK
    except KeyboardInterrupt:
        return _fail("interrupted", 130, debug)
    except OSError as exc:
        where = f" {exc.filename!r}" if exc.filename else ""
        return _fail(f"{exc.strerror or exc}{where}", EXIT_BAD, debug)
    except Exception as exc:  # a bug: say so in one line, the traceback with --debug
        message = f"internal error: {type(exc).__name__}: {exc}"
        more = "" if debug else " (run with --debug for details)"
        return _fail(message + more, EXIT_BAD, debug)


def _silence_stdout() -> None:
    """After a closed pipe, Python's exit flush of stdout would fail again: point it at
    /dev/null (only ever in the command's own process)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout replaced (tests) or closed
        pass


if __name__ == "__main__":
    sys.exit(main())
