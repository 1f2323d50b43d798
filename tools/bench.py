#!/usr/bin/env python3
"""Benchmark tfckpt beside TensorFlow, safetensors, NumPy and the raw hardware limits.

Usage (from the repository root)::

    PYTHONPATH=src python tools/bench.py                 # full size (W1 = 1 GiB), ~5 min
    PYTHONPATH=src python tools/bench.py --scale 0.05    # quick run, ~2 min
    PYTHONPATH=src python tools/bench.py --only W1,W3 --repeat 5 --json /tmp/bench.json

Workloads (tools/bench_workloads.py, fixed seeds) are generated into a scratch directory
(``--dir``, default a temporary directory, removed unless ``--keep``):

    W1  1 GiB of float32 in 16 tensors            W3  one string tensor of 1,000,000 strings
    W2  20,000 small float32 tensors              W4  NumpyState with 8 arrays, 256 MiB

Each library writes every workload once in its own format (the last timed save is the file
the read benchmarks use); tfckpt and TensorFlow also read each other's V2 files.

Method.  Every (operation, library) pair runs in a fresh subprocess (this file with the
hidden ``--worker`` option): it builds its inputs untimed, runs one warm-up and then
``--repeat`` timed repetitions (at least 9 when one takes under 0.1 s) with
``time.perf_counter``, and reports the median.  Peak RSS is the child's VmHWM from
/proc/self/status, i.e. the whole child process (interpreter, imports, inputs and the
operation); ``ru_maxrss`` is not used because Linux carries the parent's peak into a
child's ``ru_maxrss`` across fork/exec.  Every read result (and every object-based or raw
write) is checked against the SHA-256 of the generated data after the timed repetitions;
a mismatch prints FAIL and the run exits non-zero.  The page cache cannot be dropped
without root, so all numbers are warm-cache.  Save outputs are removed before each
repetition and fsynced after it, untimed, so one writer's dirty pages do not slow the next.

Ratios are ``row time / tfckpt time`` in the same section: above 1 means tfckpt is that
many times faster; the raw rows (hardware limits) are normally below 1.  The target summary
also gives each speed target's "raw-limit ceiling", the ratio tfckpt would reach if it ran
at the matching raw row, so targets this machine cannot reach stand out.  Saves are compared
with the raw write that does what tfckpt's default save does (fsync or not, read from
``save_tensors``' ``durable=`` default); ``save_tensors(durable=True)`` gets its own row.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
MIB = 1 << 20

# -- what runs where ---------------------------------------------------------------------

SECTIONS = {
    "save": "save (flat tensors, each library's own format)",
    "list": "open + list keys",
    "read": "read every tensor into owned arrays (CRC verified where the format has one)",
    "read_zc": "read every tensor zero-copy (memory map), CRC verified",
    "save_obj": "save object-based (Checkpoint(**arrays).write)",
    "ns_save": "NumpyState save (Checkpoint(state=NumpyState).write)",
    "ns_restore": "NumpyState restore (fresh NumpyState, Checkpoint.read)",
}

RAW_READ = ["raw_readinto", "raw_readinto_crc", "raw_readinto_crc_fresh", "raw_crc"]
RAW_WRITE = ["raw_write", "raw_write_fsync"]

PLAN: dict[str, list[tuple[str, list[str]]]] = {
    "W1": [
        ("save", ["tfckpt", "tfckpt_durable", "tf", "safetensors", "numpy", *RAW_WRITE]),
        ("list", ["tfckpt", "tf", "safetensors"]),
        (
            "read",
            [
                "tfckpt",
                "tfckpt_loop",
                "tfckpt_xtf",
                "tf",
                "tf_xtfckpt",
                "safetensors_load_file",
                "safetensors_get_tensor",
                "numpy",
                *RAW_READ,
            ],
        ),
        ("read_zc", ["tfckpt", "tfckpt_loop", "safetensors_mmap", "raw_mmap_crc"]),
        ("save_obj", ["tfckpt", "tf"]),
    ],
    "W2": [
        ("save", ["tfckpt", "tfckpt_durable", "tf", "safetensors", "numpy", *RAW_WRITE]),
        ("list", ["tfckpt", "tf", "safetensors", "numpy"]),
        (
            "read",
            [
                "tfckpt",
                "tfckpt_loop",
                "tfckpt_xtf",
                "tf",
                "tf_xtfckpt",
                "safetensors_load_file",
                "safetensors_get_tensor",
                "numpy",
                *RAW_READ,
            ],
        ),
        ("read_zc", ["tfckpt", "tfckpt_loop", "safetensors_mmap", "raw_mmap_crc"]),
        ("save_obj", ["tfckpt", "tf"]),
    ],
    "W3": [
        ("save", ["tfckpt", "tfckpt_durable", "tf", "numpy", *RAW_WRITE]),
        ("list", ["tfckpt", "tf"]),
        ("read", ["tfckpt", "tfckpt_loop", "tfckpt_xtf", "tf", "tf_xtfckpt", "numpy", *RAW_READ]),
    ],
    "W4": [
        ("ns_save", ["tfckpt", "tf", "safetensors", "numpy", *RAW_WRITE]),
        (
            "ns_restore",
            [
                "tfckpt",
                "tf",
                "safetensors_load_file",
                "numpy",
                "raw_readinto_crc",
                "raw_readinto_crc_fresh",
            ],
        ),
    ],
}

WORKLOAD_NOTES = {
    "W3": [
        "safetensors: skipped (the format has no string dtype).",
        "numpy: np.save of the object array needs allow_pickle=True (pickle).",
    ],
    "W4": [
        "safetensors / numpy rows store the 8 arrays flat (save_file / np.save per "
        "array): a reference point, not NumpyState."
    ],
}

# Library label per (section, lib); the module a row needs.
LIB_LABEL = {
    "tfckpt": "tfckpt",
    "tfckpt_xtf": "tfckpt, reading TF's file",
    "tfckpt_loop": "tfckpt",
    "tfckpt_durable": "tfckpt",
    "tf": "TF",
    "tf_xtfckpt": "TF, reading tfckpt's file",
    "safetensors": "safetensors",
    "safetensors_load_file": "safetensors",
    "safetensors_get_tensor": "safetensors",
    "safetensors_mmap": "safetensors",
    "numpy": "numpy",
}


def needed_module(lib: str) -> str | None:
    """The peer module a row needs (None: tfckpt, numpy or raw only)."""
    if lib in ("tf", "tf_xtfckpt"):
        return "tensorflow"
    if lib.startswith("safetensors"):
        return "safetensors"
    return None


OP_LABEL = {
    ("save", "tfckpt"): "save_tensors (default options)",
    ("save", "tfckpt_durable"): "save_tensors(durable=True): fsyncs files + directory",
    ("save", "tf"): "tf.raw_ops.SaveV2",
    ("save", "safetensors"): "safetensors.numpy.save_file",
    ("save", "numpy"): None,  # depends on the workload, see _numpy_format
    ("list", "tfckpt"): "load_checkpoint().get_variable_to_shape_map()",
    ("list", "tf"): "tf.train.load_checkpoint().get_variable_to_shape_map()",
    ("list", "safetensors"): "safe_open().keys()",
    ("list", "numpy"): "np.load(npz).files",
    ("read", "tfckpt"): "load_tensors() (bulk)",
    ("read", "tfckpt_loop"): "get_tensor(copy=True) loop",
    ("read", "tfckpt_xtf"): "load_tensors() (bulk)",
    ("read", "tf"): "get_tensor loop",
    ("read", "tf_xtfckpt"): "get_tensor loop",
    ("read", "safetensors_load_file"): "load_file (no checksum in format)",
    ("read", "safetensors_get_tensor"): "safe_open().get_tensor loop (no checksum)",
    ("read", "numpy"): None,
    ("read_zc", "tfckpt"): "load_tensors(copy=False) (bulk)",
    ("read_zc", "tfckpt_loop"): "get_tensor(copy=False) loop",
    ("read_zc", "safetensors_mmap"): "mmap + np.frombuffer + crc32c per tensor",
    ("save_obj", "tfckpt"): "tfckpt.Checkpoint(**arrays).write",
    ("save_obj", "tf"): "tf.train.Checkpoint(**variables).write",
    ("ns_save", "tfckpt"): "tfckpt.NumpyState + Checkpoint.write",
    ("ns_save", "tf"): "TF-Agents-style NumpyState + tf.train.Checkpoint.write",
    ("ns_save", "safetensors"): "save_file (flat reference)",
    ("ns_save", "numpy"): "np.save per array (flat reference)",
    ("ns_restore", "tfckpt"): "tfckpt.NumpyState + Checkpoint.read",
    ("ns_restore", "tf"): "TF-Agents-style NumpyState + tf.train.Checkpoint.read",
    ("ns_restore", "safetensors_load_file"): "load_file (flat reference)",
    ("ns_restore", "numpy"): "np.load per array (flat reference)",
}
RAW_LABEL = {
    "raw_readinto": "readinto, preallocated buffer (no CRC)",
    "raw_readinto_crc": "readinto+CRC, preallocated buffer",
    "raw_readinto_crc_fresh": "readinto+CRC, fresh buffer each time",
    "raw_crc": "crc32c of the bytes already in memory",
    "raw_mmap_crc": "mmap+CRC",
    "raw_write": "open/write/close (no fsync)",
    "raw_write_fsync": "open/write/fsync/close",
}

DATA_SUFFIX = ".data-00000-of-00001"


def _numpy_format(workload: str) -> str:
    return {"W2": "npz", "W3": "pickle"}.get(workload, "npy")


def row_label(workload: str, section: str, lib: str) -> str:
    if lib.startswith("raw_"):
        return f"raw  {RAW_LABEL[lib]}"
    op = OP_LABEL.get((section, lib))
    if op is None and lib == "numpy":
        fmt = _numpy_format(workload)
        save = section in ("save", "ns_save")
        op = {
            "npz": "np.savez (one .npz)" if save else "np.load(.npz)[key] loop",
            "pickle": "np.save(allow_pickle=True)" if save else "np.load(allow_pickle=True)",
            "npy": "np.save per array" if save else "np.load per array",
        }[fmt]
    return f"{LIB_LABEL[lib]}  {op}"


# =========================================================================================
# Worker side: one (workload, section, lib) per process.
# =========================================================================================


class Mismatch(Exception):
    """A library returned data that differs from what was generated."""


class Skip(Exception):
    """The row cannot run here (peer not importable, input missing)."""


class Bench:
    def __init__(
        self,
        run: Callable[[], Any],
        *,
        prepare: Callable[[], None] | None = None,
        after: Callable[[], None] | None = None,
        verify: Callable[[Any], None] | None = None,
    ) -> None:
        self.run = run
        self.prepare = prepare
        self.after = after
        self.verify = verify


class Paths:
    def __init__(self, wdir: str) -> None:
        self.wdir = wdir
        self.tfckpt = os.path.join(wdir, "tfckpt", "ckpt")
        self.tf = os.path.join(wdir, "tf", "ckpt")
        self.safetensors = os.path.join(wdir, "safetensors", "model.safetensors")
        self.numpy = os.path.join(wdir, "numpy")
        self.obj_tfckpt = os.path.join(wdir, "obj_tfckpt", "ckpt")
        self.obj_tf = os.path.join(wdir, "obj_tf", "ckpt")
        self.ns_tfckpt = os.path.join(wdir, "ns_tfckpt", "ckpt")
        self.ns_tf = os.path.join(wdir, "ns_tf", "ckpt")
        self.raw_out = os.path.join(wdir, "raw", "out.bin")


class Ctx:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.wl: str = spec["workload"]
        self.scale: float = spec["scale"]
        self.wdir: str = spec["wdir"]
        self.p = Paths(self.wdir)
        with open(os.path.join(self.wdir, "manifest.json")) as f:
            self.man: dict[str, Any] = json.load(f)

    def data(self) -> dict[str, Any]:
        import bench_workloads

        return bench_workloads.generate(self.wl, self.scale)

    def raw_source(self) -> str:
        prefix = self.p.ns_tfckpt if self.wl == "W4" else self.p.tfckpt
        path = prefix + DATA_SUFFIX
        if not os.path.exists(path):
            raise Skip(f"no tfckpt data file at {path} (did the tfckpt save fail?)")
        return path


# -- helpers -------------------------------------------------------------------------------


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


def _fresh_dir(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, exist_ok=True)


def _fsync_tree(path: str) -> None:
    """Flushes every file under ``path`` (untimed, after a save) and the directory."""
    for root, _dirs, files in os.walk(path):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fd = os.open(root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _need(path: str, what: str) -> str:
    if not os.path.exists(path):
        raise Skip(f"{what} missing at {path} (did its save fail?)")
    return path


def check_tensors(got: dict[str, Any], man: dict[str, Any], what: str) -> None:
    import numpy as np
    from bench_workloads import digest

    expected = man["tensors"]
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    if missing or extra:
        raise Mismatch(f"{what}: tensor names differ (missing {missing[:3]}, extra {extra[:3]})")
    for name, info in expected.items():
        value = np.asarray(got[name])
        dtype = "object" if value.dtype == object else value.dtype.str
        if dtype != info["dtype"] or list(value.shape) != info["shape"]:
            raise Mismatch(
                f"{what}: {name!r} is {dtype} {list(value.shape)}, expected "
                f"{info['dtype']} {info['shape']}"
            )
        if digest(value) != info["sha256"]:
            raise Mismatch(f"{what}: {name!r} has the wrong contents (SHA-256 differs)")


def check_names(names: Any, man: dict[str, Any], what: str) -> None:
    if sorted(names) != sorted(man["tensors"]):
        raise Mismatch(f"{what}: listed {len(list(names))} names, expected {len(man['tensors'])}")


def check_shape_map(shapes: dict[str, Any], man: dict[str, Any], what: str) -> None:
    check_names(list(shapes), man, what)
    for name, info in man["tensors"].items():
        if list(shapes[name]) != info["shape"]:
            raise Mismatch(f"{what}: {name!r} has shape {shapes[name]}, expected {info['shape']}")


def _escape(name: str) -> str:
    # tensorflow/python/trackable/trackable_utils.py escape_local_name
    return name.replace(".", "..").replace("/", ".S")


def check_object_checkpoint(prefix: str, man: dict[str, Any], what: str) -> None:
    import tfckpt

    with tfckpt.load_checkpoint(prefix) as reader:
        got = {
            name: reader.get_tensor(f"{_escape(name)}/.ATTRIBUTES/VARIABLE_VALUE")
            for name in man["order"]
        }
    check_tensors(got, man, what)


def check_numpy_state_checkpoint(prefix: str, man: dict[str, Any], what: str) -> None:
    import numpy as np

    import tfckpt

    with tfckpt.load_checkpoint(prefix) as reader:
        got = {
            name: np.load(
                io.BytesIO(reader.get_tensor(f"state/{name}/.ATTRIBUTES/py_state")),
                allow_pickle=False,
            )
            for name in man["order"]
        }
    check_tensors(got, man, what)


def _readinto(path: str, buffer: Any) -> None:
    view = memoryview(buffer).cast("B")
    done = 0
    with open(path, "rb", buffering=0) as f:
        while done < len(view):
            n = f.readinto(view[done:])
            if not n:
                raise EOFError(path)
            done += n


def tf_numpy_state_class() -> Any:
    """TF-Agents' NumpyState (tf_agents/utils/numpy_storage.py), on TF 2.x internals."""
    import numpy as np
    import tensorflow as tf
    from tensorflow.python.trackable import base

    class _NumpyWrapper(tf.train.experimental.PythonState):
        def __init__(self, array: Any) -> None:
            self.array = array

        def serialize(self) -> bytes:
            buffer = io.BytesIO()
            np.save(buffer, self.array, allow_pickle=False)
            return buffer.getvalue()

        def deserialize(self, string_value: bytes) -> None:
            self.array = np.load(io.BytesIO(string_value), allow_pickle=False)

    class NumpyState(base.Trackable):
        def _lookup_dependency(self, name: str, cached_dependencies: Any = None) -> Any:
            value = super()._lookup_dependency(name, cached_dependencies)
            if value is None:  # re-create attributes on restore, as TF-Agents does
                value = _NumpyWrapper(np.array([]))
                self._maybe_initialize_trackable()
                self._self_unconditional_checkpoint_dependencies.append(
                    base.TrackableReference(name=name, ref=value)
                )
                self._self_unconditional_dependency_names[name] = value
                super().__setattr__(name, value)
            return value

        def __getattribute__(self, name: str) -> Any:
            value = super().__getattribute__(name)
            return value.array if isinstance(value, _NumpyWrapper) else value

        def __setattr__(self, name: str, value: Any) -> None:
            if isinstance(value, (np.ndarray, np.generic)):
                try:
                    existing = super().__getattribute__(name)
                    existing.array = value
                    return
                except AttributeError:
                    value = _NumpyWrapper(value)
                    self._track_trackable(value, name=name, overwrite=True)
            super().__setattr__(name, value)

    return NumpyState


