"""The parent side: runs a workload's rows, each in a fresh worker process."""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from typing import Any

from .context import DATA_SUFFIX, Paths
from .plan import PLAN, WORKLOAD_NOTES, needed_module, row_label
from .report import fmt_s
from .results import Results

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def child_env(tfckpt_root: str | None) -> dict[str, str]:
    """This environment, quieter TensorFlow logs, and ``tfckpt_root`` first on PYTHONPATH."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if tfckpt_root:
        parts = [tfckpt_root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join(parts)
    return env


def run_worker(spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """Runs ``python tools/bench --worker SPEC`` and returns the result it wrote."""
    result_path = spec["result"]
    try:
        os.remove(result_path)
    except FileNotFoundError:
        pass
    proc = subprocess.run(
        [sys.executable, PACKAGE_DIR, "--worker", json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    try:
        with open(result_path) as f:
            result = json.load(f)
    except (OSError, ValueError):
        result = {"status": "ERROR", "detail": f"worker exited with {proc.returncode}"}
    if result["status"] == "ERROR":
        tail = "\n".join((proc.stderr or "").strip().splitlines()[-15:])
        result["stderr"] = tail
    return result


def _same_files(a_prefix: str, b_prefix: str) -> bool | None:
    pairs = [(a_prefix + s, b_prefix + s) for s in (".index", DATA_SUFFIX)]
    if not all(os.path.exists(x) and os.path.exists(y) for x, y in pairs):
        return None
    return all(filecmp.cmp(x, y, shallow=False) for x, y in pairs)


def _data_files(prefix: str) -> list[str]:
    folder, base = os.path.split(prefix)
    if not os.path.isdir(folder):
        return []
    return sorted(n for n in os.listdir(folder) if n.startswith(base + ".data-"))


def _generate(wl: str, base_spec: dict[str, Any], results_dir: str, env: dict[str, str]) -> Any:
    """Writes the workload's SHA-256 manifest (in a worker) and returns it."""
    progress(f"[{wl}] generating workload and its SHA-256 manifest")
    man = run_worker(
        {
            **base_spec,
            "section": "manifest",
            "lib": "-",
            "result": os.path.join(results_dir, "manifest.json.result"),
        },
        env,
    )
    if man["status"] != "OK":
        raise SystemExit(f"[{wl}] could not generate the workload: {man}")
    with open(os.path.join(base_spec["wdir"], "manifest.json")) as f:
        return json.load(f)


def _record(
    res: Results, row: dict[str, Any], out: dict[str, Any], nbytes: int, wall: float
) -> None:
    """Adds a worker's result to ``row`` and reports it."""
    wl, section, label = row["workload"], row["section"], row["label"]
    row.update(out)
    if out["status"] == "OK":
        row["median"] = statistics.median(out["times"])
        row["gbps"] = (
            nbytes / row["median"] / 1e9 if section != "list" and row["median"] > 0 else None
        )
        progress(
            f"[{wl}] {section:<10} {label:<66} {fmt_s(row['median']):>9} s  "
            f"peak {out['peak_kib'] / 1024:,.0f} MiB  ({wall:.1f} s wall)"
        )
    else:
        progress(f"[{wl}] {section:<10} {label:<66} {out['status']}: {out.get('detail')}")
        if out["status"] == "FAIL":
            print(f"FAIL [{wl}] {section} {label}: {out.get('detail')}", flush=True)
            res.failures.append(f"{wl} {section} {label}: {out.get('detail')}")
        elif out["status"] == "ERROR":
            res.errors.append(f"{wl} {section} {label}: {out.get('detail')}")
            if out.get("stderr"):
                progress(out["stderr"])
    res.rows.append(row)


