"""Running fuzz cases in worker subprocesses, with a timeout per case.

:func:`run` starts ``workers`` processes of :mod:`tests.fuzz.worker`, each taking every
``workers``-th case number, and reads their reports.  A worker that stays on one case longer
than ``case_timeout`` is killed and the case is reported as a hang; a worker that dies is
reported as a crash of the case it had started; either way a new worker continues with the
next number.  Cases slower than :func:`default_time_bound` or whose traced memory peak exceeds
``memory_bound(total file bytes)`` are failures too.  The :class:`Report` holds the counts
of every read's outcome, the failures with their case descriptions, the slowest case and
the peak memory.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[2]


def default_memory_bound(file_bytes: int) -> int:
    """The traced memory a case may use: 64 MiB plus 64 times its files' size (every read
    path of a case runs, each holding a few copies of the values at most)."""
    return (64 << 20) + 64 * file_bytes


# How much slower tracemalloc makes a case at worst (text_format's parser: some 20 times).
TRACED_SLOWDOWN = 25


def default_time_bound(file_bytes: int, slow_seconds: float) -> float:
    """The time a case may take: ``slow_seconds`` plus 4 s per MiB of its files (a case
    runs some 30 reads, each linear in the files' size)."""
    return slow_seconds + 4 * file_bytes / (1 << 20)


@dataclass
class Settings:
    run_seed: int
    cases: int | None = None  # None: until ``seconds`` have passed
    seconds: float | None = None
    first: int = 0
    workers: int = 2
    case_timeout: float = 120.0
    slow_seconds: float = 10.0
    memory_limit: int = 4 << 30  # RLIMIT_AS of each worker
    trace_every: int = 4  # cases traced by tracemalloc: every n-th (0: none)
    max_seed_bytes: int = 256 << 10
    memory_bound: Callable[[int], int] = default_memory_bound
    catalogue: bool = False  # run tests.fuzz.catalogue's cases instead of random ones


@dataclass
class Failure:
    case: int
    description: str
    problems: list[str]


@dataclass
class Report:
    cases: int = 0
    reads: Counter[str] = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    slowest: tuple[float, str] = (0.0, "")
    peak: tuple[int, str] = (0, "")
    families: Counter[str] = field(default_factory=Counter)  # cases per family
    family_seconds: Counter[str] = field(default_factory=Counter)
    max_rss: int = 0
    seconds: float = 0.0

    def record(self, started: dict[str, Any], done: dict[str, Any], settings: Settings) -> None:
        self.cases += 1
        self.reads.update(done["categories"])
        self.families[started["family"]] += 1
        self.family_seconds[started["family"]] += done["seconds"]
        description = started["description"]
        problems = list(done["failures"])
        allowed = default_time_bound(done["file_bytes"], settings.slow_seconds)
        if done["traced"]:
            allowed *= TRACED_SLOWDOWN
        if done["seconds"] > allowed:
            problems.append(f"slow: {done['seconds']:.1f} s (allowed {allowed:.1f} s)")
        bound = settings.memory_bound(done["file_bytes"])
        if done["traced"] and done["peak"] > bound:
            problems.append(f"memory: traced peak {done['peak']} bytes, bound {bound}")
        if problems:
            self.failures.append(Failure(done["case"], description, problems))
        self.slowest = max(self.slowest, (done["seconds"], description))
        self.peak = max(self.peak, (done["peak"], description))
        self.max_rss = max(self.max_rss, done["rss"])


class _Worker:
    """One worker process, the case it is on, and how many cases it has left (-1: any)."""

    def __init__(self, settings: Settings, first: int, step: int, count: int) -> None:
        command = [
            sys.executable, "-m", "tests.fuzz.worker",
            "--run-seed", str(settings.run_seed), "--first", str(first), "--step", str(step),
            "--count", str(count), "--max-seed-bytes", str(settings.max_seed_bytes),
            "--memory-limit", str(settings.memory_limit),
            "--trace-every", str(settings.trace_every),
        ]  # fmt: skip
        if settings.catalogue:
            command.append("--catalogue")
        env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
        # A file, not a pipe (which could fill up and block the worker); closed by stop().
        self.stderr = tempfile.TemporaryFile("w+")  # noqa: SIM115
        self.process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=self.stderr, text=True
        )
        self.step = step
        self.remaining = count
        self.current: dict[str, Any] | None = None
        self.since = time.monotonic()

    @property
    def stdout(self) -> IO[str]:
        assert self.process.stdout is not None
        return self.process.stdout

    def stderr_tail(self, lines: int) -> list[str]:
        self.stderr.seek(0)
        return self.stderr.read().strip().splitlines()[-lines:]

    def stop(self) -> None:
        """Kills the process (if still running) and releases its pipes."""
        self.process.kill()
        self.process.wait()
        self.stdout.close()
        self.stderr.close()