# -- implementations -----------------------------------------------------------------------

IMPLS: dict[tuple[str, str], Callable[[Ctx], Bench]] = {}


def impl(*keys: tuple[str, str]) -> Callable[[Callable[[Ctx], Bench]], Callable[[Ctx], Bench]]:
    def register(fn: Callable[[Ctx], Bench]) -> Callable[[Ctx], Bench]:
        for key in keys:
            IMPLS[key] = fn
        return fn

    return register


def _save_bench(ctx: Ctx, out_dir: str, run: Callable[[], Any], verify: Any = None) -> Bench:
    return Bench(
        run,
        prepare=lambda: _fresh_dir(out_dir),
        after=lambda: _fsync_tree(out_dir),
        verify=verify,
    )


@impl(("save", "tfckpt"))
def _save_tfckpt(ctx: Ctx) -> Bench:
    import tfckpt

    data = ctx.data()
    prefix = ctx.p.tfckpt
    return _save_bench(ctx, os.path.dirname(prefix), lambda: tfckpt.save_tensors(prefix, data))


@impl(("save", "tfckpt_durable"))
def _save_tfckpt_durable(ctx: Ctx) -> Bench:
    import inspect

    import tfckpt

    if "durable" not in inspect.signature(tfckpt.save_tensors).parameters:
        raise Skip("this tfckpt's save_tensors has no durable= option")
    data = ctx.data()
    prefix = os.path.join(ctx.wdir, "tfckpt_durable", "ckpt")
    return _save_bench(
        ctx, os.path.dirname(prefix), lambda: tfckpt.save_tensors(prefix, data, durable=True)
    )