def _after_section(
    res: Results, wl: str, section: str, paths: Paths, notes: list[str], keep: bool
) -> None:
    """The reference row and byte-identity notes that follow some sections."""
    if section == "read_zc":
        # TF has no zero-copy read: show its owned read beside it, for the ratio.
        tf_row = res.get(wl, "read", "tf")
        if tf_row is not None:
            ref = dict(
                tf_row,
                section="read_zc",
                reference=True,
                label="TF  get_tensor loop (owned; TF has no zero-copy read)",
            )
            res.rows.append(ref)
    if section == "save_obj":
        same = _same_files(paths.obj_tfckpt, paths.obj_tf)
        if same is not None:
            differ = (
                "NOT byte-identical (both were verified against the data; TF's object graph "
                "records each tf.Variable's own name as full_name, tfckpt the attribute path)."
            )
            notes.append(
                "object-based checkpoints of tfckpt and TF are "
                + ("byte-identical." if same else differ)
            )
        if not keep:
            for d in (paths.obj_tfckpt, paths.obj_tf):
                shutil.rmtree(os.path.dirname(d), ignore_errors=True)
    if section == "save":
        same = _same_files(paths.tfckpt, paths.tf)
        if same is not None:
            notes.append(
                "tfckpt save_tensors and TF SaveV2 files are "
                + ("byte-identical." if same else "NOT byte-identical.")
            )
    if section == "save_sharded":
        counts = []
        for label, prefix in (
            ("tfckpt save_tensors", paths.sharded_tfckpt),
            ("tfckpt Checkpoint.write", paths.sharded_obj_tfckpt),
            ("TF Checkpoint.write", paths.sharded_tf),
        ):
            shards = _data_files(prefix)
            if shards:
                counts.append(f"{label} {len(shards)}")
        if counts:
            notes.append("sharded saves, data files: " + ", ".join(counts) + ".")
        if not keep:
            for d in (paths.sharded_tfckpt, paths.sharded_obj_tfckpt, paths.sharded_tf):
                shutil.rmtree(os.path.dirname(d), ignore_errors=True)
    if section == "save_async" and not keep:
        shutil.rmtree(paths.async_dir, ignore_errors=True)
    if section == "ns_save":
        same = _same_files(paths.ns_tfckpt, paths.ns_tf)
        if same is not None:
            notes.append(
                "tfckpt and TF NumpyState checkpoints are "
                + ("byte-identical." if same else "NOT byte-identical.")
            )


def run_workload(
    wl: str,
    args: argparse.Namespace,
    scratch: str,
    env: dict[str, str],
    res: Results,
    have: dict[str, bool],
) -> None:
    """Generates workload ``wl`` and runs its rows (PLAN order) into ``res``."""
    wdir = os.path.join(scratch, wl)
    shutil.rmtree(wdir, ignore_errors=True)
    os.makedirs(wdir)
    results_dir = os.path.join(wdir, ".results")
    os.makedirs(results_dir)
    base_spec = {"workload": wl, "scale": args.scale, "wdir": wdir, "repeat": args.repeat}
    manifest = _generate(wl, base_spec, results_dir, env)
    res.meta[wl] = {
        "title": manifest["title"],
        "nbytes": manifest["nbytes"],
        "count": len(manifest["tensors"]),
    }
    notes = res.notes.setdefault(wl, [])
    notes.extend(WORKLOAD_NOTES.get(wl, []))
    paths = Paths(wdir)
    n = 0
    for section, libs in PLAN[wl]:
        for lib in libs:
            label = row_label(wl, section, lib)
            row: dict[str, Any] = {"workload": wl, "section": section, "lib": lib, "label": label}
            module = needed_module(lib)
            if module and not have.get(module, True):
                row.update(status="SKIP", detail=f"{module} is not importable")
                res.rows.append(row)
                continue
            n += 1
            spec = {
                **base_spec,
                "section": section,
                "lib": lib,
                "result": os.path.join(results_dir, f"{n:03d}.json"),
            }
            start = time.perf_counter()
            out = run_worker(spec, env)
            _record(res, row, out, manifest["nbytes"], time.perf_counter() - start)
        _after_section(res, wl, section, paths, notes, args.keep)
    if not args.keep:
        shutil.rmtree(wdir, ignore_errors=True)
