"""The fuzzer catches what it must: planted bugs make its cases fail.

A fuzz suite that never fails proves nothing unless it would fail for a bug.  These tests
run cases in this process with a bug planted in tfckpt (a stray exception, a wrong value,
an error without its file, a giant allocation turned into an error, code executed from a
file) and check that the case fails for exactly that reason; and that the same cases pass
without the bug.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import tfckpt
from tests.fuzz import seeds
from tests.fuzz.engine import Case, Runner
from tests.fuzz.mutant import Mutant
from tests.fuzz.object_mutations import EXECUTED_MARKER_VARIABLE
from tests.fuzz.oracle import Outcome, digest, judge
from tests.fuzz.supervisor import REPO
from tfckpt.reader import CheckpointReader


def _seed(name: str) -> seeds.Seed:
    (found,) = [s for s in seeds.all_seeds() if s.name == name]
    return found


def _run(tmp_path: Path, mutant: Mutant, seed: str = "synthetic/mixed") -> list[str]:
    case = Case(0, "test", _seed(seed), mutant, verify=True)
    return Runner(tmp_path).run(case).failures


def test_an_unmutated_seed_passes(tmp_path):
    assert _run(tmp_path, Mutant("nothing")) == []


def _plant(monkeypatch, raise_error) -> None:
    """Every get_tensor call raises what ``raise_error(reader)`` raises."""

    def buggy(self, name, *, copy=True):
        raise_error(self)

    monkeypatch.setattr(CheckpointReader, "get_tensor", buggy)


def test_an_escaped_exception_fails_the_case(tmp_path, monkeypatch):
    def index_error(reader):
        raise IndexError("planted")

    _plant(monkeypatch, index_error)
    failures = _run(tmp_path, Mutant("nothing"))
    assert failures and all("escaped IndexError" in f for f in failures)


def test_a_wrong_value_fails_the_case(tmp_path, monkeypatch):
    """A value different from the seed's, or returned where the file is invalid."""
    prefix_files = _seed("synthetic/mixed")
    original = CheckpointReader.get_tensor
    planted: dict[str, bool] = {"on": False}

    def buggy(self, name, *, copy=True):
        value = original(self, name, copy=copy)
        if planted["on"] and name == "caf\u00e9/\u00fcnicode":
            return np.asarray(value) + 1
        return value

    monkeypatch.setattr(CheckpointReader, "get_tensor", buggy)
    runner = Runner(tmp_path)
    runner.run(Case(0, "test", prefix_files, Mutant("nothing"), verify=True))  # the seed's
    planted["on"] = True
    result = runner.run(Case(1, "test", prefix_files, Mutant("nothing"), verify=True))
    assert any("different from the original" in f for f in result.failures)
    must_fail = Mutant("says the tensor is invalid", must_fail=frozenset({"num/int8"}))
    result = runner.run(Case(2, "test", prefix_files, must_fail, verify=True))
    assert any("expected an error" in f for f in result.failures)


def test_an_error_without_its_file_fails_the_case(tmp_path, monkeypatch):
    def no_file(reader):
        raise tfckpt.DataLossError("planted, no file")

    _plant(monkeypatch, no_file)
    assert any("DataLossError without the file" in f for f in _run(tmp_path, Mutant("x")))


def test_a_giant_allocation_turned_into_an_error_fails_the_case(tmp_path, monkeypatch):
    def giant(reader):
        try:
            np.empty(1 << 62, np.uint8)
        except MemoryError:
            raise tfckpt.DataLossError("planted", path=reader.prefix) from None

    _plant(monkeypatch, giant)
    failures = _run(tmp_path, Mutant("x"))
    assert any("MemoryError behind a CheckpointError" in f for f in failures)


def test_code_executed_from_a_file_fails_the_case(tmp_path, monkeypatch):
    original = CheckpointReader.get_tensor

    def executes(self, name, *, copy=True):
        os.makedirs(os.environ[EXECUTED_MARKER_VARIABLE], exist_ok=True)
        return original(self, name, copy=copy)

    monkeypatch.setattr(CheckpointReader, "get_tensor", executes)
    failures = _run(tmp_path, Mutant("nothing"))
    assert any("executed" in f for f in failures)


_CASES_DIGEST = """
import hashlib
from tests.fuzz import engine, seeds
digest = hashlib.sha256()
all_seeds = seeds.all_seeds()
for seed in all_seeds:
    for name, data in sorted(seed.files.items()):
        digest.update(name.encode() + data)
for number in range(40):
    case = engine.make_case(7, number, all_seeds)
    digest.update(case.describe().encode())
    for name, data in sorted(case.mutant.files.items()):
        digest.update(name.encode() + (data or b""))
print(digest.hexdigest())
"""


def test_random_cases_are_the_same_in_every_process():
    """A case is named by (run seed, number) alone: two processes make the same seeds
    (synthetic ones included) and the same mutations, so a failure replays anywhere."""
    import subprocess
    import sys

    runs = [
        subprocess.run(
            [sys.executable, "-c", _CASES_DIGEST],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
        for _ in range(2)
    ]
    assert runs[0] == runs[1] and len(runs[0].strip()) == 64


@pytest.mark.parametrize(
    ("outcome", "strict", "must_fail", "category"),
    [
        (Outcome("value", "a"), True, False, "correct"),
        (Outcome("value", "b"), True, False, "wrong"),
        (Outcome("value", "b"), False, False, "unchecked"),
        (Outcome("value", "a"), False, True, "wrong"),
        (Outcome("error", "DataLossError"), True, True, "DataLossError"),
        (Outcome("bad", "escaped KeyError"), False, False, "other"),
    ],
)
def test_judge(outcome, strict, must_fail, category):
    assert judge(outcome, Outcome("value", "a"), strict=strict, must_fail=must_fail).category == (
        category
    )


def test_digest_handles_deep_and_cyclic_values():
    """Values are hashed iteratively: a 100k-deep tree, a cyclic one, shared parts."""
    deep: dict = {}
    node = deep
    for _ in range(100_000):
        node["c"] = {}
        node = node["c"]
    cyclic: dict = {"x": np.arange(3)}
    cyclic["self"] = cyclic
    assert digest(deep) != digest({})
    assert digest(cyclic) == digest(cyclic)
    assert digest(np.float32(1)) != digest(np.float64(1))
    assert digest([b"a", b"b"]) != digest([b"ab"])
