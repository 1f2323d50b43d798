"""What the write pipeline writes at once: a batch of prepared tensors, and StringPieces."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from tfckpt import checksum

# A batch is written once it holds this many buffers or bytes.
BATCH_BUFFERS = 512
BATCH_BYTES = 1 << 20


class StringPieces:
    """A scalar string tensor given as buffers whose concatenation is its value.

    :meth:`BundleWriter.add` writes the buffers one after the other without joining them;
    NumpyState passes an array's ``.npy`` header and the array's own memory this way.
    Pieces are ``bytes`` or C-contiguous NumPy arrays, which must not change until added.
    """

    __slots__ = ("pieces",)

    def __init__(self, pieces: Iterable[Any]) -> None:
        self.pieces = tuple(pieces)


class WriteBatch:
    """Tensors prepared for one write: their buffers in order, and their entries' fields.

    Each tensor's checksum is ``crc32c(crc_data, crc_seed)``: the seed covers what was
    checksummed while preparing, ``crc_data`` the rest (b"" when nothing is left);
    ``unchecked`` counts the bytes of ``crc_data``.
    """

    __slots__ = (
        "buffers", "crc_data", "crc_seeds", "enums", "keys", "nbytes", "shapes", "sizes",
        "unchecked",
    )  # fmt: skip

    def __init__(self) -> None:
        self.keys: dict[bytes, None] = {}  # ordered, and a quick test for duplicates
        self.enums: list[int] = []
        self.shapes: list[tuple[int, ...]] = []
        self.sizes: list[int] = []
        self.crc_seeds: list[int] = []
        self.crc_data: list[Any] = []
        self.buffers: list[Any] = []
        self.nbytes = 0
        self.unchecked = 0

    def add_array(self, key: bytes, enum: int, array: np.ndarray) -> None:
        """A C-contiguous array, written from its own memory and checksummed whole."""
        self.keys[key] = None
        self.enums.append(enum)
        self.shapes.append(array.shape)
        self.sizes.append(nbytes := array.nbytes)
        self.crc_seeds.append(0)
        self.crc_data.append(array)
        self.buffers.append(array)
        self.nbytes += nbytes
        self.unchecked += nbytes

    def add_buffers(
        self, key: bytes, enum: int, shape: tuple[int, ...], buffers: Sequence[Any],
        nbytes: int, crc_seed: int, crc_data: Any = b"", crc_nbytes: int = 0,
    ) -> None:  # fmt: skip
        """A tensor of ``nbytes`` in all, written as ``buffers`` one after the other;
        ``crc_data`` (of ``crc_nbytes``) is what its checksum still has to cover."""
        self.keys[key] = None
        self.enums.append(enum)
        self.shapes.append(shape)
        self.sizes.append(nbytes)
        self.crc_seeds.append(crc_seed)
        self.crc_data.append(crc_data)
        self.buffers.extend(buffers)
        self.nbytes += nbytes
        self.unchecked += crc_nbytes

    def is_full(self) -> bool:
        return len(self.buffers) >= BATCH_BUFFERS or self.nbytes >= BATCH_BYTES

    def checksums(self) -> list[int]:
        return list(map(checksum.crc32c, self.crc_data, self.crc_seeds))
