"""Exclusive locks that keep two writers off the same files.

A lock is an ``flock`` on a lock file beside what it guards (``<guarded>.tempstate-tfckpt-
lock``).  The kernel drops it when its holder exits however it exits, SIGKILL included,
so a killed writer never leaves a lock that blocks: the file stays behind, holding the dead
holder's pid for messages, and the next holder takes it over (:attr:`FileLock.inherited`:
then, and only then, may a dead writer have left files to tidy).  A holder removes the file
when it releases the lock; whoever locked a file that was removed meanwhile (it raced the
release) finds that the path no longer names it and locks the path again.

Where ``fcntl`` is missing (Windows) no lock is taken.  On a file system that refuses
``flock`` (some network and FUSE file systems answer ENOLCK or EOPNOTSUPP) the lock is
skipped too: writers there are not kept apart.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time

from tfckpt.errors import ConcurrentWriteError, StorageError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_SUFFIX = ".tempstate-tfckpt-lock"
# How often a waiting writer tries again.
_POLL_SECONDS = 0.01
# flock errors that mean "this file system has no locks", not "someone holds it".
_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


def lock_path(guarded: str) -> str:
    """The lock file of ``guarded`` (a checkpoint prefix, a state file)."""
    return guarded + LOCK_SUFFIX


class FileLock:
    """A held lock; :meth:`release` (or the end of a ``with`` block) gives it up."""

    def __init__(self, path: str, fd: int | None, inherited: bool = True) -> None:
        self.path = path
        self._fd = fd
        # Whether the lock file was there already: a holder died without releasing it (or
        # no locks are taken here), so what it was writing may still lie around.
        self.inherited = inherited

    @classmethod
    def acquire(cls, guarded: str, *, wait: float = 0.0, what: str = "writer") -> FileLock:
        """Locks ``guarded`` for this writer, waiting up to ``wait`` seconds for a holder.

        Raises:
            ConcurrentWriteError: another writer (any process, or another writer in this
                one) holds the lock; the message gives its pid.
            StorageError: the lock file cannot be created.
        """
        path = lock_path(guarded)
        if fcntl is None:  # pragma: no cover - Windows
            return cls(path, None)
        deadline = time.monotonic() + wait
        while True:
            opened = _open_lock_file(path)
            if opened is None:
                continue  # removed between our two opens: try again
            fd, created = opened
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if time.monotonic() >= deadline:
                    raise ConcurrentWriteError(
                        f"another {what} is writing here (pid {_holder(path)}, per {path!r}); "
                        "two writers on the same files would mix them, so this one stops",
                        path=guarded,
                    ) from None
                time.sleep(_POLL_SECONDS)
                continue
            except OSError as exc:
                os.close(fd)
                if exc.errno not in _NO_LOCKS:
                    raise _lock_error(exc, path) from None
                if created:  # (no lock to hold: leave no file either)
                    with contextlib.suppress(OSError):
                        os.remove(path)
                return cls(path, None)
            if _still_named(fd, path):
                _record_holder(fd)
                return cls(path, fd, inherited=not created)
            os.close(fd)  # its holder removed it while we waited: lock the new one

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Removes the lock file and unlocks it (in this order, see the module docstring).
        Releasing twice does nothing."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.remove(self.path)
        os.close(fd)

    def __enter__(self) -> FileLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:  # a writer dropped without finish or abort
        fd = getattr(self, "_fd", None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


def _open_lock_file(path: str) -> tuple[int, bool] | None:
    """``(fd, whether this call created the file)``, or None when the file vanished
    between finding it and opening it."""
    flags = os.O_RDWR | getattr(os, "O_CLOEXEC", 0)
    directory = os.path.dirname(path)
    try:
        if directory:
            os.makedirs(directory, exist_ok=True)
        try:
            return os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o644), True
        except FileExistsError:
            pass
        try:
            return os.open(path, flags), False
        except FileNotFoundError:
            return None
    except OSError as exc:
        raise _lock_error(exc, path) from None


def _lock_error(exc: OSError, path: str) -> StorageError:
    return StorageError(
        f"cannot create the lock file that keeps writers apart: {exc.strerror or exc}",
        path=path,
        errno=exc.errno,
    )


def _still_named(fd: int, path: str) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _record_holder(fd: int) -> None:
    # Fixed width, over whatever a former holder wrote: no truncation (ext4 flushes a file
    # truncated to zero when it is closed, which would cost milliseconds per save).
    with contextlib.suppress(OSError):  # only for messages
        os.pwrite(fd, f"{os.getpid():>10}\n".encode(), 0)


def _holder(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read(32).strip() or "unknown"
    except OSError:
        return "unknown"