@impl(("save", "tf"))
def _save_tf(ctx: Ctx) -> Bench:
    import tensorflow as tf

    data = ctx.data()
    names = list(data)
    tensors = [tf.constant(value) for value in data.values()]
    del data
    specs = [""] * len(names)
    prefix = ctx.p.tf

    def run() -> None:
        tf.raw_ops.SaveV2(
            prefix=prefix, tensor_names=names, shape_and_slices=specs, tensors=tensors
        )

    return _save_bench(ctx, os.path.dirname(prefix), run)


@impl(("save", "safetensors"), ("ns_save", "safetensors"))
def _save_safetensors(ctx: Ctx) -> Bench:
    from safetensors.numpy import save_file

    data = ctx.data()
    path = ctx.p.safetensors
    return _save_bench(ctx, os.path.dirname(path), lambda: save_file(data, path))


@impl(("save", "numpy"), ("ns_save", "numpy"))
def _save_numpy(ctx: Ctx) -> Bench:
    import numpy as np

    data = ctx.data()
    out = ctx.p.numpy
    fmt = _numpy_format(ctx.wl)

    def run() -> None:
        if fmt == "npz":
            np.savez(os.path.join(out, "data.npz"), **data)
            return
        with open(os.path.join(out, "names.json"), "w") as f:
            json.dump(list(data), f)
        for i, value in enumerate(data.values()):
            np.save(os.path.join(out, f"{i:05d}.npy"), value, allow_pickle=(fmt == "pickle"))

    return _save_bench(ctx, out, run)


