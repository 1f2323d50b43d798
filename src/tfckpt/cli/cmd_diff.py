"""``tfckpt diff A B``: which tensors differ between two checkpoints, and how."""

from __future__ import annotations

import argparse

from tfckpt.cli.common import add_filter, add_json, add_progress, print_json
from tfckpt.cli.progress import ProgressBar, checkpoint_bytes, wanted
from tfckpt.inspection.compare import diff

HELP = "compare the tensors of two checkpoints (or .safetensors / .npz files)"
DESCRIPTION = """\
Compare two checkpoints (or .safetensors / .npz files): tensors only in A, only in B, with
another dtype or shape, with other values (how many elements, the largest absolute and
relative difference, relative to B), and how many are equal.  Values are equal as
numpy.isclose(a, b, rtol, atol, equal_nan=True) says (integers exactly when both
tolerances are 0).  Exit code 0 when equal, 1 when they differ.
"""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("diff", help=HELP, description=DESCRIPTION)
    parser.add_argument("a", help="checkpoint (prefix, directory), .safetensors or .npz")
    parser.add_argument("b", help="checkpoint (prefix, directory), .safetensors or .npz")
    parser.add_argument("--rtol", type=float, default=0.0, help="relative tolerance (0)")
    parser.add_argument("--atol", type=float, default=0.0, help="absolute tolerance (0)")
    parser.add_argument(
        "--names",
        choices=("keys", "paths"),
        default="keys",
        help="match tensors by checkpoint key or by object path (default: keys)",
    )
    parser.add_argument(
        "--exclude-optimizer", action="store_true", help="leave optimizer state out"
    )
    parser.add_argument(
        "--bookkeeping",
        action="store_true",
        help="also compare the object graph and save counter",
    )
    parser.add_argument(
        "--exclude", action="append", default=[], metavar="REGEX", help="leave these names out"
    )
    parser.add_argument(
        "--limit", type=int, default=None, metavar="N", help="at most N lines per section"
    )
    add_filter(parser)
    add_progress(parser)
    add_json(parser, "the report")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    enabled = wanted(args.no_progress)
    total = checkpoint_bytes(args.a) if enabled else None
    with ProgressBar(total, "diff", enabled=enabled) as bar:
        report = diff(
            args.a,
            args.b,
            rtol=args.rtol,
            atol=args.atol,
            names=args.names,
            optimizer=not args.exclude_optimizer,
            bookkeeping=args.bookkeeping,
            include=[args.filter] if args.filter else [],
            exclude=args.exclude,
            progress=bar,
        )
    if args.json:
        print_json(report.to_dict())
    else:
        print(report.format(limit=args.limit))
    return 0 if report.same else 1
