"""The remote benchmark: a checkpoint on local servers, read and written through fsspec.

Usage (from the repository root; needs the ``remote`` extra and moto)::

    PYTHONPATH=src python tools/bench --remote               # 1 GiB, ~9 min
    PYTHONPATH=src python tools/bench --remote --scale 0.25  # quick

The checkpoint (fixed seed): 63 float32 tensors of 16 MiB and 1,000 small ones
(1 GiB x scale in all), written once by ``save_tensors`` into one data shard.  It is
served by two servers, each in its own process (``remote_servers.py``) and counting the
requests it answered and the body bytes it sent:

- ``s3``: moto's S3 server (the one the tests use), through s3fs;
- ``http``: a static file server over the checkpoint's directory (``sendfile``, Range,
  strong ETags), through fsspec's HTTP filesystem.

Rows, each in a fresh child process (one warm-up, then ``--repeat`` timed runs, median):

- ``read all``: ``load_tensors(url)`` (checksums verified) beside fsspec's own ``cat`` of
  the same files (the limit: one plain GET per file, no checksums), and TensorFlow's
  ``tf.train.load_checkpoint(url)`` where TensorFlow can open the URL; on ``s3`` also with
  ``tfckpt.storage.remote.REQUEST_BYTES`` raised so that each file is one request (see
  the server limit below);
- ``one tensor``: ``load_checkpoint(url).get_tensor(name)`` of one 16 MiB tensor, cold:
  requests and bytes from the first call, time as the median of fresh opens;
- ``save`` (s3): ``save_tensors(url, arrays)`` beside fsspec's ``pipe`` of the same bytes as
  one object, and the peak memory a save adds to the process (VmHWM after the save minus
  VmRSS before it, the arrays already made).

Values read are checked against the SHA-256 of the generated arrays; files read raw
against the local files' bytes.  Goals (issue 13): read-all throughput >= 0.9x the raw
``cat``; one tensor <= its size + the index + 1 MiB; a streamed save's added peak <= 1.2x
the largest tensor + 64 MiB.

Known server limit: moto answers a ranged GET by copying the whole object out of its
buffer first, so on ``s3`` every ranged request costs the whole object's size on the server
(the raw ``cat`` pays it once).  The ``http`` rows are the ones that show what the client
does; the ``s3`` rows show what moto makes of it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
BUCKET = "bench"
MiB = 1 << 20
BIG_TENSORS = 63
SMALL_TENSORS = 1000


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _arrays(scale: float) -> dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(13)
    big = max(1, int(16 * MiB * scale) // 4)
    small_total = int(16 * MiB * scale) // 4
    arrays = {f"layer_{i:02d}/kernel": rng.standard_normal(big, np.float32) for i in range(63)}
    each = max(1, small_total // SMALL_TENSORS)
    for i in range(SMALL_TENSORS):
        arrays[f"small/{i:04d}/bias"] = rng.standard_normal(each, np.float32)
    return arrays


def _digest(arrays: dict[str, Any]) -> str:
    import numpy as np

    digest = hashlib.sha256()
    for name in sorted(arrays):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(arrays[name]).tobytes())
    return digest.hexdigest()


def _status_rss() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process, in bytes."""
    values = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024
    return values["VmRSS"], values["VmHWM"]


def _reset_hwm() -> None:
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # resets VmHWM to VmRSS (Linux)


# -- the child: one row ---------------------------------------------------------------------


def _counts(spec: dict[str, Any]) -> dict[str, Any]:
    with urllib.request.urlopen(spec["server"] + "/__bench__/counts") as answer:
        return dict(json.load(answer))


def _reset(spec: dict[str, Any]) -> None:
    request = urllib.request.Request(spec["server"] + "/__bench__/reset", method="POST")
    urllib.request.urlopen(request).close()