def _raw_write(ctx: Ctx, fsync: bool) -> Bench:
    import crc32c
    import numpy as np

    source = ctx.raw_source()
    size = os.path.getsize(source)
    buffer = np.empty(size, np.uint8)
    _readinto(source, buffer)
    expected = crc32c.crc32c(buffer)
    out = ctx.p.raw_out

    def run() -> None:
        with open(out, "wb", buffering=0) as f:
            view = memoryview(buffer)
            done = 0
            while done < size:
                done += f.write(view[done:])
            if fsync:
                os.fsync(f.fileno())

    def verify(_: Any) -> None:
        check = np.empty(size, np.uint8)
        _readinto(out, check)
        if os.path.getsize(out) != size or crc32c.crc32c(check) != expected:
            raise Mismatch("raw write: the file written differs from the source bytes")

    return _save_bench(ctx, os.path.dirname(out), run, verify)


@impl(("save", "raw_write"), ("ns_save", "raw_write"))
def _raw_write_plain(ctx: Ctx) -> Bench:
    return _raw_write(ctx, fsync=False)


@impl(("save", "raw_write_fsync"), ("ns_save", "raw_write_fsync"))
def _raw_write_fsync(ctx: Ctx) -> Bench:
    return _raw_write(ctx, fsync=True)


@impl(("list", "tfckpt"))
def _list_tfckpt(ctx: Ctx) -> Bench:
    import tfckpt

    prefix = _need(ctx.p.tfckpt + ".index", "tfckpt checkpoint")[: -len(".index")]

    def run() -> Any:
        reader = tfckpt.load_checkpoint(prefix)
        shapes = reader.get_variable_to_shape_map()
        reader.close()
        return shapes

    return Bench(run, verify=lambda m: check_shape_map(m, ctx.man, "tfckpt list"))


@impl(("list", "tf"))
def _list_tf(ctx: Ctx) -> Bench:
    import tensorflow as tf

    prefix = _need(ctx.p.tf + ".index", "TF checkpoint")[: -len(".index")]

    def run() -> Any:
        return tf.train.load_checkpoint(prefix).get_variable_to_shape_map()

    return Bench(run, verify=lambda m: check_shape_map(m, ctx.man, "TF list"))


@impl(("list", "safetensors"))
def _list_safetensors(ctx: Ctx) -> Bench:
    from safetensors import safe_open

    path = _need(ctx.p.safetensors, "safetensors file")

    def run() -> Any:
        with safe_open(path, framework="np") as f:
            return list(f.keys())

    return Bench(run, verify=lambda names: check_names(names, ctx.man, "safetensors list"))


@impl(("list", "numpy"))
def _list_numpy(ctx: Ctx) -> Bench:
    import numpy as np

    path = _need(os.path.join(ctx.p.numpy, "data.npz"), "npz file")

    def run() -> Any:
        with np.load(path) as npz:
            return list(npz.files)

    return Bench(run, verify=lambda names: check_names(names, ctx.man, "numpy list"))


def _read_tfckpt(ctx: Ctx, prefix: str, copy: bool, what: str, bulk: bool = True) -> Bench:
    import tfckpt

    _need(prefix + ".index", "checkpoint")

    def run_bulk() -> Any:
        return tfckpt.load_tensors(prefix, copy=copy)

    def run() -> Any:
        reader = tfckpt.load_checkpoint(prefix)
        names = reader.keys()
        out = {name: reader.get_tensor(name, copy=copy) for name in names}
        reader.close()  # zero-copy views keep their memory map alive
        return out

    return Bench(run_bulk if bulk else run, verify=lambda got: check_tensors(got, ctx.man, what))


@impl(("read", "tfckpt"))
def _read_tfckpt_own(ctx: Ctx) -> Bench:
    return _read_tfckpt(ctx, ctx.p.tfckpt, True, "tfckpt read")


@impl(("read", "tfckpt_loop"))
def _read_tfckpt_loop(ctx: Ctx) -> Bench:
    return _read_tfckpt(ctx, ctx.p.tfckpt, True, "tfckpt get_tensor loop", bulk=False)


@impl(("read_zc", "tfckpt_loop"))
def _read_tfckpt_zc_loop(ctx: Ctx) -> Bench:
    return _read_tfckpt(ctx, ctx.p.tfckpt, False, "tfckpt zero-copy loop", bulk=False)


@impl(("read", "tfckpt_xtf"))
def _read_tfckpt_tf_file(ctx: Ctx) -> Bench:
    return _read_tfckpt(ctx, ctx.p.tf, True, "tfckpt read of TF's file")


@impl(("read_zc", "tfckpt"))
def _read_tfckpt_zc(ctx: Ctx) -> Bench:
    return _read_tfckpt(ctx, ctx.p.tfckpt, False, "tfckpt zero-copy read")


def _read_tf(ctx: Ctx, prefix: str, what: str) -> Bench:
    import tensorflow as tf

    _need(prefix + ".index", "checkpoint")

    def run() -> Any:
        reader = tf.train.load_checkpoint(prefix)
        return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}

    return Bench(run, verify=lambda got: check_tensors(got, ctx.man, what))


@impl(("read", "tf"))
def _read_tf_own(ctx: Ctx) -> Bench:
    return _read_tf(ctx, ctx.p.tf, "TF read")


@impl(("read", "tf_xtfckpt"))
def _read_tf_tfckpt_file(ctx: Ctx) -> Bench:
    return _read_tf(ctx, ctx.p.tfckpt, "TF read of tfckpt's file")


