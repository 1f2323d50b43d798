"""The raw rows: the hardware limits (plain reads, writes and CRC32C of tfckpt's data file)."""

from __future__ import annotations

import os
from typing import Any

from ..checks import Mismatch
from ..context import Bench, Ctx, save_bench
from ..files import readinto
from ..plan import RAW_READ
from .registry import IMPLS, impl


def _write(ctx: Ctx, fsync: bool) -> Bench:
    import crc32c
    import numpy as np

    source = ctx.raw_source()
    size = os.path.getsize(source)
    buffer = np.empty(size, np.uint8)
    readinto(source, buffer)
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
        readinto(out, check)
        if os.path.getsize(out) != size or crc32c.crc32c(check) != expected:
            raise Mismatch("raw write: the file written differs from the source bytes")

    return save_bench(os.path.dirname(out), run, verify)


@impl(("save", "raw_write"), ("ns_save", "raw_write"))
def write(ctx: Ctx) -> Bench:
    return _write(ctx, fsync=False)


@impl(("save", "raw_write_fsync"), ("ns_save", "raw_write_fsync"))
def write_fsync(ctx: Ctx) -> Bench:
    return _write(ctx, fsync=True)


def read(ctx: Ctx, kind: str) -> Bench:
    """One of the raw read rows (``kind`` is its lib name)."""
    import mmap

    import crc32c
    import numpy as np

    source = ctx.raw_source()
    size = os.path.getsize(source)
    with open(source, "rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        expected = crc32c.crc32c(mapped)
        mapped.close()
    buffer: Any = None  # only the kinds that read into one preallocated buffer
    if kind in ("raw_readinto", "raw_readinto_crc", "raw_crc"):
        buffer = np.empty(size, np.uint8)
        buffer.fill(0)  # fault the pages in, untimed
        if kind == "raw_crc":
            readinto(source, buffer)

    def run() -> Any:
        if kind == "raw_readinto":
            readinto(source, buffer)
            return None
        if kind == "raw_readinto_crc":
            readinto(source, buffer)
            return crc32c.crc32c(buffer)
        if kind == "raw_readinto_crc_fresh":
            fresh = np.empty(size, np.uint8)
            readinto(source, fresh)
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


def _read_as(kind: str) -> Any:
    return lambda ctx: read(ctx, kind)


for _kind in (*RAW_READ, "raw_mmap_crc"):
    for _section in ("read", "read_zc", "ns_restore"):
        IMPLS[(_section, _kind)] = _read_as(_kind)
