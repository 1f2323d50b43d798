"""What an implementation gets (``Ctx``: the workload and where its files are) and gives
back (``Bench``: the operation to time, with its untimed setup, teardown and check)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from . import files

DATA_SUFFIX = ".data-00000-of-00001"


class Skip(Exception):
    """The row cannot run here (peer not importable, input missing)."""


class Bench:
    """``run`` is timed; ``prepare`` and ``after`` run untimed around every repetition;
    ``verify`` checks the last repetition's result after the peak RSS is taken."""

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


def save_bench(
    out_dir: str, run: Callable[[], Any], verify: Callable[[Any], None] | None = None
) -> Bench:
    """A save: ``out_dir`` emptied before each repetition and fsynced after it."""
    return Bench(
        run,
        prepare=lambda: files.fresh_dir(out_dir),
        after=lambda: files.fsync_tree(out_dir),
        verify=verify,
    )


class Paths:
    """Where each library's files of one workload live."""

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
        self.sharded_tfckpt = os.path.join(wdir, "sharded_tfckpt", "ckpt")
        self.sharded_obj_tfckpt = os.path.join(wdir, "sharded_obj_tfckpt", "ckpt")
        self.sharded_tf = os.path.join(wdir, "sharded_tf", "ckpt")
        self.async_dir = os.path.join(wdir, "async")


class Ctx:
    """One worker's workload: its name, scale, files and SHA-256 manifest."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.wl: str = spec["workload"]
        self.scale: float = spec["scale"]
        self.wdir: str = spec["wdir"]
        self.p = Paths(self.wdir)
        with open(os.path.join(self.wdir, "manifest.json")) as f:
            self.man: dict[str, Any] = json.load(f)

    def data(self) -> dict[str, Any]:
        from . import workloads  # imports numpy: only when a row needs the data

        return workloads.generate(self.wl, self.scale)

    def max_shard_size(self) -> int:
        """The shard size of the sharded-save rows: 128 MiB at scale 1."""
        return max(1 << 20, int((128 << 20) * self.scale))

    def raw_source(self) -> str:
        """The tfckpt data file the raw rows read and write the bytes of."""
        prefix = self.p.ns_tfckpt if self.wl == "W4" else self.p.tfckpt
        path = prefix + DATA_SUFFIX
        if not os.path.exists(path):
            raise Skip(f"no tfckpt data file at {path} (did the tfckpt save fail?)")
        return path


def need(path: str, what: str) -> str:
    """``path``, or Skip when an earlier save did not write it."""
    if not os.path.exists(path):
        raise Skip(f"{what} missing at {path} (did its save fail?)")
    return path
