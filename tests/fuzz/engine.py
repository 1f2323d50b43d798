"""One fuzz case: made from (run seed, case number), written, read every way, judged.

:func:`make_case` is deterministic: the same run seed and number give the same seed
checkpoint, mutation and settings in any process, so a failure is reproduced from its
number alone (``tools/fuzz.py --replay``).  :class:`Runner` writes the case into a scratch
directory, runs the operations of :mod:`tests.fuzz.operations` and judges each outcome with
:func:`tests.fuzz.oracle.judge` against the same operation on the unmutated seed, which it
runs once per seed and label and caches.  It measures each case's time and the peak of
memory traced while it ran (NumPy reports its buffers to tracemalloc).
"""

from __future__ import annotations

import os
import random
import shutil
import stat
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fuzz import large_mutations, mutators, specials, structured
from tests.fuzz.mirror import Mirror, mirror_factory
from tests.fuzz.mutant import Mutant
from tests.fuzz.object_mutations import EXECUTED_MARKER_VARIABLE
from tests.fuzz.operations import Context, Op, directory_ops, opening, plan
from tests.fuzz.oracle import Outcome, Verdict, classify_error, classify_value, judge
from tests.fuzz.seeds import Seed, large_seed
from tfckpt.checkpoint_state import STATE_FILENAME


@dataclass(frozen=True)
class Case:
    """Case ``number``: a ``family`` of mutation applied to a seed, read with or without
    verifying checksums."""

    number: int
    family: str
    seed: Seed
    mutant: Mutant
    verify: bool

    def describe(self) -> str:
        return (
            f"case {self.number} [{self.family}] seed {self.seed.name}, "
            f"verify_checksums={self.verify}: {self.mutant.description}"
        )


FAMILIES = ("bytes", "structure", "special", "large")
_FAMILY_WEIGHTS = (50, 45, 5, 1)


def _pick_file(rng: random.Random, seed: Seed) -> str:
    """A file of the seed, the index (or V1 file) three times as likely as others."""
    names = sorted(seed.files)
    weights = [3 if n.endswith(".index") or seed.kind == "v1" else 1 for n in names]
    return rng.choices(names, weights)[0]


def byte_mutant(rng: random.Random, seed: Seed, seeds: Sequence[Seed]) -> Mutant:
    """A byte-level mutation of one of the seed's files (or its removal)."""
    name = _pick_file(rng, seed)
    is_data = ".data-" in name
    changed = frozenset({"state"}) if name == STATE_FILENAME else frozenset()
    if rng.random() < 0.04:  # (what latest_checkpoint finds depends on which files exist)
        return Mutant(f"{name}: removed", {name: None}, changed=frozenset({"state"}))
    donor_seed = rng.choice(seeds)
    donor = donor_seed.files[rng.choice(sorted(donor_seed.files))]
    data, description = mutators.mutate(rng, seed.files[name], donor)
    return Mutant(
        f"{name}: {description}", {name: data}, changed=changed, unverified_changed=is_data
    )


def make_case(run_seed: int, number: int, seeds: Sequence[Seed]) -> Case:
    """The case ``number`` of run ``run_seed`` (deterministic)."""
    rng = random.Random(f"{run_seed}:{number}")
    family = rng.choices(FAMILIES, _FAMILY_WEIGHTS)[0]
    seed = large_seed() if family == "large" else rng.choice(seeds)
    if family == "large":
        mutant = large_mutations.mutate(rng, seed)
    elif family == "bytes":
        mutant = byte_mutant(rng, seed, seeds)
    elif family == "structure":
        mutant = structured.mutate(rng, seed)
    else:
        mutant = specials.mutate(rng, seed)
    return Case(number, family, seed, mutant, verify=rng.random() < 0.8)


# -- running a case ------------------------------------------------------------------------


@dataclass
class Result:
    """The judged operations of one case, its time, traced memory peak and the bytes its
    files really hold (sparse holes excluded)."""

    case: Case
    verdicts: list[tuple[str, Verdict]] = field(default_factory=list)
    seconds: float = 0.0
    peak_bytes: int = 0
    file_bytes: int = 0
    traced: bool = False

    @property
    def failures(self) -> list[str]:
        return [f"{label}: {v.failure}" for label, v in self.verdicts if v.failure]


def run_op(op: Op, ctx: Context) -> tuple[Outcome, Any]:
    """Runs one operation: its outcome and (when it succeeded) its value."""
    try:
        value = op.call(ctx)
    except Exception as exc:  # judged: anything but a CheckpointError is a failure
        return classify_error(exc), None
    return classify_value(value), value


def stored_bytes(directory: Path) -> int:
    """The bytes the regular files in ``directory`` hold on disk (sparse holes excluded)."""
    total = 0
    for path in directory.iterdir():
        info = path.lstat()
        if stat.S_ISREG(info.st_mode):
            total += min(info.st_size, info.st_blocks * 512)
    return total