@impl(("read", "safetensors_load_file"), ("ns_restore", "safetensors_load_file"))
def _read_safetensors_load_file(ctx: Ctx) -> Bench:
    from safetensors.numpy import load_file

    path = _need(ctx.p.safetensors, "safetensors file")
    return Bench(
        lambda: load_file(path),
        verify=lambda got: check_tensors(got, ctx.man, "safetensors load_file"),
    )


@impl(("read", "safetensors_get_tensor"))
def _read_safetensors_get_tensor(ctx: Ctx) -> Bench:
    from safetensors import safe_open

    path = _need(ctx.p.safetensors, "safetensors file")

    def run() -> Any:
        with safe_open(path, framework="np") as f:
            names = f.keys()
            return {name: f.get_tensor(name) for name in names}

    return Bench(run, verify=lambda got: check_tensors(got, ctx.man, "safetensors get_tensor"))


_ST_DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U64": "<u8",
    "U32": "<u4",
    "U16": "<u2",
    "U8": "u1",
    "BOOL": "?",
}


@impl(("read_zc", "safetensors_mmap"))
def _read_safetensors_mmap(ctx: Ctx) -> Bench:
    import mmap

    import crc32c
    import numpy as np

    path = _need(ctx.p.safetensors, "safetensors file")

    def run() -> Any:
        # What a zero-copy safetensors reader does, plus the CRC tfckpt computes.
        with open(path, "rb") as f:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        n = int.from_bytes(mapped[:8], "little")
        header = json.loads(mapped[8 : 8 + n])
        base = 8 + n
        view = memoryview(mapped)
        out = {}
        crcs = []
        for name, info in header.items():
            if name == "__metadata__":
                continue
            start, stop = info["data_offsets"]
            data = view[base + start : base + stop]
            crcs.append(crc32c.crc32c(data))
            out[name] = np.frombuffer(data, _ST_DTYPES[info["dtype"]]).reshape(info["shape"])
        return out

    return Bench(run, verify=lambda got: check_tensors(got, ctx.man, "safetensors mmap"))


@impl(("read", "numpy"), ("ns_restore", "numpy"))
def _read_numpy(ctx: Ctx) -> Bench:
    import numpy as np

    fmt = _numpy_format(ctx.wl)
    root = ctx.p.numpy

    def run() -> Any:
        if fmt == "npz":
            with np.load(os.path.join(root, "data.npz")) as npz:
                return {name: npz[name] for name in npz.files}
        with open(os.path.join(root, "names.json")) as f:
            names = json.load(f)
        return {
            name: np.load(os.path.join(root, f"{i:05d}.npy"), allow_pickle=(fmt == "pickle"))
            for i, name in enumerate(names)
        }

    _need(os.path.join(root, "data.npz" if fmt == "npz" else "names.json"), "numpy files")
    return Bench(run, verify=lambda got: check_tensors(got, ctx.man, "numpy load"))


