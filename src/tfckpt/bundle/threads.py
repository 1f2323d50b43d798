"""The thread pool that reads, writes and checksums of large data share.

crc32c and file reads and writes release the GIL, so a few threads let checksums run
beside the I/O (or large checksums run in pieces) on as many cores as there are.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor


def workers() -> int:
    """Threads for parallel work: a few, as many as there are CPUs."""
    return max(1, min(4, os.cpu_count() or 1))


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def shared_pool() -> ThreadPoolExecutor:
    """The process-wide pool, made on first use (and again in a forked child)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(workers(), thread_name_prefix="tfckpt-read")
        return _pool


def _forget_pool_after_fork() -> None:
    # A forked child has none of the parent's threads: a pool inherited from the parent
    # would accept work and never run it.
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)
