"""Random access to a bundle's data files: positional reads and read-only memory maps."""

from __future__ import annotations

import mmap
import os
import threading
from typing import Any

import numpy as np

from tfckpt.errors import CheckpointNotFoundError, DataLossError

HAS_PREADV = hasattr(os, "preadv")


def _bytes_view(buffer: Any) -> memoryview:
    if isinstance(buffer, np.ndarray):
        buffer = buffer.reshape(-1).view(np.uint8)
    return memoryview(buffer).cast("B")


class DataFile:
    """One open data shard.  Thread-safe: reads are positional."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        except FileNotFoundError:
            raise CheckpointNotFoundError(
                f"data file {path!r} of the checkpoint does not exist", path=path
            ) from None
        self.size = os.fstat(self.fd).st_size
        self._map: mmap.mmap | None = None
        self._lock = threading.Lock()

    def check_range(self, offset: int, size: int, tensor: str) -> None:
        if offset < 0 or offset + size > self.size:
            raise DataLossError(
                f"{self.path!r}, tensor {tensor!r}: the entry says bytes {offset}..{offset + size}"
                f" but the file has {self.size} bytes (truncated?)",
                path=self.path,
                tensor=tensor,
            )

    def readinto(self, offset: int, buffer: Any) -> None:
        """Fills ``buffer`` (any contiguous writable buffer, e.g. an ndarray) with the bytes
        at ``offset``; the caller checked the range."""
        if HAS_PREADV:
            total = buffer.nbytes if isinstance(buffer, np.ndarray) else memoryview(buffer).nbytes
            done = os.preadv(self.fd, [buffer], offset)  # one system call, normally
            if done == total:
                return
            rest = _bytes_view(buffer)
        else:  # pragma: no cover - platforms without preadv (Windows)
            rest = _bytes_view(buffer)
            total = len(rest)
            done = 0
        while done < total:
            if HAS_PREADV:
                n = os.preadv(self.fd, [rest[done:]], offset + done)
            else:  # pragma: no cover
                with self._lock:
                    os.lseek(self.fd, offset + done, os.SEEK_SET)
                    chunk = os.read(self.fd, total - done)
                n = len(chunk)
                rest[done : done + n] = chunk
            if n <= 0:
                raise DataLossError(f"{self.path!r}: unexpected end of file", path=self.path)
            done += n

    def view(self) -> memoryview:
        """The whole file as a read-only memory map (empty files give an empty view)."""
        if self._map is None:
            with self._lock:
                if self._map is None and self.size > 0:
                    self._map = mmap.mmap(self.fd, 0, access=mmap.ACCESS_READ)
        if self._map is None:
            return memoryview(b"")
        return memoryview(self._map)

    def close(self) -> None:
        # A memory map stays valid while NumPy views of it are alive; closing it then would
        # raise BufferError, so the map is left to the garbage collector in that case.
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:
                pass
            self._map = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
