"""The fuzz suite's CI budget: the whole catalogue of hostile cases, then random cases.

Both run in worker subprocesses (:mod:`tests.fuzz.supervisor`) under RLIMIT_AS, with a
timeout per case, so that a hang or a crash fails the test naming the case instead of
stopping the suite.  A failure lists every failing case with the command that replays it.
``TFCKPT_FUZZ_CASES`` changes the number of random cases (longer runs: tools/fuzz.py).
"""

from __future__ import annotations

import os

from tests.fuzz import catalogue, supervisor
from tests.fuzz.seeds import all_seeds

RUN_SEED = 20261203
RANDOM_CASES = int(os.environ.get("TFCKPT_FUZZ_CASES", "500"))


def _explain(report: supervisor.Report, replay: str) -> str:
    lines = [f"{len(report.failures)} of {report.cases} fuzz cases failed:"]
    for failure in report.failures[:20]:
        lines.append(f"  {failure.description}")
        lines += [f"      {problem}" for problem in failure.problems[:5]]
        lines.append(f"      replay: .venv-tf/bin/python tools/fuzz.py {replay} {failure.case}")
    return "\n".join(lines)


def test_every_catalogued_hostile_case_gives_right_values_or_checkpoint_errors():
    """Every special file, hostile state file, hostile py_state, object graph change and
    structure-aware mutation of the catalogue: each read gives the seed's values or a
    CheckpointError naming the file, within its time and memory bounds, executing
    nothing."""
    count = catalogue.size(all_seeds())
    report = supervisor.run(supervisor.Settings(run_seed=0, cases=count, catalogue=True))
    assert not report.failures, _explain(report, "--catalogue --replay")
    assert report.cases == count


def test_random_mutations_give_right_values_or_checkpoint_errors():
    """Random byte-level, structure-aware and special-file mutations of every seed (the
    same cases every run): no failure, and the run saw right values and errors of every
    kind the mutations cause."""
    report = supervisor.run(supervisor.Settings(run_seed=RUN_SEED, cases=RANDOM_CASES))
    assert not report.failures, _explain(report, f"--run-seed {RUN_SEED} --replay")
    assert report.cases == RANDOM_CASES
    for category in ("correct", "DataLossError", "UnsupportedError", "CheckpointNotFoundError"):
        assert report.reads[category] > 0, (category, report.reads)
