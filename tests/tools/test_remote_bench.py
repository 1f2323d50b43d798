"""The remote benchmark runs end to end at a tiny scale: its servers start in their own
processes, count what they send, and every value the rows read is checked (a wrong value
would make the run exit 1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_remote_bench_runs_and_checks_its_values(tmp_path: Path) -> None:
    pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    pytest.importorskip("aiohttp")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    report = tmp_path / "remote.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "bench"),
            "--remote",
            "--scale",
            "0.005",
            "--repeat",
            "1",
            "--json",
            str(report),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "one tensor:" in done.stdout and "read all: throughput" in done.stdout
    rows = json.loads(report.read_text())["rows"]
    for name in ("s3/read_tfckpt", "http/read_tfckpt", "s3/one_tfckpt", "http/one_tfckpt"):
        assert rows[name]["status"] == "OK" and rows[name]["correct"] is True, rows[name]
        assert rows[name]["counts"]["requests"] >= 2  # the servers counted (index + data)
    assert rows["s3/save_rss"]["added_peak"] > 0
