"""Facts about the machine and the libraries, and the import-time measurement."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Any

_TFCKPT_PROBE = """
import inspect, json, os, tfckpt
p = inspect.signature(tfckpt.save_tensors).parameters.get("durable")
print(json.dumps({"version": tfckpt.__version__, "file": os.path.abspath(tfckpt.__file__),
                  "durable_default": None if p is None else bool(p.default)}))
"""

_DISTRIBUTIONS = {
    "numpy": ("numpy",),
    "tensorflow": (
        "tensorflow",
        "tensorflow-cpu",
        "tensorflow-intel",
        "tf-nightly",
        "tensorflow-macos",
    ),
    "safetensors": ("safetensors",),
    "crc32c": ("crc32c",),
    "protobuf": ("protobuf",),
    "ml_dtypes": ("ml_dtypes",),
}


def machine_info(env: dict[str, str], scratch: str) -> dict[str, Any]:
    """CPU, RAM, OS, library versions, tfckpt's location and save default, scratch fs."""
    from importlib import metadata

    info: dict[str, Any] = {}
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info["cpu"] = cpu
    info["cores"] = os.cpu_count()
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    info["ram_gib"] = round(int(line.split()[1]) / (1 << 20), 1)
    except OSError:
        pass
    info["os"] = platform.platform()
    info["python"] = platform.python_version()
    for key, dists in _DISTRIBUTIONS.items():
        info[key] = None
        for dist in dists:
            try:
                info[key] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    probe = subprocess.run([sys.executable, "-c", _TFCKPT_PROBE], env=env, capture_output=True)
    if probe.returncode != 0:
        raise SystemExit(
            f"tfckpt is not importable (run with PYTHONPATH=src):\n{probe.stderr.decode()}"
        )
    found = json.loads(probe.stdout)
    info["tfckpt"] = f"{found['version']} ({os.path.dirname(found['file'])})"
    # Does tfckpt's default save fsync?  (save_tensors(durable=False) does not; a tfckpt
    # without the option always did.)
    info["tfckpt_fsyncs"] = found["durable_default"] is not False
    info["tfckpt_save_default"] = (
        "fsyncs (no durable= option)"
        if found["durable_default"] is None
        else f"durable={found['durable_default']} ("
        + ("fsyncs" if found["durable_default"] else "no fsync")
        + ")"
    )
    info["scratch"] = scratch
    info["scratch_fs"] = _filesystem(scratch)
    return info


def _filesystem(path: str) -> str:
    best, fstype, device = "", "?", "?"
    try:
        with open("/proc/mounts") as f:
            for line in f:
                fields = line.split()
                mount = fields[1]
                if (path == mount or path.startswith(mount.rstrip("/") + "/")) and len(mount) > len(
                    best
                ):
                    best, device, fstype = mount, fields[0], fields[2]
    except OSError:
        pass
    return f"{fstype} on {device} (mounted at {best})"


def measure_imports(env: dict[str, str], repeat: int, with_tf: bool) -> dict[str, Any]:
    """Median wall time of ``import tfckpt`` (and tensorflow) in fresh interpreters, minus
    that of ``python -c pass``."""

    def once(code: str) -> float:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return time.perf_counter() - start

    programs = {"pass": "pass", "tfckpt": "import tfckpt"}
    if with_tf:
        programs["tensorflow"] = "import tensorflow"
    samples: dict[str, list[float]] = {k: [] for k in programs}
    for code in programs.values():
        once(code)  # warm-up: files into the page cache
    n_fast = max(7, repeat)
    n_tf = max(3, repeat)
    for i in range(n_fast):
        for key, code in programs.items():
            if key == "tensorflow" and i >= n_tf:
                continue
            samples[key].append(once(code))
    base = statistics.median(samples["pass"])
    out: dict[str, Any] = {"interpreter_s": base, "samples": samples}
    for key in programs:
        if key != "pass":
            out[key] = statistics.median(samples[key]) - base
    return out