def _filesystem(spec: dict[str, Any]) -> Any:
    import fsspec

    return fsspec.filesystem(spec["protocol"], skip_instance_cache=True, **spec["options"])


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """One row: timings, server counts of the first run, and whether the values were right."""
    import numpy as np

    import tfckpt

    row = spec["row"]
    url, options = spec["url"], spec["options"]
    if row == "read_tfckpt_whole":
        from tfckpt.storage import remote

        remote.REQUEST_BYTES = 1 << 40  # one request per file: what moto's cost asks for
    times: list[float] = []
    first_counts: dict[str, Any] | None = None
    check: Any = None
    for attempt in range(spec["repeat"] + 1):
        if row == "save_tfckpt" or row == "save_raw":
            _clean(spec)
        _reset(spec)
        started = time.perf_counter()
        if row in ("read_tfckpt", "read_tfckpt_whole"):
            check = tfckpt.load_tensors(url, storage_options=options)
        elif row == "read_raw":
            fs = _filesystem(spec)
            check = fs.cat(spec["files"])
        elif row == "one_tfckpt":
            reader = tfckpt.load_checkpoint(url, storage_options=options)
            check = reader.get_tensor(spec["tensor"])
            reader.close()
        elif row == "save_tfckpt":
            if attempt == 0:
                arrays = _arrays(spec["scale"])
                started = time.perf_counter()
            tfckpt.save_tensors(url, arrays, storage_options=options)
        elif row == "save_raw":
            if attempt == 0:
                payload = b"".join(a.tobytes() for a in _arrays(spec["scale"]).values())
                fs = _filesystem(spec)
                started = time.perf_counter()
            fs.pipe_file(spec["raw_path"], payload)
        elif row == "save_rss":
            arrays = _arrays(spec["scale"])
            # A save first, of one small tensor, so that the filesystem's modules and
            # connections count as the process's, not as the big save's.
            warm = {"w": np.zeros(16, np.float32)}
            tfckpt.save_tensors(url + "-warm", warm, storage_options=options)
            _clean(spec)
            before, _ = _status_rss()
            _reset_hwm()
            tfckpt.save_tensors(url, arrays, storage_options=options)
            _, peak = _status_rss()
            return {"status": "OK", "added_peak": peak - before, "rss_before": before}
        elif row == "read_tf":
            return _tf_read(url)
        else:
            raise SystemExit(f"unknown row {row}")
        elapsed = time.perf_counter() - started
        if first_counts is None:
            first_counts = _counts(spec)
        if attempt:
            times.append(elapsed)
    ok: bool | None = None
    if row in ("read_tfckpt", "read_tfckpt_whole"):
        ok = _digest(check) == spec["digest"]
    elif row == "read_raw":
        ok = all(
            hashlib.sha256(check[name]).hexdigest() == digest
            for name, digest in spec["file_digests"].items()
        )
    elif row == "one_tfckpt":
        expected = _arrays(spec["scale"])[spec["tensor"]]
        ok = bool(np.array_equal(check, expected))
    return {"status": "OK", "times": times, "counts": first_counts, "correct": ok}


def _clean(spec: dict[str, Any]) -> None:
    fs = _filesystem(spec)
    for path in fs.glob(spec["write_glob"]):
        fs.rm_file(path)


def _tf_read(url: str) -> dict[str, Any]:
    try:
        import tensorflow as tf
    except ImportError:
        return {"status": "SKIP", "detail": "tensorflow is not installed"}
    try:
        reader = tf.train.load_checkpoint(url)
        reader.get_variable_to_shape_map()
    except Exception as exc:  # what TensorFlow says about the URL
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return {"status": "UNSUPPORTED", "detail": f"{type(exc).__name__}: {first[:160]}"}
    return {"status": "OK", "detail": "TensorFlow opened the URL (not timed)"}


# -- the parent ----------------------------------------------------------------------------


