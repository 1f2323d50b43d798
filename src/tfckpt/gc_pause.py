"""Pausing Python's cyclic garbage collector while many small containers are made.

Building the shapes of a 20,000-tensor index makes 20,000 lists; each 700 allocations
trigger a collection, and the older generations' collections rescan the whole heap, which
(measured) tripled the cost of making them.  The lists are acyclic, so the collector has
nothing to find in them: :func:`paused` suspends it for the few milliseconds it takes, and
restores whatever state it found (a collector the program disabled stays disabled).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """Suspends automatic collections inside the ``with`` block."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
