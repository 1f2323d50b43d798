"""What a checkpoint format's reader provides to the public reading API.

:class:`tfckpt.bundle.reader.BundleReader` (V2) and :class:`tfckpt.legacy.reader.V1Reader`
(V1) both implement :class:`Backend`; :class:`tfckpt.reader.CheckpointReader` talks to
either through it alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import numpy as np

from tfckpt.dtypes import DType
from tfckpt.tensor_slice import TensorSlice


class Backend(Protocol):
    """The reading interface of one checkpoint format."""

    prefix: str

    def names(self) -> list[str]:
        """The tensors' names in key order (shared: callers must not modify the list)."""
        ...

    def __contains__(self, name: object) -> bool:
        """Whether ``name`` is one of :meth:`names`."""
        ...

    def shape_map(self) -> dict[str, list[int]]:
        """``{name: shape}`` for every name, as new lists."""
        ...

    def dtype(self, name: str) -> DType: ...

    def shape(self, name: str) -> tuple[int, ...]: ...

    def slices(self, name: str) -> list[TensorSlice]:
        """The stored slices of a partitioned tensor (empty for one stored whole)."""
        ...

    def read_many(self, names: Iterable[str], *, copy: bool = True) -> dict[str, np.ndarray]:
        """``{name: array}``, read in bulk, checksums verified."""
        ...

    def read_region(self, name: str, index: Any) -> np.ndarray:
        """``tensor[index]`` for basic indexing, reading only what it needs."""
        ...

    def read_string_view(self, name: str) -> memoryview:
        """A 0-d string tensor's bytes, without copying them where the format allows."""
        ...

    def close(self) -> None: ...
