"""Opened checkpoints shared between calls, so that reading one name at a time decodes the
index once.

``tfckpt.load_variable`` and ``tfckpt.list_variables`` open the checkpoint on every call,
as TensorFlow's do; code that calls them once per variable (Hugging Face's converters, for
one) would decode the same index hundreds of times.  They borrow the decoded reader from
:data:`SHARED` instead:

- an entry is keyed by the prefix, the format, ``verify_checksums`` and the *identity* of
  the files whose bytes the reader holds decoded (path, st_dev, st_ino, st_size,
  st_mtime_ns, st_ctime_ns of the ``.index``, or of every V1 file), taken by ``os.stat`` on
  every borrow; a rewritten checkpoint (a new inode, size or time) is opened again, never
  served stale, and replaces the old entry;
- idle entries hold no file descriptors: data files are opened lazily by the reader and
  closed again when its last borrower is done (the next borrow reopens them);
- the cache is bounded (8 checkpoints, 256 MiB of decoded files, least recently used
  first out; V1 readers hold their whole files, so large V1 checkpoints are not kept);
- it is thread-safe: borrowers share a reader (its reads are), and its files are closed
  only when nobody is using it.

Example::

    with SHARED.borrow(prefix, "v2", opener) as backend:
        backend.read_many(["dense/kernel"])
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tfckpt.backend import Backend
from tfckpt.bundle.naming import index_filename
from tfckpt.legacy.naming import v1_files

FileIdentity = tuple[str, int, int, int, int, int]


def identity(prefix: str, fmt: str) -> tuple[FileIdentity, ...] | None:
    """The identity of the files a decoded reader of ``prefix`` depends on (the index for
    ``'v2'``, every file for ``'v1'``), or None when one of them cannot be stat'ed."""
    files = [index_filename(prefix)] if fmt == "v2" else v1_files(prefix)
    out = []
    for path in files:
        try:
            st = os.stat(path)
        except OSError:
            return None
        out.append((path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return tuple(out) if out else None


class _Entry:
    __slots__ = ("backend", "identity", "users", "weight")

    def __init__(self, backend: Backend, files: tuple[FileIdentity, ...]) -> None:
        self.backend = backend
        self.identity = files
        self.users = 0
        self.weight = sum(f[3] for f in files)  # bytes of the files held decoded


class ReaderCache:
    """A bounded, thread-safe cache of opened backends (see the module docstring).

    ``max_entries`` checkpoints and ``max_bytes`` of decoded files at most.
    """

    def __init__(self, max_entries: int = 8, max_bytes: int = 256 << 20) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, str, bool], _Entry] = OrderedDict()
        self._lock = threading.Lock()

    @contextmanager
    def borrow(
        self,
        prefix: str,
        fmt: str,
        open_backend: Callable[[], Backend],
        *,
        verify_checksums: bool = True,
    ) -> Iterator[Backend]:
        """The cached backend of ``prefix`` if its files are unchanged, else a newly opened
        one (``open_backend()``, whose errors propagate), kept for the next borrower.

        Do not close the backend: its data files are closed when the last borrower is done.
        """
        key = (prefix, fmt, verify_checksums)
        files = identity(prefix, fmt)
        entry = self._take(key, files)
        if entry is None:
            entry = _Entry(open_backend(), files or ())
            entry.users = 1
            # Kept only if the files did not change while the index was being decoded.
            if files is not None and identity(prefix, fmt) == files:
                entry = self._keep(key, entry)
        try:
            yield entry.backend
        finally:
            self._give_back(entry)

    def _take(self, key: tuple[str, str, bool], files: object) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or files is None or entry.identity != files:
                return None
            self._entries.move_to_end(key)
            entry.users += 1
            return entry

    def _keep(self, key: tuple[str, str, bool], entry: _Entry) -> _Entry:
        """Stores ``entry`` (borrowed once) unless an equal one arrived first; returns the
        entry to use."""
        with self._lock:
            present = self._entries.get(key)
            if present is not None and present.identity == entry.identity:
                present.users += 1  # another thread opened it meanwhile: share that one
                entry.users = 0
                entry.backend.close()
                return present
            if entry.weight > self.max_bytes:
                self._entries.pop(key, None)  # (an entry of older files would only linger)
                return entry  # too large to keep: used once, closed on return
            self._entries[key] = entry  # replaces an entry of older files
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries or self._weight() > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                if evicted.users == 0:
                    evicted.backend.close()
            return entry

    def _give_back(self, entry: _Entry) -> None:
        with self._lock:
            entry.users -= 1
            if entry.users == 0:
                entry.backend.close()  # data files only; they are reopened lazily

    def _weight(self) -> int:
        return sum(entry.weight for entry in self._entries.values())

    def clear(self) -> None:
        """Forgets every entry (readers in use stay valid until their borrowers are done)."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


SHARED = ReaderCache()
"""The cache behind ``tfckpt.load_variable`` and ``tfckpt.list_variables``."""
