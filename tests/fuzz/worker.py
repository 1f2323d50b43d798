"""A fuzz worker process: runs cases and reports each as a line of JSON on stdout.

Started by :mod:`tests.fuzz.supervisor` (``python -m tests.fuzz.worker ...``).  It limits
its own address space (RLIMIT_AS) so that an allocation a file cannot justify fails
instead of swapping the machine, traces memory in every n-th case, and reports ``start`` before
each case (so that a hang or a crash is attributed to it) and ``done`` after it.  Cases
are random (:func:`tests.fuzz.engine.make_case`) or, with ``--catalogue``, those of
:mod:`tests.fuzz.catalogue`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from tests.fuzz import catalogue
from tests.fuzz.engine import Case, Runner, make_case
from tests.fuzz.seeds import all_seeds


def _emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def _limit_address_space(limit_bytes: int) -> None:
    if limit_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))


def _max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _report_unmade(number: int, exc: Exception) -> None:
    _emit("start", case=number, family="unmade", description=f"case {number} (could not be made)")
    _emit(
        "done",
        case=number,
        categories={},
        failures=[f"fuzzer: {exc!r}"],
        seconds=0.0,
        peak=0,
        file_bytes=0,
        traced=False,
        rss=_max_rss_bytes(),
    )


def run(args: argparse.Namespace) -> None:
    seeds = all_seeds(args.max_seed_bytes)
    _limit_address_space(args.memory_limit)

    def make(number: int) -> Case:
        if args.catalogue:
            return catalogue.case(number, seeds)
        return make_case(args.run_seed, number, seeds)

    with tempfile.TemporaryDirectory(prefix="tfckpt-fuzz-") as scratch:
        runner = Runner(Path(scratch))
        _emit("ready", seeds=len(seeds), pid=os.getpid())
        number = args.first
        while args.count < 0 or number < args.first + args.count * args.step:
            try:
                case = make(number)
            except Exception as exc:  # a bug of the fuzzer itself: reported as the case's
                _report_unmade(number, exc)
                number += args.step
                continue
            _emit("start", case=number, family=case.family, description=case.describe())
            traced = args.trace_every > 0 and number % args.trace_every == 0
            result = runner.run(case, trace_memory=traced)
            _emit(
                "done",
                case=number,
                categories=Counter(v.category for _, v in result.verdicts),
                failures=result.failures,
                seconds=result.seconds,
                peak=result.peak_bytes,
                traced=result.traced,
                file_bytes=result.file_bytes,
                rss=_max_rss_bytes(),
            )
            number += args.step
    _emit("finished", rss=_max_rss_bytes())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run-seed", type=int, required=True)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--step", type=int, default=1)
    parser.add_argument("--count", type=int, default=-1, help="cases to run (-1: forever)")
    parser.add_argument("--max-seed-bytes", type=int, required=True)
    parser.add_argument("--memory-limit", type=int, default=0, help="RLIMIT_AS in bytes")
    parser.add_argument(
        "--trace-every", type=int, default=4, help="trace memory in every n-th case (0: never)"
    )
    parser.add_argument("--catalogue", action="store_true", help="catalogue cases, not random")
    return parser.parse_args(argv)


if __name__ == "__main__":
    run(parse_args())