def _raw_read(ctx: Ctx, kind: str) -> Bench:
    import mmap

    import crc32c
    import numpy as np

    source = ctx.raw_source()
    size = os.path.getsize(source)
    with open(source, "rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        expected = crc32c.crc32c(mapped)
        mapped.close()
    buffer = None
    if kind in ("raw_readinto", "raw_readinto_crc", "raw_crc"):
        buffer = np.empty(size, np.uint8)
        buffer.fill(0)  # fault the pages in, untimed
        if kind == "raw_crc":
            _readinto(source, buffer)

    def run() -> Any:
        if kind == "raw_readinto":
            _readinto(source, buffer)
            return None
        if kind == "raw_readinto_crc":
            _readinto(source, buffer)
            return crc32c.crc32c(buffer)
        if kind == "raw_readinto_crc_fresh":
            fresh = np.empty(size, np.uint8)
            _readinto(source, fresh)
            return crc32c.crc32c(fresh)
        if kind == "raw_crc":
            return crc32c.crc32c(buffer)
        if kind == "raw_mmap_crc":
            with open(source, "rb") as f:
                m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            try:
                return crc32c.crc32c(m)
            finally:
                m.close()
        raise AssertionError(kind)

    def verify(crc: Any) -> None:
        if crc is None:
            crc = crc32c.crc32c(buffer)
        if crc != expected:
            raise Mismatch(f"{kind}: CRC of what was read differs from the file's")

    return Bench(run, verify=verify)


for _kind in (*RAW_READ, "raw_mmap_crc"):
    for _section in ("read", "read_zc", "ns_restore"):
        IMPLS[(_section, _kind)] = (lambda kind: lambda ctx: _raw_read(ctx, kind))(_kind)


@impl(("save_obj", "tfckpt"))
def _save_obj_tfckpt(ctx: Ctx) -> Bench:
    import tfckpt

    checkpoint = tfckpt.Checkpoint(**ctx.data())
    prefix = ctx.p.obj_tfckpt
    return _save_bench(
        ctx,
        os.path.dirname(prefix),
        lambda: checkpoint.write(prefix),
        lambda _: check_object_checkpoint(prefix, ctx.man, "tfckpt Checkpoint.write"),
    )


@impl(("save_obj", "tf"))
def _save_obj_tf(ctx: Ctx) -> Bench:
    import tensorflow as tf

    data = ctx.data()
    variables = {name: tf.Variable(value) for name, value in data.items()}
    del data
    checkpoint = tf.train.Checkpoint(**variables)
    prefix = ctx.p.obj_tf
    return _save_bench(
        ctx,
        os.path.dirname(prefix),
        lambda: checkpoint.write(prefix),
        lambda _: check_object_checkpoint(prefix, ctx.man, "TF Checkpoint.write"),
    )


@impl(("ns_save", "tfckpt"))
def _ns_save_tfckpt(ctx: Ctx) -> Bench:
    import tfckpt

    state = tfckpt.NumpyState()
    for name, value in ctx.data().items():
        setattr(state, name, value)
    checkpoint = tfckpt.Checkpoint(state=state)
    prefix = ctx.p.ns_tfckpt
    return _save_bench(
        ctx,
        os.path.dirname(prefix),
        lambda: checkpoint.write(prefix),
        lambda _: check_numpy_state_checkpoint(prefix, ctx.man, "tfckpt NumpyState save"),
    )


@impl(("ns_save", "tf"))
def _ns_save_tf(ctx: Ctx) -> Bench:
    import tensorflow as tf

    state = tf_numpy_state_class()()
    for name, value in ctx.data().items():
        setattr(state, name, value)
    checkpoint = tf.train.Checkpoint(state=state)
    prefix = ctx.p.ns_tf
    return _save_bench(
        ctx,
        os.path.dirname(prefix),
        lambda: checkpoint.write(prefix),
        lambda _: check_numpy_state_checkpoint(prefix, ctx.man, "TF NumpyState save"),
    )


@impl(("ns_restore", "tfckpt"))
def _ns_restore_tfckpt(ctx: Ctx) -> Bench:
    import tfckpt

    prefix = _need(ctx.p.ns_tfckpt + ".index", "tfckpt NumpyState checkpoint")[: -len(".index")]
    names = ctx.man["order"]

    def run() -> Any:
        state = tfckpt.NumpyState()
        tfckpt.Checkpoint(state=state).read(prefix)
        return {name: getattr(state, name) for name in names}

    return Bench(run, verify=lambda got: check_tensors(got, ctx.man, "tfckpt NumpyState restore"))


@impl(("ns_restore", "tf"))
def _ns_restore_tf(ctx: Ctx) -> Bench:
    import tensorflow as tf

    state_class = tf_numpy_state_class()
    prefix = _need(ctx.p.ns_tf + ".index", "TF NumpyState checkpoint")[: -len(".index")]
    names = ctx.man["order"]

    def run() -> Any:
        state = state_class()
        tf.train.Checkpoint(state=state).read(prefix)
        return {name: getattr(state, name) for name in names}

    return Bench(run, verify=lambda got: check_tensors(got, ctx.man, "TF NumpyState restore"))


# -- the worker loop -----------------------------------------------------------------------


def worker_main(spec: dict[str, Any]) -> int:
    sys.path.insert(0, HERE)
    result: dict[str, Any] = {"status": "OK"}
    code = 0
    try:
        if spec["section"] == "manifest":
            import bench_workloads

            manifest = bench_workloads.manifest(spec["workload"], spec["scale"])
            with open(os.path.join(spec["wdir"], "manifest.json"), "w") as f:
                json.dump(manifest, f)
        else:
            result.update(_measure(spec))
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


def _measure(spec: dict[str, Any]) -> dict[str, Any]:
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


# =========================================================================================
# Parent side.
# =========================================================================================


def _child_env(tfckpt_root: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if tfckpt_root:
        parts = [tfckpt_root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join(parts)
    return env


def run_worker(spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    result_path = spec["result"]
    try:
        os.remove(result_path)
    except FileNotFoundError:
        pass
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)],
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


def machine_info(env: dict[str, str], scratch: str) -> dict[str, Any]:
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
    candidates = {
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
    for key, dists in candidates.items():
        info[key] = None
        for dist in dists:
            try:
                info[key] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    probe = subprocess.run([sys.executable, "-c", _TFCKPT_PROBE], env=env, capture_output=True)
    if probe.returncode != 0:
        raise SystemExit(f"tfckpt is not importable (run with PYTHONPATH=src):\n{probe.stderr}")
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


_TFCKPT_PROBE = """
import inspect, json, os, tfckpt
p = inspect.signature(tfckpt.save_tensors).parameters.get("durable")
print(json.dumps({"version": tfckpt.__version__, "file": os.path.abspath(tfckpt.__file__),
                  "durable_default": None if p is None else bool(p.default)}))
"""


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


# -- results and printing ------------------------------------------------------------------


class Results:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.notes: dict[str, list[str]] = {}
        self.meta: dict[str, dict[str, Any]] = {}
        self.failures: list[str] = []
        self.errors: list[str] = []

    def get(self, wl: str, section: str, lib: str) -> dict[str, Any] | None:
        for row in self.rows:
            if (
                (row["workload"], row["section"], row["lib"]) == (wl, section, lib)
                and row.get("median") is not None
                and not row.get("reference")
            ):
                return row
        return None

    def median(self, wl: str, section: str, lib: str) -> float | None:
        row = self.get(wl, section, lib)
        return None if row is None else row["median"]


def _fmt_s(t: float | None) -> str:
    if t is None:
        return "-"
    if t >= 100:
        return f"{t:.1f}"
    if t >= 1:
        return f"{t:.3f}"
    if t >= 0.01:
        return f"{t:.4f}"
    return f"{t:.6f}"


def print_table(res: Results, wl: str, out: Any = sys.stdout) -> None:
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
                f"    {label:<66} {_fmt_s(med):>9} {spread:>4.0f} {gbps:>6} {peak:>9} "
                f"{delta:>7} {ratio:>9}",
                file=out,
            )
    for note in res.notes.get(wl, []):
        print(f"    note: {note}", file=out)
    out.flush()


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den == 0:
        return None
    return num / den


def compute_targets(
    res: Results, imports: dict[str, Any] | None, tfckpt_fsyncs: bool
) -> list[dict[str, Any]]:
    m = res.median
    targets: list[dict[str, Any]] = []

    def wfloor(wl: str, section: str) -> tuple[str, float | None]:
        # A save is held to the raw write that does what tfckpt's default save does.
        if tfckpt_fsyncs:
            return ("write+fsync", m(wl, section, "raw_write_fsync"))
        return ("write, no fsync", m(wl, section, "raw_write"))

    def speedup(
        name: str,
        peer: float | None,
        ours: float | None,
        goal: float,
        peer_name: str,
        floor: tuple[str, float | None] | None = None,
    ) -> None:
        """``floor``: (raw row, its time): the ratio tfckpt would reach at that hardware
        limit, shown so that targets out of reach on this machine stand out."""
        value = _ratio(peer, ours)
        shown = "-" if value is None else f"{value:.2f}x"
        ceiling = None if floor is None else _ratio(peer, floor[1])
        if value is not None and ceiling is not None:
            shown += f"  [raw-limit ceiling {ceiling:.2f}x: {floor[0]}]"
        targets.append(
            {
                "target": name,
                "goal": f">= {goal:g}x",
                "value": value,
                "ceiling": ceiling,
                "shown": shown,
                "met": None if value is None else value >= goal,
                "why": None if value is not None else f"not measured: no {peer_name} or tfckpt row",
            }
        )

    def best(*values: float | None) -> float | None:
        found = [v for v in values if v is not None]
        return min(found) if found else None

    # W1 reads
    speedup(
        "W1 read owned: tfckpt vs TF get_tensor loop",
        m("W1", "read", "tf"),
        m("W1", "read", "tfckpt"),
        2,
        "TF",
        ("readinto+CRC, fresh buffer", m("W1", "read", "raw_readinto_crc_fresh")),
    )
    speedup(
        "W1 read owned: tfckpt vs safetensors (faster of load_file/get_tensor)",
        best(m("W1", "read", "safetensors_load_file"), m("W1", "read", "safetensors_get_tensor")),
        m("W1", "read", "tfckpt"),
        1.2,
        "safetensors",
        ("readinto+CRC, fresh buffer", m("W1", "read", "raw_readinto_crc_fresh")),
    )
    raw = m("W1", "read", "raw_readinto_crc")
    ours = m("W1", "read", "tfckpt")
    value = _ratio(ours, raw)
    fresh = _ratio(ours, m("W1", "read", "raw_readinto_crc_fresh"))
    targets.append(
        {
            "target": "W1 read owned: tfckpt within 1.15x of readinto+CRC (preallocated buffer)",
            "goal": "<= 1.15x",
            "value": value,
            "shown": "-"
            if value is None
            else f"{value:.2f}x"
            + ("" if fresh is None else f" (vs fresh-buffer readinto+CRC: {fresh:.2f}x)"),
            "met": None if value is None else value <= 1.15,
            "why": None if value is not None else "not measured",
        }
    )
    speedup(
        "W1 zero-copy read with CRC: tfckpt vs TF get_tensor loop",
        m("W1", "read", "tf"),
        m("W1", "read_zc", "tfckpt"),
        7,
        "TF",
        ("mmap+CRC", m("W1", "read_zc", "raw_mmap_crc")),
    )
    # W2
    speedup(
        "W2 read all: tfckpt vs TF get_tensor loop",
        m("W2", "read", "tf"),
        m("W2", "read", "tfckpt"),
        8,
        "TF",
        ("readinto+CRC, fresh buffer", m("W2", "read", "raw_readinto_crc_fresh")),
    )
    speedup(
        "W2 read all: tfckpt vs safetensors (faster of load_file/get_tensor)",
        best(m("W2", "read", "safetensors_load_file"), m("W2", "read", "safetensors_get_tensor")),
        m("W2", "read", "tfckpt"),
        1.3,
        "safetensors",
        ("readinto+CRC, fresh buffer", m("W2", "read", "raw_readinto_crc_fresh")),
    )
    value = _ratio(m("W2", "list", "tfckpt"), m("W2", "list", "tf"))
    targets.append(
        {
            "target": "W2 open + list keys: tfckpt time / TF time",
            "goal": "<= 0.5x",
            "value": value,
            "shown": "-" if value is None else f"{value:.2f}x",
            "met": None if value is None else value <= 0.5,
            "why": None if value is not None else "not measured",
        }
    )
    # W3
    speedup(
        "W3 read: tfckpt vs TF get_tensor",
        m("W3", "read", "tf"),
        m("W3", "read", "tfckpt"),
        1,
        "TF",
        ("readinto+CRC, fresh buffer", m("W3", "read", "raw_readinto_crc_fresh")),
    )
    speedup(
        "W3 write: tfckpt save_tensors vs SaveV2",
        m("W3", "save", "tf"),
        m("W3", "save", "tfckpt"),
        2,
        "TF",
        wfloor("W3", "save"),
    )
    # saves
    speedup(
        "W1 save: tfckpt.Checkpoint.write vs tf.train.Checkpoint.write",
        m("W1", "save_obj", "tf"),
        m("W1", "save_obj", "tfckpt"),
        1.5,
        "TF",
        wfloor("W1", "save"),
    )
    speedup(
        "W1 save: tfckpt save_tensors vs safetensors save_file",
        m("W1", "save", "safetensors"),
        m("W1", "save", "tfckpt"),
        1.2,
        "safetensors",
        wfloor("W1", "save"),
    )
    speedup(
        "W2 save: tfckpt save_tensors vs SaveV2",
        m("W2", "save", "tf"),
        m("W2", "save", "tfckpt"),
        7,
        "TF",
        wfloor("W2", "save"),
    )
    speedup(
        "W2 save: tfckpt save_tensors vs safetensors save_file",
        m("W2", "save", "safetensors"),
        m("W2", "save", "tfckpt"),
        0.9,
        "safetensors",
        wfloor("W2", "save"),
    )
    speedup(
        "W4 NumpyState save: tfckpt vs TF-Agents-style NumpyState",
        m("W4", "ns_save", "tf"),
        m("W4", "ns_save", "tfckpt"),
        5,
        "TF",
        wfloor("W4", "ns_save"),
    )
    speedup(
        "W4 NumpyState restore: tfckpt vs TF-Agents-style NumpyState",
        m("W4", "ns_restore", "tf"),
        m("W4", "ns_restore", "tfckpt"),
        2,
        "TF",
        ("readinto+CRC, fresh buffer", m("W4", "ns_restore", "raw_readinto_crc_fresh")),
    )
    # memory
    data_mib = res.meta["W1"]["nbytes"] / MIB if "W1" in res.meta else None
    for section, lib, name, limit in (
        (
            "read",
            "tfckpt",
            "Peak RSS W1 read owned (whole process) <= 1.1 x data + 50 MiB",
            (lambda d: 1.1 * d + 50),
        ),
        (
            "save",
            "tfckpt",
            "Peak RSS W1 save_tensors (whole process, data included) <= data + 64 MiB",
            (lambda d: d + 64),
        ),
    ):
        row = res.get("W1", section, lib)
        if row is None or data_mib is None:
            goal = "<= 1.1 x data + 50 MiB" if section == "read" else "<= data + 64 MiB"
            targets.append(
                {
                    "target": name,
                    "goal": goal,
                    "value": None,
                    "shown": "-",
                    "met": None,
                    "why": "not measured",
                }
            )
            continue
        peak = row["peak_kib"] / 1024
        lim = limit(data_mib)
        targets.append(
            {
                "target": name,
                "goal": f"<= {lim:,.0f} MiB",
                "value": peak,
                "shown": f"{peak:,.0f} MiB",
                "met": peak <= lim,
                "why": None,
            }
        )
    value = None if imports is None else imports.get("tfckpt")
    targets.append(
        {
            "target": "import tfckpt (fresh interpreter, minus bare startup)",
            "goal": "<= 0.25 s",
            "value": value,
            "shown": "-" if value is None else f"{value:.3f} s",
            "met": None if value is None else value <= 0.25,
            "why": None if value is not None else "not measured",
        }
    )
    return targets


def print_targets(targets: list[dict[str, Any]], scale: float, tfckpt_fsyncs: bool) -> None:
    print("\n=== ISSUE TARGETS (computed from this run) ===")
    if scale != 1.0:
        print(
            f"    (scale {scale:g}: the targets are stated for --scale 1.0; small sizes weigh "
            "fixed costs more)"
        )
    for t in targets:
        status = {True: "MET", False: "NOT MET", None: "n/a"}[t["met"]]
        extra = f"  ({t['why']})" if t.get("why") else ""
        print(
            f"  [{status:^7}] {t['target']:<76} goal {t['goal']:<12} measured {t['shown']}{extra}"
        )
    met = sum(1 for t in targets if t["met"] is True)
    missed = sum(1 for t in targets if t["met"] is False)
    print(f"  {met} met, {missed} not met, {len(targets) - met - missed} not measured")
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


def _same_files(a_prefix: str, b_prefix: str) -> bool | None:
    import filecmp

    pairs = [(a_prefix + s, b_prefix + s) for s in (".index", DATA_SUFFIX)]
    if not all(os.path.exists(x) and os.path.exists(y) for x, y in pairs):
        return None
    return all(filecmp.cmp(x, y, shallow=False) for x, y in pairs)


def run_workload(
    wl: str,
    args: argparse.Namespace,
    scratch: str,
    env: dict[str, str],
    res: Results,
    have: dict[str, bool],
) -> None:
    wdir = os.path.join(scratch, wl)
    shutil.rmtree(wdir, ignore_errors=True)
    os.makedirs(wdir)
    results_dir = os.path.join(wdir, ".results")
    os.makedirs(results_dir)
    base_spec = {"workload": wl, "scale": args.scale, "wdir": wdir, "repeat": args.repeat}
    _progress(f"[{wl}] generating workload and its SHA-256 manifest")
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
    with open(os.path.join(wdir, "manifest.json")) as f:
        manifest = json.load(f)
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
            wall = time.perf_counter() - start
            row.update(out)
            if out["status"] == "OK":
                row["median"] = statistics.median(out["times"])
                row["gbps"] = (
                    manifest["nbytes"] / row["median"] / 1e9
                    if section != "list" and row["median"] > 0
                    else None
                )
                _progress(
                    f"[{wl}] {section:<10} {label:<66} {_fmt_s(row['median']):>9} s  "
                    f"peak {out['peak_kib'] / 1024:,.0f} MiB  ({wall:.1f} s wall)"
                )
            else:
                _progress(f"[{wl}] {section:<10} {label:<66} {out['status']}: {out.get('detail')}")
                if out["status"] == "FAIL":
                    print(f"FAIL [{wl}] {section} {label}: {out.get('detail')}", flush=True)
                    res.failures.append(f"{wl} {section} {label}: {out.get('detail')}")
                elif out["status"] == "ERROR":
                    res.errors.append(f"{wl} {section} {label}: {out.get('detail')}")
                    if out.get("stderr"):
                        _progress(out["stderr"])
            res.rows.append(row)
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
            if not args.keep:
                for d in (paths.obj_tfckpt, paths.obj_tf):
                    shutil.rmtree(os.path.dirname(d), ignore_errors=True)
        if section == "save":
            same = _same_files(paths.tfckpt, paths.tf)
            if same is not None:
                notes.append(
                    "tfckpt save_tensors and TF SaveV2 files are "
                    + ("byte-identical." if same else "NOT byte-identical.")
                )
        if section == "ns_save":
            same = _same_files(paths.ns_tfckpt, paths.ns_tf)
            if same is not None:
                notes.append(
                    "tfckpt and TF NumpyState checkpoints are "
                    + ("byte-identical." if same else "NOT byte-identical.")
                )
    if not args.keep:
        shutil.rmtree(wdir, ignore_errors=True)


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        return worker_main(json.loads(args.worker))

    if args.scale <= 0 or args.repeat < 1:
        parser.error("--scale must be > 0 and --repeat >= 1")
    selected = [w.strip().upper() for w in args.only.split(",") if w.strip()] or list(PLAN)
    unknown = [w for w in selected if w not in PLAN]
    if unknown:
        parser.error(f"unknown workloads {unknown}; choose from {list(PLAN)}")

    if args.dir:
        os.makedirs(args.dir, exist_ok=True)
        scratch = os.path.abspath(args.dir)
        own_scratch = False
    else:
        scratch = tempfile.mkdtemp(prefix="tfckpt-bench-")
        own_scratch = True

    # tfckpt's location, made absolute for the workers.
    env0 = _child_env(None)
    probe = subprocess.run(
        [sys.executable, "-c", "import os, tfckpt; print(os.path.abspath(tfckpt.__file__))"],
        env=env0,
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        raise SystemExit(f"tfckpt is not importable (run with PYTHONPATH=src):\n{probe.stderr}")
    env = _child_env(os.path.dirname(os.path.dirname(probe.stdout.strip())))

    have = {
        m: importlib.util.find_spec(m) is not None
        for m in ("tensorflow", "safetensors", "crc32c", "numpy")
    }
    if not have["numpy"] or not have["crc32c"]:
        raise SystemExit("numpy and crc32c are required")
    info = machine_info(env, scratch)
    start = time.perf_counter()
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

    imports = None
    if not args.skip_imports:
        _progress("measuring import times")
        imports = measure_imports(env, args.repeat, have["tensorflow"])
        print("\n=== import time (fresh interpreter each; median minus bare `python -c pass`) ===")
        print(f"    bare interpreter startup  {imports['interpreter_s']:.3f} s")
        print(f"    import tfckpt             {imports['tfckpt']:.3f} s")
        if "tensorflow" in imports:
            ratio = imports["tensorflow"] / imports["tfckpt"] if imports["tfckpt"] > 0 else 0
            print(
                f"    import tensorflow         {imports['tensorflow']:.3f} s   "
                f"({ratio:.0f}x tfckpt)"
            )
        sys.stdout.flush()

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
    print(
        f"\ntotal wall time {elapsed:.0f} s" + (f"; files kept in {scratch}" if args.keep else "")
    )
    if res.failures:
        print(f"\nFAIL: {len(res.failures)} correctness failure(s):")
        for failure in res.failures:
            print(f"  FAIL {failure}")
    if res.errors:
        print(f"\nERROR: {len(res.errors)} row(s) crashed:")
        for error in res.errors:
            print(f"  ERROR {error}")

    if args.json:
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
        with open(args.json, "w") as f:
            json.dump(payload, f, indent=1)
        print(f"results written to {args.json}")
    if res.failures:
        return 1
    if res.errors:
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
