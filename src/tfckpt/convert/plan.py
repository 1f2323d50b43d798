"""What a conversion writes: each output name with its value's spec and how to read it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tfckpt.inspection.selection import ValueName
from tfckpt.inspection.sources import Spec

# Called with the number of bytes just processed, to drive a progress bar.
Progress = Callable[[int], None]


@dataclass(frozen=True)
class Planned:
    """One value to write: its output ``name``, ``spec``, where it comes from (``origin``)
    and a function that reads it (a read-only view where the source allows)."""

    name: str
    spec: Spec
    origin: ValueName
    read: Callable[[], np.ndarray]

    @property
    def nbytes(self) -> int:
        """Bytes of the value in memory (0 when unknown before reading: strings)."""
        return self.spec.nbytes or 0
