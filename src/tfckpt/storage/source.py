"""Reading bytes: the one door through which tfckpt reads a checkpoint's files.

A :class:`ByteSource` is one file opened for random access.  Tables read their file whole
through it; bundles fetch the byte ranges of the tensors asked for, into buffers the caller
owns (``readinto``, ``read_ranges``) or as zero-copy views (``view``) where the storage
allows.  :class:`LocalFile` is the implementation for local files: positional reads
(``preadv``, one system call for a whole buffer) and a read-only memory map for views.
Remote stores implement the same protocol (``view`` then returns None):
:class:`tfckpt.storage.remote.RemoteFile`, through fsspec.
"""

from __future__ import annotations

import mmap
import os
import stat
import sys
import threading
import weakref
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from tfckpt.errors import CheckpointNotFoundError, DataLossError, InvalidArgumentError

HAS_PREADV = hasattr(os, "preadv")
# A memory map keeps a duplicate of the file's descriptor unless told not to (Python >=
# 3.13): a mapped file would hold two.  (tfckpt never resizes or sizes its maps.)
_NO_DUP: dict[str, Any] = {"trackfd": False} if sys.version_info >= (3, 13) else {}


class ByteSource(Protocol):
    """One file's bytes, read at any offset; safe to use from several threads."""

    path: str

    def size(self) -> int:
        """The file's length in bytes."""
        ...

    def readinto(self, offset: int, buffer: Any) -> None:
        """Fills the contiguous writable ``buffer`` with the bytes at ``offset``.

        Raises DataLossError if the file ends first.
        """
        ...

    def read_ranges(self, ranges: Sequence[tuple[int, int]]) -> list[bytearray]:
        """The bytes of each ``(offset, size)`` range, in order."""
        ...

    def view(self, offset: int, size: int) -> memoryview | None:
        """A read-only zero-copy view of ``size`` bytes at ``offset``, or None where the
        storage cannot give one.  The view stays valid after :meth:`close`."""
        ...

    def changed(self) -> str | None:
        """How the file differs from when it was opened, for error messages (None: the
        same, or it cannot tell)."""
        ...

    def close(self) -> None:
        """Releases the file (views already returned stay valid); reads in flight in other
        threads complete first (see :class:`LocalFile`)."""
        ...


def _bytes_view(buffer: Any) -> memoryview:
    if isinstance(buffer, np.ndarray):
        buffer = buffer.reshape(-1).view(np.uint8)
    return memoryview(buffer).cast("B")


