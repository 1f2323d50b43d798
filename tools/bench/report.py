"""What the benchmark prints (header, import times, one table per workload, goals,
summary) and the JSON it writes."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .plan import SECTIONS
from .results import Results

MIB = 1 << 20


def fmt_s(t: float | None) -> str:
    if t is None:
        return "-"
    if t >= 100:
        return f"{t:.1f}"
    if t >= 1:
        return f"{t:.3f}"
    if t >= 0.01:
        return f"{t:.4f}"
    return f"{t:.6f}"


def print_header(
    info: dict[str, Any], args: argparse.Namespace, scratch: str, have: dict[str, bool]
) -> None:
    print("=== tfckpt benchmark ===")
    print(
        f"machine : {info['cpu']}, {info['cores']} cores, {info.get('ram_gib', '?')} GiB RAM; "
        f"{info['os']}"
    )
    print(
        f"python  : {info['python']}   numpy {info['numpy']}   tensorflow {info['tensorflow']}   "
        f"safetensors {info['safetensors']}   crc32c {info['crc32c']}   "
        f"protobuf {info['protobuf']}"
    )
    print(f"tfckpt  : {info['tfckpt']}; save_tensors default {info['tfckpt_save_default']}")
    print(f"scratch : {scratch}  [{info['scratch_fs']}]")
    print(
        f"run     : scale {args.scale:g}, {args.repeat} timed repetitions after 1 warm-up "
        "(>= 9 when a run takes < 0.1 s), medians; warm page cache (cannot drop it without "
        "root); each row in a fresh subprocess; peak RSS = the child's VmHWM"
    )
    print(
        "ratios  : 'vs tfckpt' = row time / tfckpt time in the same section (> 1: tfckpt is "
        "faster); '±%' = (max - min) / median of the timed runs; 'Δ MiB' = peak RSS minus RSS "
        "before the first run"
    )
    for peer in ("tensorflow", "safetensors"):
        if not have[peer]:
            print(f"note    : {peer} is not importable: its rows are skipped")
    sys.stdout.flush()


def print_imports(imports: dict[str, Any]) -> None:
    print("\n=== import time (fresh interpreter each; median minus bare `python -c pass`) ===")
    print(f"    bare interpreter startup  {imports['interpreter_s']:.3f} s")
    print(f"    import tfckpt             {imports['tfckpt']:.3f} s")
    if "tensorflow" in imports:
        ratio = imports["tensorflow"] / imports["tfckpt"] if imports["tfckpt"] > 0 else 0
        print(
            f"    import tensorflow         {imports['tensorflow']:.3f} s   ({ratio:.0f}x tfckpt)"
        )
    sys.stdout.flush()


def print_table(res: Results, wl: str, out: Any = sys.stdout) -> None:
    """One workload's rows, section by section, with ratios to the section's tfckpt row."""
    meta = res.meta[wl]
    mib = meta["nbytes"] / MIB
    print(f"\n=== {meta['title']} ===", file=out)
    print(f"    {meta['count']:,} tensors, {mib:,.1f} MiB of payload; warm page cache", file=out)
    header = (
        f"    {'library / operation':<66} {'median s':>9} {'±%':>4} {'GB/s':>6} "
        f"{'peak MiB':>9} {'Δ MiB':>7} {'vs tfckpt':>9}"
    )
    print(header, file=out)
    for section in dict.fromkeys(r["section"] for r in res.rows if r["workload"] == wl):
        print(f"  {SECTIONS[section]}", file=out)
        rows = [r for r in res.rows if r["workload"] == wl and r["section"] == section]
        ref = res.median(wl, section, "tfckpt")
        for r in rows:
            label = r["label"]
            if r["status"] != "OK":
                print(f"    {label:<66} {r['status']}: {r.get('detail', '')}", file=out)
                continue
            med = r["median"]
            spread = (max(r["times"]) - min(r["times"])) / med * 100 if med else 0.0
            gbps = f"{r['gbps']:.2f}" if r.get("gbps") is not None else "-"
            ratio = f"{med / ref:.2f}x" if ref else "-"
            peak = f"{r['peak_kib'] / 1024:,.0f}"
            delta = f"{(r['peak_kib'] - r['baseline_kib']) / 1024:+,.0f}"
            if r.get("reference"):
                peak = delta = "(above)"
            print(
                f"    {label:<66} {fmt_s(med):>9} {spread:>4.0f} {gbps:>6} {peak:>9} "
                f"{delta:>7} {ratio:>9}",
                file=out,
            )
    for note in res.notes.get(wl, []):
        print(f"    note: {note}", file=out)
    out.flush()


def print_targets(targets: list[dict[str, Any]], scale: float, tfckpt_fsyncs: bool) -> None:
    print("\n=== ISSUE TARGETS (computed from this run) ===")
    if scale != 1.0:
        print(
            f"    (scale {scale:g}: the targets are stated for --scale 1.0; small sizes weigh "
            "fixed costs more)"
        )
    for t in targets:
        status = {True: "MET", False: "NOT MET", None: "n/a"}[t["met"]]
        if t.get("info") and t["value"] is not None:
            status = "info"
        extra = f"  ({t['why']})" if t.get("why") else ""
        print(
            f"  [{status:^7}] {t['target']:<76} goal {t['goal']:<12} measured {t['shown']}{extra}"
        )
    met = sum(1 for t in targets if t["met"] is True)
    missed = sum(1 for t in targets if t["met"] is False)
    info = sum(1 for t in targets if t.get("info") and t["value"] is not None)
    unmeasured = len(targets) - met - missed - info
    print(f"  {met} met, {missed} not met, {unmeasured} not measured, {info} reported")
    print(
        "  raw-limit ceiling = peer time / raw hardware-limit time: the ratio tfckpt would reach "
        "if it ran at that limit."
    )
    if tfckpt_fsyncs:
        print(
            "  tfckpt's default save fsyncs, so its saves are held to write+fsync; TF "
            "SaveV2/Checkpoint.write, safetensors and numpy do not fsync."
        )
    else:
        print(
            "  Saves are held to write without fsync: neither tfckpt's default save "
            "(durable=False) nor TF, safetensors or numpy fsync."
        )


def print_summary(res: Results, elapsed: float, scratch: str, keep: bool) -> None:
    print(f"\ntotal wall time {elapsed:.0f} s" + (f"; files kept in {scratch}" if keep else ""))
    if res.failures:
        print(f"\nFAIL: {len(res.failures)} correctness failure(s):")
        for failure in res.failures:
            print(f"  FAIL {failure}")
    if res.errors:
        print(f"\nERROR: {len(res.errors)} row(s) crashed:")
        for error in res.errors:
            print(f"  ERROR {error}")


def write_json(
    path: str,
    *,
    info: dict[str, Any],
    args: argparse.Namespace,
    imports: dict[str, Any] | None,
    res: Results,
    targets: list[dict[str, Any]],
    elapsed: float,
) -> None:
    payload = {
        "machine": info,
        "args": {k: v for k, v in vars(args).items() if k != "worker"},
        "imports": imports,
        "workloads": {wl: {**res.meta[wl], "notes": res.notes.get(wl, [])} for wl in res.meta},
        "rows": res.rows,
        "targets": targets,
        "failures": res.failures,
        "errors": res.errors,
        "wall_s": elapsed,
    }
    with open(path, "w") as f:
        json.dump(payload, f, indent=1)
    print(f"results written to {path}")