def _is_strict(case: Case, op: Op, expected: Outcome) -> bool:
    """Whether a value ``op`` returns must equal the seed's: checksums verified, nothing it
    depends on changed by the mutation, and the tensor not one the mutation made visible
    (the seed then has nothing to compare with)."""
    changed = case.mutant.changed
    if expected.detail == "TensorNotFoundError" and changed & {"listing", "*"}:
        return False
    return (
        case.verify
        and not (changed & op.depends)
        and "*" not in changed
        and not (op.unverified and case.mutant.unverified_changed)
    )


class Runner:
    """Runs cases in ``workdir`` (a scratch directory it owns), caching the seeds' outcomes.

    It points ``$TFCKPT_FUZZ_EXECUTED_MARKER`` at a path in ``workdir``: pickles in the
    mutations create it if they are ever executed, which fails the case.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.marker = workdir / "EXECUTED"
        os.environ[EXECUTED_MARKER_VARIABLE] = str(self.marker)
        self._pristine: dict[str, Context] = {}
        self._expected: dict[tuple[str, str], Outcome] = {}
        self._mirrors: dict[str, Callable[[], Mirror] | None] = {}

    def _mirror(self, seed: Seed) -> Callable[[], Mirror] | None:
        if seed.name not in self._mirrors:
            factory = None
            if seed.kind == "objects":
                factory = mirror_factory(str(self._seed_context(seed).prefix))
            self._mirrors[seed.name] = factory
        return self._mirrors[seed.name]

    def _seed_context(self, seed: Seed) -> Context:
        ctx = self._pristine.get(seed.name)
        if ctx is None:
            directory = self.workdir / "seeds" / str(len(self._pristine))
            directory.mkdir(parents=True)
            prefix = seed.write(directory)
            ctx = Context(directory, prefix, verify=True, has_state_file=seed.has_state_file)
            self._pristine[seed.name] = ctx
            ctx.mirror = self._mirror(seed)
        return ctx

    def expected(self, seed: Seed, op: Op) -> Outcome:
        """The outcome of ``op`` on the unmutated seed."""
        key = (seed.name, op.expected_label)
        if key not in self._expected:
            self._expected[key] = run_op(op, self._seed_context(seed))[0]
        return self._expected[key]

    def _case_context(self, case: Case) -> Context:
        directory = self.workdir / "case"
        if directory.exists() or directory.is_symlink():
            shutil.rmtree(directory)
        directory.mkdir()
        prefix = case.seed.write(directory, case.mutant.files)
        if case.mutant.setup is not None:
            case.mutant.setup(directory)
        has_state = (directory / STATE_FILENAME).exists() or case.seed.has_state_file
        return Context(directory, prefix, case.verify, has_state, self._mirror(case.seed))

    def _verdict(self, case: Case, op: Op, outcome: Outcome) -> Verdict:
        expected = self.expected(case.seed, op)
        if expected.kind == "bad":
            return Verdict("other", f"on the unmutated seed: {expected.detail}: {expected.message}")
        mutant = case.mutant
        must_fail = bool(op.reads & mutant.must_fail) or (
            case.verify and not op.unverified and bool(op.reads & mutant.must_fail_verified)
        )
        strict = _is_strict(case, op, expected)
        return judge(outcome, expected, strict=strict, must_fail=must_fail)

    def run(self, case: Case, *, trace_memory: bool = False) -> Result:
        """Runs every operation of ``case`` and judges it; with ``trace_memory``, under
        tracemalloc (which makes allocation-heavy cases several times slower)."""
        self._mirror(case.seed)  # (built outside the measured window: it reads the seed)
        result = Result(case, traced=trace_memory)
        started = time.perf_counter()
        if trace_memory:
            tracemalloc.start(1)
        ctx = self._case_context(case)
        try:
            self._run_ops(case, ctx, result)
        finally:
            ctx.close()
            if trace_memory:
                result.peak_bytes = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
        result.seconds = time.perf_counter() - started
        result.file_bytes = stored_bytes(ctx.directory)
        if self.marker.exists():
            self.marker.rmdir()
            result.verdicts.append(
                ("no code execution", Verdict("other", "code named by the file was executed"))
            )
        return result

    def _run_ops(self, case: Case, ctx: Context, result: Result) -> None:
        rng = random.Random(f"ops:{case.number}")
        open_op = opening()
        outcome, names = run_op(open_op, ctx)
        result.verdicts.append((open_op.label, self._verdict(case, open_op, outcome)))
        ops: list[Op] = []
        if outcome.kind == "value":
            seed_ctx = self._seed_context(case.seed)
            ops += plan(
                ctx, names, lambda items, k: sorted(rng.sample(items, k)), seed_ctx.listed_shape
            )
        if ctx.has_state_file:
            ops += directory_ops()
        for op in ops:
            outcome, _ = run_op(op, ctx)
            result.verdicts.append((op.label, self._verdict(case, op, outcome)))
