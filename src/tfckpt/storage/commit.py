"""Publishing a checkpoint's files so that readers only ever see complete checkpoints.

Every file is written under a temporary name and moved to its final name only once all of
them are complete, in order: the data shards first and the index last, so whoever finds the
index finds the data it points to.  (TensorFlow's BundleWriter::Finish in
tensorflow/core/util/tensor_bundle/tensor_bundle.cc writes ``<file>.tempstate<random>`` and
renames it, the data file before the index is even written; MergeBundles writes the merged
index straight under its final name.  tfckpt renames every file, the index last.)  With
``durable=True`` every file is also fsynced before the renames and its directory after
them, so a checkpoint survives a power loss (TensorFlow does not fsync).

:class:`Commit` is the protocol; :class:`LocalCommit` implements it on the local file
system.  A remote writer (an object store) implements the same methods: uploads staged by
``create``, completed in order by ``publish``, cancelled by ``abort``.  :func:`write_buffers`
writes many buffers to a created file at once, straight from their memory.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
from collections.abc import Sequence
from typing import Any, BinaryIO, NamedTuple, Protocol

import numpy as np

_HAS_WRITEV = hasattr(os, "writev")


def _iov_max() -> int:
    """The most buffers one os.writev takes (IOV_MAX; POSIX guarantees 16)."""
    try:
        return max(16, min(1024, os.sysconf("SC_IOV_MAX")))
    except (AttributeError, ValueError, OSError):
        return 16


_IOV_MAX = _iov_max()


class Commit(Protocol):
    """Files that appear under their final names together, in the order they were added."""

    def create(self, final_path: str, *, buffer_size: int = io.DEFAULT_BUFFER_SIZE) -> BinaryIO:
        """A new empty file to write, which :meth:`publish` moves to ``final_path``.

        The caller writes to it (its ``fileno()``, where there is one, may be written
        directly after a ``flush()``) but does not close it: publish and abort do.
        """
        ...

    def adopt(self, path: str, final_path: str) -> None:
        """Adds the complete existing file ``path``, which :meth:`publish` moves as it is to
        ``final_path`` in its turn (and :meth:`abort` leaves where it is)."""
        ...

    def publish(self) -> None:
        """Completes every file and moves each to its final path, in the order they were
        created or adopted: the last one is the commit point.

        Raises:
            OSError: writing or moving failed; the temporaries are removed, the files
                moved before the failure stay where they went.
        """
        ...

    def abort(self) -> None:
        """Discards every temporary; nothing more appears under the final names.  Doing it
        twice, or after :meth:`publish`, does nothing."""
        ...


class _Pending(NamedTuple):
    source: str  # a temporary, or an adopted file
    final: str
    file: BinaryIO | None  # open while the temporary is written; None if adopted


class LocalCommit:
    """:class:`Commit` on the local file system: ``os.replace`` of temporaries written beside
    their final paths (in the same directory, so that the rename is atomic)."""

    def __init__(self, *, durable: bool = False) -> None:
        self.durable = durable
        self._tag = secrets.token_hex(8)
        self._pending: list[_Pending] = []

    def create(self, final_path: str, *, buffer_size: int = io.DEFAULT_BUFFER_SIZE) -> BinaryIO:
        """See :meth:`Commit.create`; the parent directory is made when missing.

        Raises:
            ValueError: ``final_path`` was added already.
            OSError: the temporary cannot be created.
        """
        final = self._new_final(final_path)
        temp = f"{final}.tempstate{self._tag}"
        file: BinaryIO = io.BufferedWriter(io.FileIO(temp, "wb"), buffer_size)
        self._pending.append(_Pending(temp, final, file))
        return file

    def adopt(self, path: str, final_path: str) -> None:
        """See :meth:`Commit.adopt`; the parent directory is made when missing.

        Raises:
            ValueError: ``final_path`` was added already.
        """
        self._pending.append(_Pending(os.fspath(path), self._new_final(final_path), None))

    def publish(self) -> None:
        """See :meth:`Commit.publish`."""
        pending, self._pending = self._pending, []
        try:
            for item in pending:
                if item.file is not None:
                    self._complete(item.file)
            for item in pending:
                os.replace(item.source, item.final)
            if self.durable:
                for directory in dict.fromkeys(os.path.dirname(p.final) for p in pending):
                    _fsync_directory(directory or ".")
        except BaseException:
            _discard(pending)
            raise

    def abort(self) -> None:
        """See :meth:`Commit.abort`."""
        pending, self._pending = self._pending, []
        _discard(pending)

    def _new_final(self, final_path: str) -> str:
        final = os.fspath(final_path)
        if any(item.final == final for item in self._pending):
            raise ValueError(f"{final!r} is already part of this commit")
        directory = os.path.dirname(final)
        if directory:
            os.makedirs(directory, exist_ok=True)
        return final

    def _complete(self, file: BinaryIO) -> None:
        file.flush()
        if self.durable:
            os.fsync(file.fileno())
        file.close()


def write_buffers(file: BinaryIO, buffers: Sequence[Any], nbytes: int) -> None:
    """Writes ``nbytes`` from ``buffers`` (bytes-like objects, C-contiguous arrays) one after
    the other, straight from their memory: with gathered writes (os.writev) where ``file``
    is a local file, else through ``file.write``."""
    fd = _gather_fd(file)
    if fd is None:
        for buffer in buffers:
            file.write(buffer)
        return
    file.flush()  # what it holds goes first
    if len(buffers) <= _IOV_MAX:
        _write_gathered(fd, file, buffers, nbytes)
        return
    for start in range(0, len(buffers), _IOV_MAX):
        group = buffers[start : start + _IOV_MAX]
        _write_gathered(fd, file, group, sum(map(_byte_size, group)))


def _gather_fd(file: BinaryIO) -> int | None:
    if not _HAS_WRITEV:
        return None
    try:
        return file.fileno()
    except (OSError, ValueError):  # not a file (io.UnsupportedOperation is both)
        return None


def _write_gathered(fd: int, file: BinaryIO, buffers: Sequence[Any], nbytes: int) -> None:
    written = os.writev(fd, buffers)
    if written == nbytes:
        return
    # A short write (rare for files: a signal, a full disk): the rest through ``file``,
    # which raises a persisting error.
    for buffer in buffers:
        view = _byte_view(buffer)
        if written >= len(view):
            written -= len(view)
            continue
        file.write(view[written:])
        written = 0
    file.flush()


def _byte_view(buffer: Any) -> memoryview:
    if isinstance(buffer, np.ndarray):  # (memoryview cannot take ml_dtypes' arrays)
        return buffer.reshape(-1).view(np.uint8).data
    return memoryview(buffer).cast("B")


def _byte_size(buffer: Any) -> int:
    return int(buffer.nbytes) if isinstance(buffer, np.ndarray) else memoryview(buffer).nbytes


def _discard(pending: list[_Pending]) -> None:
    """Closes and removes the temporaries (those already moved are gone: nothing to do)."""
    for item in pending:
        if item.file is None:
            continue
        with contextlib.suppress(Exception):  # a failing disk must not hide the first error
            item.file.close()
        with contextlib.suppress(FileNotFoundError):
            os.remove(item.source)


def _fsync_directory(directory: str) -> None:
    """Makes the renames in ``directory`` durable, where the system allows it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse
        pass
    finally:
        os.close(fd)
