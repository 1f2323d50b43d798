"""``tfckpt verify PATH``: every checksum and the structure of a checkpoint."""

from __future__ import annotations

import argparse

from tfckpt.cli.common import add_json, add_progress, print_json
from tfckpt.cli.progress import ProgressBar, checkpoint_bytes, wanted
from tfckpt.inspection.verify import verify_checkpoint

HELP = "check every checksum and the structure of a checkpoint"
DESCRIPTION = """\
Check every table block checksum, every tensor checksum and the structure: entries agree
with the data files, partitioned tensors' slices cover them exactly once, the object graph
names keys that exist.  Prints one line per problem naming the file and tensor, then a
summary.  Exit code 0 when clean, 1 when anything is wrong.  Stops at the first problem
unless --all.
"""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("verify", help=HELP, description=DESCRIPTION)
    parser.add_argument("path", help="checkpoint prefix, directory, or SavedModel directory")
    parser.add_argument(
        "--all", action="store_true", help="go on after the first problem and report them all"
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="only the summary line")
    add_progress(parser)
    add_json(parser, "the report")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    enabled = wanted(args.no_progress)
    total = checkpoint_bytes(args.path) if enabled else None
    with ProgressBar(total, "verify", enabled=enabled) as bar:
        report = verify_checkpoint(args.path, keep_going=args.all, progress=bar)
    if args.json:
        print_json(report.to_dict())
        return 0 if report.ok else 1
    if not args.quiet:
        for problem in report.problems:
            print(f"BAD {problem.describe()}")
        for note in report.notes:
            print(f"note: {note}")
    print(report.summary())
    return 0 if report.ok else 1
