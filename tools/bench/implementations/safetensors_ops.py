"""safetensors' rows: save_file, load_file, safe_open, and a zero-copy mmap read."""

from __future__ import annotations

import json
import os
from typing import Any

from ..checks import check_names, check_tensors
from ..context import Bench, Ctx, need, save_bench
from .registry import impl

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


@impl(("save", "safetensors"), ("ns_save", "safetensors"))
def save(ctx: Ctx) -> Bench:
    from safetensors.numpy import save_file

    data = ctx.data()
    path = ctx.p.safetensors
    return save_bench(os.path.dirname(path), lambda: save_file(data, path))


@impl(("list", "safetensors"))
def list_keys(ctx: Ctx) -> Bench:
    from safetensors import safe_open

    path = need(ctx.p.safetensors, "safetensors file")

    def run() -> Any:
        with safe_open(path, framework="np") as f:
            return list(f.keys())

    return Bench(run, verify=lambda names: check_names(names, ctx.man, "safetensors list"))


@impl(("read", "safetensors_load_file"), ("ns_restore", "safetensors_load_file"))
def read_load_file(ctx: Ctx) -> Bench:
    from safetensors.numpy import load_file

    path = need(ctx.p.safetensors, "safetensors file")
    return Bench(
        lambda: load_file(path),
        verify=lambda got: check_tensors(got, ctx.man, "safetensors load_file"),
    )


@impl(("read", "safetensors_get_tensor"))
def read_get_tensor(ctx: Ctx) -> Bench:
    from safetensors import safe_open

    path = need(ctx.p.safetensors, "safetensors file")

    def run() -> Any:
        with safe_open(path, framework="np") as f:
            names = f.keys()
            return {name: f.get_tensor(name) for name in names}

    return Bench(run, verify=lambda got: check_tensors(got, ctx.man, "safetensors get_tensor"))


@impl(("read_zc", "safetensors_mmap"))
def read_mmap(ctx: Ctx) -> Bench:
    import mmap

    import crc32c
    import numpy as np

    path = need(ctx.p.safetensors, "safetensors file")

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
