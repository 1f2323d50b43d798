"""Command line: options, the run over the selected workloads, exit status."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from . import __doc__ as PACKAGE_DOC
from .goals import compute_targets
from .machine import machine_info, measure_imports
from .plan import PLAN
from .report import (
    print_header,
    print_imports,
    print_summary,
    print_table,
    print_targets,
    write_json,
)
from .results import Results
from .runner import child_env, progress, run_workload
from .worker import worker_main


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(PACKAGE_DOC or "").split("\n\n")[0])
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="size multiplier for every workload (default 1.0; 0.05 is quick)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="timed repetitions per measurement after one warm-up (default 3)",
    )
    parser.add_argument("--only", default="", help="comma-separated workloads, e.g. W1,W3")
    parser.add_argument("--dir", default=None, help="scratch directory (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--json", default=None, metavar="PATH", help="write results as JSON")
    parser.add_argument("--skip-imports", action="store_true", help="do not measure import times")
    parser.add_argument(
        "--remote",
        action="store_true",
        help="run the remote benchmark instead (local S3 and HTTP servers; see remote.py)",
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.worker is not None:
        return worker_main(json.loads(args.worker))

    if args.scale <= 0 or args.repeat < 1:
        parser.error("--scale must be > 0 and --repeat >= 1")
    if args.remote:
        from .remote import run as run_remote

        return run_remote(args.scale, args.repeat, child_env(None), args.json)
    selected = [w.strip().upper() for w in args.only.split(",") if w.strip()] or list(PLAN)
    unknown = [w for w in selected if w not in PLAN]
    if unknown:
        parser.error(f"unknown workloads {unknown}; choose from {list(PLAN)}")
    return _run(args, selected)


def _run(args: argparse.Namespace, selected: list[str]) -> int:
    """The benchmark proper: header, import times, every workload, goals, summary."""
    if args.dir:
        os.makedirs(args.dir, exist_ok=True)
        scratch = os.path.abspath(args.dir)
        own_scratch = False
    else:
        scratch = tempfile.mkdtemp(prefix="tfckpt-bench-")
        own_scratch = True

    # tfckpt's location, made absolute for the workers.
    probe = subprocess.run(
        [sys.executable, "-c", "import os, tfckpt; print(os.path.abspath(tfckpt.__file__))"],
        env=child_env(None),
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        raise SystemExit(f"tfckpt is not importable (run with PYTHONPATH=src):\n{probe.stderr}")
    env = child_env(os.path.dirname(os.path.dirname(probe.stdout.strip())))

    have = {
        m: importlib.util.find_spec(m) is not None
        for m in ("tensorflow", "safetensors", "crc32c", "numpy")
    }
    if not have["numpy"] or not have["crc32c"]:
        raise SystemExit("numpy and crc32c are required")
    info = machine_info(env, scratch)
    start = time.perf_counter()
    print_header(info, args, scratch, have)

    imports = None
    if not args.skip_imports:
        progress("measuring import times")
        imports = measure_imports(env, args.repeat, have["tensorflow"])
        print_imports(imports)

    res = Results()
    try:
        for wl in selected:
            run_workload(wl, args, scratch, env, res, have)
            print_table(res, wl)
    finally:
        if own_scratch and not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)

    targets = compute_targets(res, imports, info["tfckpt_fsyncs"])
    print_targets(targets, args.scale, info["tfckpt_fsyncs"])
    elapsed = time.perf_counter() - start
    print_summary(res, elapsed, scratch, args.keep)
    if args.json:
        write_json(
            args.json,
            info=info,
            args=args,
            imports=imports,
            res=res,
            targets=targets,
            elapsed=elapsed,
        )
    if res.failures:
        return 1
    if res.errors:
        return 2
    return 0