class LocalFile:
    """A local file read with positional reads and, for views, a read-only memory map.

    Closing is safe while other threads read: every operation holds the file in use
    (:meth:`acquire`/:meth:`release`, which callers may also hold around several
    operations), and :meth:`close` releases the descriptor and the map only when no
    operation is in flight, so no read ever uses a descriptor number that was closed (and
    perhaps reused by another file).  Once closed, :meth:`acquire` fails and operations
    raise InvalidArgumentError (but those of a caller whose acquire is still held run).
    The memory map is unmapped only when no view of it is alive (views hold a buffer
    export of it; the map is otherwise left to the garbage collector).

    Raises CheckpointNotFoundError when the file does not exist and DataLossError when the
    path is not a regular file (a directory, a FIFO that would block, a device).

    Example::

        source = LocalFile("model.ckpt-1.data-00000-of-00001")
        header = source.read_ranges([(0, 16)])[0]
        source.close()
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(self.path, flags)
        except FileNotFoundError:
            raise CheckpointNotFoundError("the file does not exist", path=self.path) from None
        except OSError as exc:
            raise DataLossError(f"cannot open the file: {exc.strerror}", path=self.path) from None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise DataLossError("not a regular file", path=self.path)
        self.fd = fd
        self._size = info.st_size
        self._map: mmap.mmap | None = None
        self._lock = threading.Lock()
        self._users = 0  # operations (or callers' acquire()) in flight
        self._closed = False
        # A reader that is dropped without close() must not keep its file open.
        self._closer = weakref.finalize(self, os.close, fd)

    def size(self) -> int:
        return self._size

    @property
    def closed(self) -> bool:
        return self._closed

    def acquire(self) -> bool:
        """Holds the file open until :meth:`release` (a :meth:`close` meanwhile waits for
        it); False, holding nothing, when the file is closed already."""
        with self._lock:
            if self._closed:
                return False
            self._users += 1
            return True

    def release(self) -> None:
        """Ends an :meth:`acquire`; the last one after a :meth:`close` releases the file."""
        with self._lock:
            self._users -= 1
            if self._closed and not self._users:
                self._release_now()

    def _enter(self) -> int:
        # An operation runs while the descriptor is open: after close() too, as long as
        # an acquire() in flight (a caller's pin around several operations) holds it.
        with self._lock:
            if self._closed and not self._users:
                raise InvalidArgumentError("the file is closed", path=self.path)
            self._users += 1
            return self.fd

    def current_size(self) -> int:
        """The file's length now (``fstat``): less than :meth:`size` when it was truncated
        after it was opened.  Raises InvalidArgumentError when the file is closed."""
        fd = self._enter()
        try:
            return os.fstat(fd).st_size
        finally:
            self.release()

    def readinto(self, offset: int, buffer: Any) -> None:
        self._enter()
        try:
            self._readinto(offset, buffer)
        finally:
            self.release()

    def _readinto(self, offset: int, buffer: Any) -> None:
        if HAS_PREADV:
            total = buffer.nbytes if isinstance(buffer, np.ndarray) else memoryview(buffer).nbytes
            done = os.preadv(self.fd, [buffer], offset)  # one system call, normally
            if done == total:
                return
        else:  # pragma: no cover - platforms without preadv (Windows)
            total = _bytes_view(buffer).nbytes
            done = 0
        rest = _bytes_view(buffer)
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
                raise DataLossError(
                    f"the file ends before byte {offset + total} (truncated while open?)",
                    path=self.path,
                )
            done += n

    def read_ranges(self, ranges: Sequence[tuple[int, int]]) -> list[bytearray]:
        out = []
        for offset, size in ranges:
            buffer = bytearray(size)
            if size:
                self.readinto(offset, buffer)
            out.append(buffer)
        return out

    def view(self, offset: int, size: int) -> memoryview:
        return self.mapping()[offset : offset + size]

    def mapping(self) -> memoryview:
        """The whole file as a read-only memory map (an empty view for an empty file).

        The map covers the file as it is when first mapped; touching a page of it beyond
        the file's current end (a file truncated since) raises SIGBUS, so callers compare
        what they touch with :meth:`current_size` first.
        """
        mapped = self._map
        if mapped is not None:  # (the common case, without taking the lock)
            try:
                return memoryview(mapped)
            except ValueError:  # closed by close() meanwhile: nothing was exported
                raise InvalidArgumentError("the file is closed", path=self.path) from None
        self._enter()
        try:
            if self._map is None:
                with self._lock:
                    if self._map is None and self._size > 0:
                        try:
                            self._map = mmap.mmap(self.fd, 0, access=mmap.ACCESS_READ, **_NO_DUP)
                        except OSError as exc:  # e.g. ENOMEM under an address-space limit
                            raise DataLossError(
                                f"cannot map the file into memory: {exc.strerror}",
                                path=self.path,
                            ) from None
                        except ValueError:  # "cannot mmap an empty file"
                            raise DataLossError(
                                f"the file had {self._size} bytes when opened and is empty "
                                "now (truncated while open?)",
                                path=self.path,
                            ) from None
            if self._map is None:
                return memoryview(b"")
            return memoryview(self._map)
        finally:
            self.release()

    def changed(self) -> None:
        return None  # read through the one descriptor opened: replacing the path is unseen

    def close(self) -> None:
        """Closes the file now, or when the operations in flight are done (views already
        returned stay valid).  Closing again does nothing."""
        with self._lock:
            self._closed = True
            if not self._users:
                self._release_now()

    def _release_now(self) -> None:
        # (Under self._lock, with no operation in flight.)  A memory map stays valid while
        # views of it are alive (each holds a buffer export of it, NumPy arrays' bases
        # included); closing it then raises BufferError, so the map is left to the garbage
        # collector, which unmaps it after the last view.  The map holds its own descriptor.
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:
                pass
            self._map = None
        if self._closer.alive:
            self._closer()
        self.fd = -1
