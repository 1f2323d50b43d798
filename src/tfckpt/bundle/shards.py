"""Random access to a bundle's data files: positional reads and read-only memory maps."""

from __future__ import annotations

import mmap
import os
import threading

from tfckpt.errors import CheckpointNotFoundError, DataLossError


class DataFile:
    """One open data shard.  Thread-safe: reads are positional."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        except FileNotFoundError:
            raise CheckpointNotFoundError(
                f"data file {path!r} of the checkpoint does not exist", path=path
            ) from None
        self.size = os.fstat(self._fd).st_size
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

    def readinto(self, offset: int, buffer: memoryview) -> None:
        """Fills ``buffer`` with the bytes at ``offset`` (the caller checked the range)."""
        done = 0
        total = len(buffer)
        while done < total:
            if hasattr(os, "preadv"):
                n = os.preadv(self._fd, [buffer[done:]], offset + done)
            else:  # pragma: no cover - platforms without preadv (Windows)
                with self._lock:
                    os.lseek(self._fd, offset + done, os.SEEK_SET)
                    chunk = os.read(self._fd, total - done)
                n = len(chunk)
                buffer[done : done + n] = chunk
            if n <= 0:
                raise DataLossError(f"{self.path!r}: unexpected end of file", path=self.path)
            done += n

    def view(self) -> memoryview:
        """The whole file as a read-only memory map (empty files give an empty view)."""
        if self._map is None:
            with self._lock:
                if self._map is None and self.size > 0:
                    self._map = mmap.mmap(self._fd, 0, access=mmap.ACCESS_READ)
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
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
