"""The child side: one (workload, section, lib) row per process, timed and checked."""

from __future__ import annotations

import gc
import json
import os
import time
import traceback
from typing import Any

from .checks import Mismatch
from .context import Ctx, Skip


def _vm_hwm_kib() -> int:
    """Peak RSS of this process (VmHWM), KiB; ru_maxrss where /proc is missing."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _vm_rss_kib() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def worker_main(spec: dict[str, Any]) -> int:
    """Runs ``spec``'s row (or writes the workload's manifest) and writes the result file."""
    result: dict[str, Any] = {"status": "OK"}
    code = 0
    try:
        if spec["section"] == "manifest":
            from . import workloads

            manifest = workloads.manifest(spec["workload"], spec["scale"])
            with open(os.path.join(spec["wdir"], "manifest.json"), "w") as f:
                json.dump(manifest, f)
        else:
            result.update(measure(spec))
    except Skip as exc:
        result = {"status": "SKIP", "detail": str(exc)}
    except ImportError as exc:
        result = {"status": "SKIP", "detail": f"import failed: {exc}"}
    except Mismatch as exc:
        result = {"status": "FAIL", "detail": str(exc)}
        code = 3
    except BaseException as exc:  # reported to the parent, which prints it
        traceback.print_exc()
        result = {"status": "ERROR", "detail": f"{type(exc).__name__}: {exc}"}
        code = 4
    with open(spec["result"], "w") as f:
        json.dump(result, f)
    return code


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """One warm-up, then ``repeat`` timed runs (at least 9 when one takes under 0.1 s)."""
    from .implementations import IMPLS

    ctx = Ctx(spec)
    bench = IMPLS[(spec["section"], spec["lib"])](ctx)
    repeat = int(spec["repeat"])
    gc.collect()
    baseline = _vm_rss_kib()
    times: list[float] = []
    warmup = 0.0
    runs = 1 + repeat
    i = 0
    result: Any = None
    while i < runs:
        result = None  # drop the previous repetition's arrays first
        gc.collect()
        if bench.prepare is not None:
            bench.prepare()
        start = time.perf_counter()
        result = bench.run()
        elapsed = time.perf_counter() - start
        if bench.after is not None:
            bench.after()
        if i == 0:
            warmup = elapsed
            if elapsed < 0.1:
                runs = 1 + max(repeat, 9)  # cheap operation: more samples
        else:
            times.append(elapsed)
        i += 1
    peak = _vm_hwm_kib()
    if bench.verify is not None:
        bench.verify(result)  # after the peak is taken: hashing must not count
    return {
        "times": times,
        "warmup": warmup,
        "peak_kib": peak,
        "baseline_kib": baseline,
        "verified": bench.verify is not None,
    }