def _schedule(settings: Settings) -> list[tuple[int, int]]:
    """(first case, count) of each worker; count -1 when the run is bounded by time."""
    workers = max(1, settings.workers)
    out = []
    for k in range(workers):
        first = settings.first + k
        if settings.cases is None:
            out.append((first, -1))
        else:
            out.append((first, max(0, (settings.cases - k + workers - 1) // workers)))
    return [(f, c) for f, c in out if c != 0]


class _Pool:
    """The live workers of one run and the report they feed."""

    def __init__(self, settings: Settings, progress: Callable[[Report], None] | None) -> None:
        self.settings = settings
        self.progress = progress
        self.report = Report()
        self.schedule = _schedule(settings)
        self.selector = selectors.DefaultSelector()
        self.live: dict[int, _Worker] = {}

    def start(self, first: int, count: int) -> None:
        worker = _Worker(self.settings, first, len(self.schedule), count)
        self.live[id(worker)] = worker
        self.selector.register(worker.stdout, selectors.EVENT_READ, worker)

    def retire(self, worker: _Worker) -> None:
        self.selector.unregister(worker.stdout)
        del self.live[id(worker)]
        worker.stop()

    def replace(self, worker: _Worker, problem: str) -> None:
        """The worker died or hung on its current case: report it, continue after it."""
        case, tail = worker.current, worker.stderr_tail(3)
        self.retire(worker)
        if case is None:
            raise RuntimeError(f"a fuzz worker failed outside any case: {tail}")
        self.report.cases += 1
        self.report.failures.append(Failure(case["case"], case["description"], [problem, *tail]))
        left = worker.remaining - 1 if worker.remaining > 0 else worker.remaining
        if left != 0:
            self.start(case["case"] + worker.step, left)

    def read(self, worker: _Worker) -> None:
        """Handles one line of a worker's report (or its end)."""
        line = worker.stdout.readline()
        if not line:
            if worker.process.wait() == 0 and worker.current is None:
                self.retire(worker)
            else:
                self.replace(worker, f"crash: the worker exited with {worker.process.returncode}")
            return
        message = json.loads(line)
        if message["event"] == "start":
            worker.current, worker.since = message, time.monotonic()
        elif message["event"] == "done":
            assert worker.current is not None
            self.report.record(worker.current, message, self.settings)
            worker.current = None
            if worker.remaining > 0:
                worker.remaining -= 1
            if self.progress is not None:
                self.progress(self.report)

    def reap_hangs(self) -> None:
        now = time.monotonic()
        for worker in list(self.live.values()):
            if worker.current is not None and now - worker.since > self.settings.case_timeout:
                self.replace(worker, f"hang: no result after {self.settings.case_timeout:.0f} s")

    def run(self) -> Report:
        started_at = time.monotonic()
        deadline = None if self.settings.seconds is None else started_at + self.settings.seconds
        for first, count in self.schedule:
            self.start(first, count)
        try:
            while self.live and (deadline is None or time.monotonic() < deadline):
                for key, _ in self.selector.select(timeout=0.5):
                    self.read(key.data)
                self.reap_hangs()
        finally:
            for worker in list(self.live.values()):
                self.retire(worker)
            self.selector.close()
        self.report.seconds = time.monotonic() - started_at
        return self.report


def run(settings: Settings, progress: Callable[[Report], None] | None = None) -> Report:
    """Runs the cases of ``settings`` and returns the report (see the module)."""
    return _Pool(settings, progress).run()