class Server:
    def __init__(self, args: list[str], port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                os.path.join(HERE, "remote_servers.py"),
                args[0],
                str(port),
                *args[1:],
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.url + "/__bench__/counts").close()
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise SystemExit(f"the {args[0]} server did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def _run_child(spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    try:
        return dict(json.loads(proc.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        tail = "\n".join(proc.stderr.strip().splitlines()[-12:])
        return {"status": "ERROR", "detail": tail}


def _mib(n: float) -> str:
    return f"{n / MiB:,.1f} MiB"


def run(scale: float, repeat: int, env: dict[str, str], json_path: str | None) -> int:
    """Builds the checkpoint, starts both servers, runs every row and prints the report."""
    import numpy as np

    import tfckpt

    scratch = tempfile.mkdtemp(prefix="tfckpt-remote-bench-")
    servers: list[Server] = []
    report: dict[str, Any] = {"scale": scale, "repeat": repeat, "rows": {}}
    failed = False
    try:
        arrays = _arrays(scale)
        local = os.path.join(scratch, "http", "model")
        os.makedirs(os.path.dirname(local))
        tfckpt.save_tensors(local, arrays)
        files = sorted(n for n in os.listdir(os.path.dirname(local)))
        sizes = {n: os.path.getsize(os.path.join(scratch, "http", n)) for n in files}
        total = sum(sizes.values())
        index_bytes = sizes["model.index"]
        tensor = "layer_31/kernel"
        tensor_bytes = int(arrays[tensor].nbytes)
        largest = max(int(a.nbytes) for a in arrays.values())
        digest = _digest(arrays)
        del arrays
        print(
            f"checkpoint: {len(files)} files, {_mib(total)} ({BIG_TENSORS} tensors of "
            f"{_mib(tensor_bytes)}, {SMALL_TENSORS} small; index {index_bytes:,} bytes)"
        )

        s3 = Server(["s3"], _free_port())
        servers.append(s3)
        http = Server(["http", os.path.join(scratch, "http")], _free_port())
        servers.append(http)
        s3_options = {
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"endpoint_url": s3.url, "region_name": "us-west-2"},
        }
        import s3fs

        fs = s3fs.S3FileSystem(**s3_options, skip_instance_cache=True)
        fs.mkdir(BUCKET)
        for name in files:
            fs.put_file(os.path.join(scratch, "http", name), f"{BUCKET}/read/{name}")

        file_digests = {}
        for name in files:
            with open(os.path.join(scratch, "http", name), "rb") as file:
                file_digests[name] = hashlib.sha256(file.read()).hexdigest()
        stores = {
            "s3": {
                "protocol": "s3",
                "options": s3_options,
                "url": f"s3://{BUCKET}/read/model",
                "files": [f"{BUCKET}/read/{n}" for n in files],
                "server": s3.url,
            },
            "http": {
                "protocol": "http",
                "options": {},
                "url": f"{http.url}/model",
                "files": [f"{http.url}/{n}" for n in files],
                "server": http.url,
            },
        }
        common = {"scale": scale, "repeat": repeat, "digest": digest, "tensor": tensor}
        for store, where in stores.items():
            reads = ["read_raw", "read_tfckpt", "one_tfckpt", "read_tf"]
            if store == "s3":
                reads.insert(2, "read_tfckpt_whole")
            for row in reads:
                spec = {**common, **where, "row": row}
                spec["file_digests"] = {
                    path: file_digests[os.path.basename(path)] for path in where["files"]
                }
                print(f"[{store}] {row} ...", file=sys.stderr, flush=True)
                report["rows"][f"{store}/{row}"] = _run_child(spec, env)
        write = {
            **stores["s3"],
            "url": f"s3://{BUCKET}/write/model",
            "raw_path": f"{BUCKET}/write/raw.bin",
            "write_glob": f"{BUCKET}/write/*",
        }
        for row in ("save_raw", "save_tfckpt", "save_rss"):
            print(f"[s3] {row} ...", file=sys.stderr, flush=True)
            report["rows"][f"s3/{row}"] = _run_child({**common, **write, "row": row}, env)
        failed = _print_report(report, total, index_bytes, tensor_bytes, largest)
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    if json_path:
        with open(json_path, "w") as out:
            json.dump(report, out, indent=2)
    del np
    return 1 if failed else 0


def _print_report(
    report: dict[str, Any], total: int, index_bytes: int, tensor_bytes: int, largest: int
) -> bool:
    rows = report["rows"]
    failed = False

    def median(name: str) -> float | None:
        row = rows.get(name, {})
        return statistics.median(row["times"]) if row.get("status") == "OK" else None

    print()
    print(f"{'row':<22}{'median':>10}{'MiB/s':>10}{'requests':>10}{'body bytes':>16}  correct")
    for name, row in rows.items():
        if row.get("status") != "OK" or "times" not in row:
            if "added_peak" in row:
                continue
            print(f"{name:<22}{row.get('status')}: {row.get('detail', '')}")
            continue
        t = statistics.median(row["times"])
        counts = row["counts"]
        moved = total if "read" in name or "save" in name else tensor_bytes
        print(
            f"{name:<22}{t:>9.3f}s{moved / MiB / t:>10.1f}{counts['requests']:>10}"
            f"{counts['body_bytes']:>16,}  {row['correct']}"
        )
        failed |= row["correct"] is False
    print()
    print("goals")
    for store in ("s3", "http"):
        raw, ours = median(f"{store}/read_raw"), median(f"{store}/read_tfckpt")
        if raw and ours:
            ratio = raw / ours
            print(
                f"  [{store}] read all: throughput {ratio:.2f}x the raw cat (goal >= 0.9): "
                f"{'met' if ratio >= 0.9 else 'NOT met'}"
            )
        one = rows.get(f"{store}/one_tfckpt", {})
        if one.get("status") == "OK":
            fetched = one["counts"]["body_bytes"]
            limit = tensor_bytes + index_bytes + MiB
            print(
                f"  [{store}] one tensor: {one['counts']['requests']} requests, "
                f"{fetched:,} body bytes for a {tensor_bytes:,}-byte tensor and a "
                f"{index_bytes:,}-byte index (goal <= {limit:,}): "
                f"{'met' if fetched <= limit else 'NOT met'}"
            )
    raw, ours = median("s3/save_raw"), median("s3/save_tfckpt")
    if raw and ours:
        print(f"  [s3] save: {raw / ours:.2f}x the raw pipe's throughput (no goal)")
    rss = rows.get("s3/save_rss", {})
    if rss.get("status") == "OK":
        limit = 1.2 * largest + 64 * MiB
        added = rss["added_peak"]
        print(
            f"  [s3] streamed save: peak memory added {_mib(added)} (goal <= 1.2 x "
            f"{_mib(largest)} + 64 MiB = {_mib(limit)}): "
            f"{'met' if added <= limit else 'NOT met'}"
        )
    return failed


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(child(json.loads(sys.argv[2]))))
