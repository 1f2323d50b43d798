"""Slices of partitioned tensors and the keys they are stored under.

A slice gives, per dimension, a start and a length; a length of -1 is the full extent.
Its text form (TensorSlice::DebugString / Parse in tensorflow/core/framework/tensor_slice.cc)
is ``start,length`` or ``-`` per dimension joined by ``:``, e.g. ``0,5:-``.

The key of a stored slice (EncodeTensorNameSlice in
tensorflow/core/util/saved_tensor_slice_util.cc) is, in ordered code::

    NumIncreasing(0) String(name) NumIncreasing(rank)
    then per dimension SignedNumIncreasing(start) SignedNumIncreasing(length)

so every slice key starts with a zero byte and sorts before ordinary tensor names.
Both the V2 bundle and the legacy V1 format use these keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tfckpt import ordered_code

if TYPE_CHECKING:
    from tfckpt.proto.tensor_slice_pb2 import TensorSliceProto

FULL_EXTENT = -1


@dataclass(frozen=True)
class TensorSlice:
    """Per-dimension ``starts`` and ``lengths`` (``-1`` = the whole dimension)."""

    starts: tuple[int, ...]
    lengths: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.starts) != len(self.lengths):
            raise ValueError("a slice needs as many starts as lengths")
        for start, length in zip(self.starts, self.lengths):
            # TensorSlice::BuildTensorSlice: a full extent, or start >= 0 and length > 0.
            if (start, length) != (0, FULL_EXTENT) and (start < 0 or length <= 0):
                raise ValueError(f"invalid slice extent start={start} length={length}")

    @classmethod
    def full(cls, rank: int) -> TensorSlice:
        return cls((0,) * rank, (FULL_EXTENT,) * rank)

    @classmethod
    def from_extents(cls, extents: Sequence[tuple[int, int] | None]) -> TensorSlice:
        """From ``(start, length)`` pairs, ``None`` meaning the full extent."""
        starts = tuple(0 if e is None else int(e[0]) for e in extents)
        lengths = tuple(FULL_EXTENT if e is None else int(e[1]) for e in extents)
        return cls(starts, lengths)

    @classmethod
    def parse(cls, spec: str) -> TensorSlice:
        """Parses TensorFlow's text form, e.g. ``'0,5:-'``."""
        extents: list[tuple[int, int] | None] = []
        if spec == "":
            return cls((), ())  # rank 0
        for part in spec.split(":"):
            if part == "-":
                extents.append(None)
                continue
            fields = part.split(",")
            if len(fields) != 2:
                raise ValueError(f"bad slice spec {spec!r}: expected 'start,length' or '-'")
            try:
                start, length = int(fields[0]), int(fields[1])
            except ValueError:
                raise ValueError(f"bad slice spec {spec!r}: not integers") from None
            extents.append((start, length))
        return cls.from_extents(extents)

    @classmethod
    def from_proto(cls, proto: TensorSliceProto) -> TensorSlice:
        """From a TensorSliceProto (an extent without ``length`` is the full extent)."""
        return cls.from_extents(
            [(e.start, e.length) if e.HasField("length") else None for e in proto.extent]
        )

    def to_proto(self, proto: TensorSliceProto) -> None:
        """Fills a TensorSliceProto as TensorSlice::AsProto does: full extents stay empty."""
        for start, length in zip(self.starts, self.lengths):
            extent = proto.extent.add()
            if length != FULL_EXTENT:
                extent.start = start
                extent.length = length

    @property
    def rank(self) -> int:
        return len(self.starts)

    def is_full(self) -> bool:
        return all(length == FULL_EXTENT for length in self.lengths)

    def bounds(self, full_shape: Sequence[int]) -> tuple[tuple[int, int], ...]:
        """``(start, stop)`` per dimension, full extents resolved against ``full_shape``.

        Raises ValueError when the slice does not fit in ``full_shape``.
        """
        if len(full_shape) != self.rank:
            raise ValueError(f"slice {self} has rank {self.rank}, tensor shape {list(full_shape)}")
        out = []
        for start, length, dim in zip(self.starts, self.lengths, full_shape):
            stop = dim if length == FULL_EXTENT else start + length
            if stop > dim:
                raise ValueError(f"slice {self} exceeds tensor shape {list(full_shape)}")
            out.append((start, stop))
        return tuple(out)

    def shape_in(self, full_shape: Sequence[int]) -> tuple[int, ...]:
        """The shape of this slice's data within a tensor of ``full_shape``."""
        return tuple(stop - start for start, stop in self.bounds(full_shape))

    def covers(self, full_shape: Sequence[int]) -> bool:
        """True when the slice is the whole tensor."""
        return self.shape_in(full_shape) == tuple(full_shape)

    def __str__(self) -> str:
        return ":".join(
            "-" if length == FULL_EXTENT else f"{start},{length}"
            for start, length in zip(self.starts, self.lengths)
        )


def encode_slice_key(name: str, tensor_slice: TensorSlice) -> bytes:
    """The key under which a slice of tensor ``name`` is stored."""
    parts = [
        ordered_code.write_num_increasing(0),
        ordered_code.write_string(name.encode("utf-8", "surrogateescape")),
        ordered_code.write_num_increasing(tensor_slice.rank),
    ]
    for start, length in zip(tensor_slice.starts, tensor_slice.lengths):
        parts.append(ordered_code.write_signed_num_increasing(start))
        parts.append(ordered_code.write_signed_num_increasing(length))
    return b"".join(parts)


def decode_slice_key(key: bytes) -> tuple[str, TensorSlice]:
    """Inverts :func:`encode_slice_key`; raises ValueError for anything else."""
    try:
        zero, pos = ordered_code.read_num_increasing(key, 0)
        if zero != 0:
            raise ValueError("not a slice key")
        name, pos = ordered_code.read_string(key, pos)
        rank, pos = ordered_code.read_num_increasing(key, pos)
        starts, lengths = [], []
        for _ in range(rank):
            start, pos = ordered_code.read_signed_num_increasing(key, pos)
            length, pos = ordered_code.read_signed_num_increasing(key, pos)
            starts.append(start)
            lengths.append(length)
    except ordered_code.OrderedCodeError as exc:
        raise ValueError(f"not a slice key: {exc}") from None
    if pos != len(key):
        raise ValueError("not a slice key: trailing bytes")
    return name.decode("utf-8", "surrogateescape"), TensorSlice(tuple(starts), tuple(lengths))
