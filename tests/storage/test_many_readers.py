"""Readers that are never closed (TensorFlow's API has no close, so most code never closes
one) release their files when they are garbage: 100,000 opened and dropped, of good and
corrupt checkpoints, including opens that fail half-way, keep the process's open file
descriptors and memory maps flat under a lowered RLIMIT_NOFILE; 2,000 alive at once hold
one data file each (two descriptors for a mapped one before Python 3.13: the map keeps a
duplicate) and release them all when dropped.  Runs in a child process so that
the test runner's limits are untouched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np

import tfckpt

# Every FULL_EVERY-th of the readers opens a whole checkpoint and reads it (some 0.35 ms
# each); the others' opens fail half-way, on a truncated index (some 0.02 ms).  With
# TFCKPT_MANY_READERS_FULL=1 every one of them opens and reads (about 40 s).
READERS = int(os.environ.get("TFCKPT_MANY_READERS", "100000"))
FULL_EVERY = 1 if os.environ.get("TFCKPT_MANY_READERS_FULL") else 5
ALIVE = 2000

_CHILD = textwrap.dedent(
    """
    import gc, json, os, resource, sys
    import tfckpt

    root, readers, full_every, alive = sys.argv[1], *map(int, sys.argv[2:])

    def fds():
        return len(os.listdir("/proc/self/fd"))

    def maps():
        with open("/proc/self/maps") as f:
            return sum(1 for line in f if root in line)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    report = {"baseline_fds": fds(), "baseline_maps": maps()}

    # 2,000 readers alive at once, each holding its data file (every other one mapped, by
    # a copy=False read): the limit leaves room for them and a few more, nothing else.
    mapped_fds = 1 if sys.version_info >= (3, 13) else 2
    limit = report["baseline_fds"] + alive // 2 * (1 + mapped_fds) + 16
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    kept = []
    for i in range(alive):
        reader = tfckpt.load_checkpoint(root + "/good")
        reader.get_tensor("x", copy=(i % 2 == 0))
        kept.append(reader)
    report["alive_fds"] = fds()
    del kept, reader
    report["after_alive_fds"] = fds()

    # 100,000 opened and dropped, never closed, under a limit of a few dozen descriptors.
    resource.setrlimit(resource.RLIMIT_NOFILE, (report["baseline_fds"] + 32, hard))
    kinds = {"value": 0}
    peak_fds = peak_maps = 0
    full = ["good", "bad_data", "no_data"]
    for i in range(readers):
        if i % full_every:
            name = "half"  # the index ends early: the open fails half-way
        else:
            name = full[(i // full_every) % len(full)]
        try:
            reader = tfckpt.load_checkpoint(root + "/" + name)
            reader.get_tensor("x", copy=(i % 3 == 0))
            reader.get_slice("y")[1:]
            kinds["value"] += 1
        except tfckpt.CheckpointError as exc:
            kinds[type(exc).__name__] = kinds.get(type(exc).__name__, 0) + 1
        reader = None
        if i % 997 == 0:
            peak_fds = max(peak_fds, fds())
            peak_maps = max(peak_maps, maps())
    report.update(kinds=kinds, peak_fds=peak_fds, peak_maps=peak_maps)
    gc.collect()
    report["end_fds"], report["end_maps"] = fds(), maps()
    json.dump(report, sys.stdout)
    """
)


def _checkpoints(root) -> None:
    """good, bad_data (a flipped data byte), no_data (the data file missing) and half (the
    index cut short) in ``root``."""
    good = str(root / "good")
    tfckpt.save_tensors(good, {"x": np.arange(4, dtype=np.float32), "y": np.ones(3)})
    index = (root / "good.index").read_bytes()
    data = bytearray((root / "good.data-00000-of-00001").read_bytes())
    data[0] ^= 1
    (root / "bad_data.index").write_bytes(index)
    (root / "bad_data.data-00000-of-00001").write_bytes(bytes(data))
    (root / "no_data.index").write_bytes(index)
    (root / "half.index").write_bytes(index[:-10])


def test_readers_never_closed_keep_descriptors_and_maps_flat(tmp_path):
    """100,000 readers dropped without close() (good, corrupt data, missing data file,
    truncated index) under an RLIMIT_NOFILE of the baseline + 32: no EMFILE, the peak
    descriptor and map counts stay within a few of the baseline; 2,000 readers alive at
    once hold one data file each and give all back when dropped."""
    _checkpoints(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path), str(READERS), str(FULL_EVERY), str(ALIVE)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    base = report["baseline_fds"]
    assert base + ALIVE <= report["alive_fds"] <= base + ALIVE // 2 * 3, report
    assert report["after_alive_fds"] <= base + 2, report
    kinds = report["kinds"]
    assert sum(kinds.values()) == READERS, report
    assert set(kinds) == {"value", "DataLossError", "CheckpointNotFoundError"}, report
    assert report["peak_fds"] <= base + 4, report
    assert report["peak_maps"] <= report["baseline_maps"] + 4, report
    assert report["end_fds"] <= base + 2 and report["end_maps"] <= report["baseline_maps"]
