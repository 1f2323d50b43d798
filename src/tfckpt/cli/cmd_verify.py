"""``tfckpt verify PATH``: every checksum and the structure of a checkpoint (``--repair``:
put back the old checkpoint an interrupted overwrite set aside, then verify again)."""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from tfckpt.cli.common import add_json, add_progress, print_json
from tfckpt.cli.progress import ProgressBar, checkpoint_bytes, wanted
from tfckpt.inspection.verify import (
    VerifyReport,
    repair_interrupted_overwrite,
    verify_checkpoint,
)

HELP = "check every checksum and the structure of a checkpoint"
DESCRIPTION = """\
Check every table block checksum, every tensor checksum and the structure: entries agree
with the data files, partitioned tensors' slices cover them exactly once, the object graph
names keys that exist.  Prints one line per problem naming the file and tensor, then a
summary.  Exit code 0 when clean, 1 when anything is wrong.  Stops at the first problem
unless --all.

An overwrite killed between its renames (INTERRUPTED: the old checkpoint is set aside,
TensorFlow finds none) is repaired by --repair: the old checkpoint is put back under its
final names, as the next tfckpt save of the prefix would do, the killed save's files are
removed, and the checkpoint is verified again (the exit code is that verification's).
"""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("verify", help=HELP, description=DESCRIPTION)
    parser.add_argument("path", help="checkpoint prefix, directory, or SavedModel directory")
    parser.add_argument(
        "--all", action="store_true", help="go on after the first problem and report them all"
    )
    parser.add_argument(
        "--repair",
        action="store_true",
        help="if an overwrite was interrupted, put the old checkpoint back and verify again",
    )
    parser.add_argument(
        "--quiet", "-q", action="store_true", help="only the summary line (and what --repair did)"
    )
    add_progress(parser)
    add_json(parser, "the report")
    parser.set_defaults(run=run)


def _verify(args: argparse.Namespace) -> VerifyReport:
    enabled = wanted(args.no_progress)
    total = checkpoint_bytes(args.path) if enabled else None
    with ProgressBar(total, "verify", enabled=enabled) as bar:
        return verify_checkpoint(args.path, keep_going=args.all, progress=bar)


def run(args: argparse.Namespace) -> int:
    report = _verify(args)
    attempted = bool(args.repair and report.interrupted)
    repaired = False
    put_back: list[str] = []
    if attempted:
        put_back = list(report.set_aside)
        repaired = repair_interrupted_overwrite(args.path)
        if not args.json:
            if repaired:
                print(
                    f"REPAIRED: {report.prefix}: put the old checkpoint back under its final "
                    f"names ({len(put_back)} set-aside file(s)) and removed the files of the "
                    "interrupted overwrite; verifying again"
                )
            else:  # (another tfckpt writer undid it meanwhile)
                print(f"note: --repair: nothing left to put back at {report.prefix}")
        report = _verify(args)
    if args.json:
        out: dict[str, Any] = report.to_dict()
        out["repaired"] = repaired
        out["repaired_set_aside"] = put_back if repaired else []
        print_json(out)
        return 0 if report.ok else 1
    if not args.quiet:
        for problem in report.problems:
            print(f"BAD {problem.describe()}")
        for note in report.notes:
            print(f"note: {note}")
        if args.repair and not attempted:
            print("note: --repair: no interrupted overwrite here; nothing was changed")
    print(report.summary())
    if report.interrupted and not args.repair and not args.quiet:
        print(
            f"hint: `tfckpt verify --repair {shlex.quote(args.path)}` puts the old checkpoint "
            "back under its final names (as the next save of this prefix would) and removes "
            "the files of the interrupted overwrite"
        )
    return 0 if report.ok else 1
