"""Long fuzz runs of tfckpt's read paths (the CI budget is in tests/fuzz/).

Every case mutates a fixture, corpus or synthetic checkpoint (bytes, structure or special
files, see tests/fuzz/) and reads it every way; any outcome other than the right values or
a tfckpt.CheckpointError, a hang, a crash, a slow case or a traced memory peak the files
cannot justify is a failure.  Cases run in worker subprocesses under RLIMIT_AS.

    .venv-tf/bin/python tools/fuzz.py --minutes 30            # a long run, 2 workers
    .venv-tf/bin/python tools/fuzz.py --cases 5000 --run-seed 7
    .venv-tf/bin/python tools/fuzz.py --run-seed 7 --replay 1234 [--save /tmp/case]

A run prints the number of cases, the count of each read's outcome (correct, unchecked,
each CheckpointError class, other, wrong), the failures with their case numbers, the peak
RSS of the workers, the peak traced memory and the slowest case; it exits with 1 when any
case failed.  ``--replay`` runs one case in this process and prints every read's outcome.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.fuzz import catalogue, supervisor  # noqa: E402
from tests.fuzz.engine import Runner, make_case  # noqa: E402
from tests.fuzz.seeds import all_seeds  # noqa: E402


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def print_report(report: supervisor.Report) -> None:
    reads = sum(report.reads.values())
    print(f"\ncases: {report.cases} in {report.seconds:.0f} s; reads: {reads}")
    for category, count in report.reads.most_common():
        print(f"  {category:<28} {count}")
    for family, count in report.families.most_common():
        seconds = report.family_seconds[family]
        print(f"  {family} cases: {count}, {seconds:.0f} s in all, {seconds / count:.3f} s each")
    print(f"failing cases: {len(report.failures)}")
    grouped: dict[str, list[int]] = defaultdict(list)
    for failure in report.failures:
        for problem in failure.problems:
            grouped[problem[:160]].append(failure.case)
    for problem, cases in sorted(grouped.items(), key=lambda kv: -len(kv[1]))[:40]:
        print(f"  {len(cases):>5} x (e.g. case {cases[0]}): {problem}")
    print(f"peak RSS of a worker: {_mib(report.max_rss)}")
    print(f"peak traced memory of a case: {_mib(report.peak[0])} ({report.peak[1]})")
    print(f"slowest case: {report.slowest[0]:.2f} s ({report.slowest[1]})")


def replay(
    run_seed: int, number: int, max_seed_bytes: int, save: Path | None, from_catalogue: bool
) -> int:
    seeds = all_seeds(max_seed_bytes)
    if from_catalogue:
        case = catalogue.case(number, seeds)
    else:
        case = make_case(run_seed, number, seeds)
    print(case.describe())
    with tempfile.TemporaryDirectory(prefix="tfckpt-fuzz-replay-") as scratch:
        runner = Runner(Path(scratch))
        result = runner.run(case, trace_memory=True)
        if save is not None:
            shutil.copytree(Path(scratch) / "case", save, symlinks=True, dirs_exist_ok=True)
            print(f"case files saved in {save}")
    for label, verdict in result.verdicts:
        print(
            f"  {verdict.category:<24} {label}"
            + (f"\n      {verdict.failure}" if verdict.failure else "")
        )
    print(f"{result.seconds:.3f} s, traced peak {_mib(result.peak_bytes)}")
    return 1 if result.failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, help="run for this long (default 5)")
    budget.add_argument("--cases", type=int, help="run this many cases")
    parser.add_argument("--run-seed", type=int, default=int(time.time()) % 100000)
    parser.add_argument("--first", type=int, default=0, help="first case number")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--case-timeout", type=float, default=120.0)
    parser.add_argument("--slow", type=float, default=10.0, help="seconds that make a case slow")
    parser.add_argument("--memory-limit-gib", type=float, default=4.0, help="RLIMIT_AS per worker")
    parser.add_argument(
        "--trace-every",
        type=int,
        default=4,
        help="trace memory in every n-th case (0: never; it slows cases)",
    )
    parser.add_argument("--max-seed-kib", type=int, default=256, help="largest seed used")
    parser.add_argument(
        "--catalogue",
        action="store_true",
        help="run (or replay from) the CI catalogue of hostile cases",
    )
    parser.add_argument("--replay", type=int, help="run this one case here and print its reads")
    parser.add_argument("--save", type=Path, help="with --replay: copy the case files here")
    parser.add_argument("--json", type=Path, help="also write the report as JSON")
    args = parser.parse_args(argv)
    max_seed_bytes = args.max_seed_kib << 10
    if args.replay is not None:
        return replay(args.run_seed, args.replay, max_seed_bytes, args.save, args.catalogue)
    if args.catalogue:
        args.cases = catalogue.size(all_seeds(max_seed_bytes))
    settings = supervisor.Settings(
        run_seed=args.run_seed,
        cases=args.cases,
        seconds=None if args.cases is not None else 60 * (args.minutes or 5),
        first=args.first,
        workers=args.workers,
        case_timeout=args.case_timeout,
        slow_seconds=args.slow,
        memory_limit=int(args.memory_limit_gib * (1 << 30)),
        trace_every=args.trace_every,
        max_seed_bytes=max_seed_bytes,
        catalogue=args.catalogue,
    )
    print(f"run seed {settings.run_seed}, {settings.workers} workers", flush=True)
    last = [time.monotonic()]

    def progress(report: supervisor.Report) -> None:
        if time.monotonic() - last[0] > 30:
            last[0] = time.monotonic()
            print(f"  {report.cases} cases, {len(report.failures)} failing", flush=True)

    report = supervisor.run(settings, progress)
    print_report(report)
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "run_seed": settings.run_seed,
                    "cases": report.cases,
                    "seconds": report.seconds,
                    "reads": dict(report.reads),
                    "failures": [vars(f) for f in report.failures],
                    "max_rss": report.max_rss,
                    "peak": report.peak,
                    "slowest": report.slowest,
                },
                indent=1,
            )
        )
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
