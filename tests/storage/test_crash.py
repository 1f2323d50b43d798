"""Crash safety of saving, proved by killing: SIGKILL at random moments and at every step.

A fork server (tests/storage/crash_worker.py) runs saving children: ``save_tensors`` to one
prefix, ``Checkpoint.save``, ``CheckpointManager.save`` and a NumpyState written to one
prefix.  After every kill the directory is checked (:func:`check_directory`):

- the last save that completed is intact: the prefix reads (through tfckpt, checksums
  verified) as exactly that generation or a later one (a save killed after its commit
  point, before it returned), never a mixture, and never more than one generation past
  what was there before the child started and what it completed;
- ``latest_checkpoint`` names a complete checkpoint that reads, and every checkpoint the
  state file lists exists;
- no file stands under a final name but complete checkpoints (and data files of a first
  save killed before its index): everything else is one of tfckpt's reserved names.

The next child continues from what it finds (recovering an interrupted overwrite), and a
final save leaves no reserved file at all.  ``TFCKPT_CRASH_KILLS`` (default 100) sets the
kills per mode; the summary of each run is printed (``pytest -s``).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pytest

import tfckpt
from tests.storage.crash_worker import (
    MAX_TO_KEEP,
    MODES,
    PREFIX_NAME,
    check_tensors,
    check_tree,
    new_checkpoint,
)
from tfckpt.checkpoint_state import read_state, write_state
from tfckpt.storage.commit import reserved_final
from tfckpt.storage.lock import LOCK_SUFFIX

REPO = Path(__file__).resolve().parents[2]
KILLS = int(os.environ.get("TFCKPT_CRASH_KILLS", "100"))
# Kills come uniformly within this many seconds of a child's start: a few saves' time (the
# manager's are durable, so fsyncs make them slower).
MAX_DELAY = {"save_tensors": 0.02, "checkpoint_save": 0.03, "manager": 0.15, "numpy_state": 0.02}
_FINAL = re.compile(r"(.+)\.(index|data-\d{5}-of-\d{5})")

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork and SIGKILL")


class Worker:
    """The fork server, one command at a time."""

    def __init__(self) -> None:
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.storage.crash_worker"],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )

    def run(self, op: str, mode: str, directory: Path, **args: object) -> dict:
        command = {"op": op, "mode": mode, "dir": str(directory), **args}
        command.setdefault("log", str(directory.parent / f"{directory.name}.log"))
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, f"the worker died: {self.errors()}"
        return json.loads(line)

    def errors(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")[-4000:]

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)
        self.stderr.close()


@pytest.fixture(scope="module")
def worker():
    server = Worker()
    yield server
    server.close()


def last_logged(directory: Path) -> tuple[int, str] | None:
    """The generation and path of the last save that completed (the child logs it)."""
    log = directory.parent / f"{directory.name}.log"
    if not log.exists():
        return None
    lines = [line for line in log.read_text().splitlines() if line]
    if not lines:
        return None
    g, path = lines[-1].split(" ", 1)
    return int(g), path


def read_generation(mode: str, prefix: str) -> int:
    """The generation the checkpoint at ``prefix`` holds, read whole through tfckpt (every
    checksum verified); AssertionError for a mixture."""
    if mode == "save_tensors":
        return check_tensors(tfckpt.load_tensors(prefix))
    if mode == "numpy_state":
        state = tfckpt.NumpyState()
        tfckpt.Checkpoint(state=state).read(prefix).assert_consumed()
        g = int(state.generation)
        assert state.vector.shape == (100 + g % 97,) and (state.vector == g).all()
        return g
    checkpoint, state = new_checkpoint()
    checkpoint.restore(prefix).assert_consumed()
    g = check_tree(checkpoint, state)
    assert checkpoint.save_counter == g
    assert prefix.endswith(f"-{g}"), (prefix, g)
    return g


def classify(directory: Path) -> tuple[dict[str, list[str]], list[str]]:
    """``{prefix: its final files}`` and the reserved files; AssertionError for any other
    name (a half-written file would be under a final name or an unknown one)."""
    finals: dict[str, list[str]] = {}
    reserved = []
    for name in sorted(os.listdir(directory)):
        if name == "checkpoint":
            continue
        if reserved_final(name) is not None or name.endswith(LOCK_SUFFIX):
            reserved.append(name)
            continue
        match = _FINAL.fullmatch(name)
        assert match, f"unexpected file {name!r} in {sorted(os.listdir(directory))}"
        finals.setdefault(str(directory / match.group(1)), []).append(match.group(2))
    return finals, reserved


def check_directory(
    mode: str, directory: Path, stats: Counter, *, before: int = 0, newest: int = 4
) -> int:
    """Checks everything the module docstring promises about ``directory`` after a kill
    (``before``: the generation the killed child started from); returns the generation
    that is there now."""
    finals, reserved = classify(directory)
    stats["reserved files seen"] += len(reserved)
    stats["max reserved files at once"] = max(stats["max reserved files at once"], len(reserved))
    if any(name.endswith("tempstate-tfckpt-old") for name in reserved):
        stats["kills mid-swap (old files set aside)"] += 1
    logged = last_logged(directory)
    if mode in ("save_tensors", "numpy_state"):
        prefix = str(directory / PREFIX_NAME)
        if tfckpt.latest_checkpoint(directory) is not None:
            raise AssertionError("no state file is written in this mode")
        if logged is None and tfckpt.paths.checkpoint_format(prefix) is None:
            return 0
        g = read_generation(mode, prefix)
        stats["checkpoints verified"] += 1
        _check_progress(g, logged, before)
        return g
    latest = tfckpt.latest_checkpoint(directory)
    assert logged is None or latest is not None, "latest_checkpoint lost the checkpoints"
    g = 0
    if latest is not None:
        g = read_generation(mode, latest)
        stats["checkpoints verified"] += 1
        _check_progress(g, logged, before)
        state = read_state(directory)
        assert state is not None
        for path in state.all_model_checkpoint_paths:  # never names a deleted checkpoint
            assert tfckpt.paths.checkpoint_format(path) is not None, path
    # The last save that returned is still there, unless the manager pruned it after
    # MAX_TO_KEEP later saves that completed (and were killed before they returned).
    if logged is not None and (mode == "checkpoint_save" or g - logged[0] < MAX_TO_KEEP):
        assert read_generation(mode, logged[1]) == logged[0]
        stats["checkpoints verified"] += 1
    with_index = [p for p, files in finals.items() if "index" in files]
    for prefix in sorted(with_index, key=lambda p: int(p.rsplit("-", 1)[1]))[-newest:]:
        read_generation(mode, prefix)
        stats["checkpoints verified"] += 1
    return g


def _check_progress(g: int, logged: tuple[int, str] | None, before: int) -> None:
    completed = logged[0] if logged else 0
    assert completed <= g <= max(completed, before) + 1, (
        f"generation {g} on disk, last completed save {completed}, {before} before the child"
    )


def kill_run(worker: Worker, mode: str, directory: Path, kills: int, seed: int) -> Counter:
    rng = random.Random(seed)
    stats: Counter = Counter()
    generation = 0
    for _ in range(kills):
        reply = worker.run("kill", mode, directory, delay=rng.uniform(0.0, MAX_DELAY[mode]))
        assert reply["signal"] == signal.SIGKILL, f"the child failed: {worker.errors()}"
        stats["kills"] += 1
        generation = check_directory(mode, directory, stats, before=generation)
    logged = last_logged(directory)
    stats["saves completed"] = logged[0] if logged else 0
    return stats


def finish_and_check_tidy(worker: Worker, mode: str, directory: Path) -> None:
    """One more save completes, and then no reserved file is left at all."""
    reply = worker.run("save", mode, directory)
    assert reply["exit"] == 0, worker.errors()
    check_directory(mode, directory, Counter(), before=1 << 62, newest=1000)
    _, reserved = classify(directory)
    assert reserved == [], reserved


@pytest.mark.parametrize("mode", MODES)
def test_random_sigkills_always_leave_the_last_completed_checkpoint(worker, tmp_path, mode):
    """SIGKILL at random moments while saving in a loop never loses the last completed
    checkpoint, never leaves a mixed or half-written one under a final name, and the next
    save cleans up everything the killed ones left."""
    directory = tmp_path / mode
    directory.mkdir()
    stats = kill_run(worker, mode, directory, KILLS, seed=MODES.index(mode))
    finish_and_check_tidy(worker, mode, directory)
    print(f"\n{mode}: {dict(stats)}")
    assert stats["saves completed"] > 0


# -- every step of one save ---------------------------------------------------------------


def _prepared(worker: Worker, mode: str, directory: Path, saves: int) -> None:
    if directory.exists():
        for path in directory.iterdir():
            path.unlink()
    else:
        directory.mkdir()
    log = directory.parent / f"{directory.name}.log"
    log.unlink(missing_ok=True)
    for _ in range(saves):
        assert worker.run("save", mode, directory)["exit"] == 0, worker.errors()


def _crash_every_step(worker: Worker, mode: str, directory: Path, saves: int) -> int:
    """Kills one save before each of its file-system steps in turn, checking the directory
    after each kill and after the next save; returns the number of steps."""
    step = 0
    while True:
        step += 1
        _prepared(worker, mode, directory, saves)
        reply = worker.run("crash_at", mode, directory, step=step)
        if reply["exit"] == 0:
            return step - 1
        assert reply["signal"] == signal.SIGKILL, worker.errors()
        check_directory(mode, directory, Counter(), before=saves)
        finish_and_check_tidy(worker, mode, directory)


@pytest.mark.parametrize(
    ("mode", "saves"),
    [
        ("save_tensors", 0),  # a first save
        ("save_tensors", 1),  # an overwrite
        ("numpy_state", 1),
        ("checkpoint_save", 0),
        ("checkpoint_save", 2),
        ("manager", 4),  # with a deletion (max_to_keep=3), durable (fsyncs counted too)
    ],
)
def test_a_kill_before_any_step_of_a_save_leaves_a_whole_checkpoint(worker, tmp_path, mode, saves):
    """Killing a save just before each of its renames, removals and fsyncs in turn leaves
    the old checkpoint or the new one, and the next save tidies up."""
    steps = _crash_every_step(worker, mode, tmp_path / "d", saves)
    assert steps >= 3


def test_a_kill_during_the_recovery_of_an_interrupted_overwrite(worker, tmp_path):
    """An overwrite killed mid-swap, then the next save killed at each of its steps (while
    it puts the old files back, or later): the checkpoint still reads whole every time."""
    directory = tmp_path / "d"
    mid_swap = 0
    step = 0
    while True:
        step += 1
        _prepared(worker, "save_tensors", directory, 1)
        reply = worker.run("crash_at", "save_tensors", directory, step=step)
        if reply["exit"] == 0:
            break
        _, reserved = classify(directory)
        if not any(name.endswith("tempstate-tfckpt-old") for name in reserved):
            continue
        mid_swap += 1
        snapshot = {p.name: p.read_bytes() for p in directory.iterdir()}
        second = 0
        while True:
            second += 1
            for path in directory.iterdir():
                path.unlink()
            for name, data in snapshot.items():
                (directory / name).write_bytes(data)
            again = worker.run("crash_at", "save_tensors", directory, step=second)
            check_directory("save_tensors", directory, Counter(), before=2)
            if again["exit"] == 0:
                break
    assert mid_swap >= 2  # the kills between the renames of an overwrite were reached


# -- readers of an interrupted overwrite ---------------------------------------------------


def _interrupted_overwrite(directory: Path) -> str:
    """The state an overwrite of ``directory/model`` killed after moving the old index and
    data aside and the new data in (before the new index) leaves; returns the prefix."""
    from tests.storage.crash_worker import values
    from tfckpt.storage.commit import aside_path

    prefix = str(directory / PREFIX_NAME)
    tfckpt.save_tensors(prefix, values(1))
    index, data = prefix + ".index", prefix + ".data-00000-of-00001"
    os.replace(index, aside_path(index))
    os.replace(data, aside_path(data))
    tfckpt.save_tensors(str(directory / "new"), values(2))
    os.replace(str(directory / "new.data-00000-of-00001"), data)
    os.remove(str(directory / "new.index"))
    Path(prefix + LOCK_SUFFIX).write_text("    999999\n")  # the killed writer's, unlocked
    return prefix


def _snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in directory.iterdir()}


def test_readers_read_an_interrupted_overwrite_as_the_old_checkpoint_and_write_nothing(
    tmp_path,
):
    """With the old files set aside and the new data in place but not its index, every
    reading path sees the old checkpoint whole, and the directory is left exactly as it
    was (reading never repairs; the next writer does)."""
    prefix = _interrupted_overwrite(tmp_path)
    write_state(tmp_path, PREFIX_NAME, [PREFIX_NAME])
    before = _snapshot(tmp_path)
    assert check_tensors(tfckpt.load_tensors(prefix)) == 1
    assert check_tensors(tfckpt.load_checkpoint(prefix).get_tensors()) == 1
    assert tfckpt.latest_checkpoint(tmp_path) == prefix
    assert check_tensors(tfckpt.load_tensors(tmp_path)) == 1  # through the state file
    assert int(tfckpt.load_variable(prefix, "generation")) == 1
    assert dict(tfckpt.list_variables(prefix))["weights"] == [256 + 1 % 97]
    assert _snapshot(tmp_path) == before


def test_the_next_writer_puts_an_interrupted_overwrite_back_before_writing(tmp_path):
    """The next save of the prefix first restores the old files (the old checkpoint is
    whole again under its own names), then replaces them as usual; nothing reserved is
    left."""
    prefix = _interrupted_overwrite(tmp_path)
    from tests.storage.crash_worker import values

    with tfckpt.BundleWriter(prefix) as writer:
        assert check_tensors(tfckpt.load_tensors(prefix)) == 1
        finals = [n for n in os.listdir(tmp_path) if reserved_final(n) is None]
        assert sorted(finals) == ["model.data-00000-of-00001", "model.index", "model" + LOCK_SUFFIX]
        writer.add_many(values(3).items())
    assert check_tensors(tfckpt.load_tensors(prefix)) == 3
    assert sorted(os.listdir(tmp_path)) == ["model.data-00000-of-00001", "model.index"]
