"""The entries of a bundle index: every tensor's dtype, shape, place and checksum.

:class:`EntryTable` holds every entry of an index, resolved once into columns by the
vectorised codec (:mod:`tfckpt.bundle.entry_codec`); the irregular entries the codec leaves
out are decoded with protobuf on first touch and validated then.  The table answers
everything the readers need about an entry: name lookup, which names are visible
(:meth:`EntryTable.names`), dtypes, shapes, and a tensor's :class:`Layout`: where each of
its stored pieces is, validated against its dtype, shape and slices before any byte is read
or any memory allocated.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from tfckpt import checksum, dtypes
from tfckpt.bundle.entry_codec import decode_entries
from tfckpt.errors import DataLossError, TensorNotFoundError, UnsupportedError
from tfckpt.proto import tensor_bundle_pb2
from tfckpt.shapes import MAX_RANK, check_numpy_shape
from tfckpt.table.bulk import TableEntries
from tfckpt.tensor_slice import TensorSlice, decode_slice_key, encode_slice_key

Entry = tensor_bundle_pb2.BundleEntryProto
_UNREADABLE = ("resource", "variant")  # they hold C++ objects, not data


def slice_key(name: str, tensor_slice: TensorSlice) -> str:
    """The key under which ``name``'s stored slice ``tensor_slice`` is kept."""
    return encode_slice_key(name, tensor_slice).decode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class Extent:
    """One stored piece of a tensor: its bytes in a data shard and where it belongs."""

    key: str  # the entry's key: the tensor's name, or the key of one of its slices
    shard: int
    offset: int
    size: int
    crc32c: int  # unmasked
    shape: tuple[int, ...]
    bounds: tuple[tuple[int, int], ...]  # its [start, stop) per dimension of the tensor
    tensor_slice: TensorSlice | None  # None for a tensor stored whole


@dataclass(frozen=True)
class Layout:
    """A tensor as stored: dtype, shape and the extents that hold it (validated)."""

    name: str
    dtype: dtypes.DType
    shape: tuple[int, ...]
    extents: list[Extent]
    sliced: bool

    @property
    def is_string(self) -> bool:
        return self.dtype.name == "string"


@dataclass(frozen=True)
class Whole:
    """Per entry, as lists: the storage dtype where the entry is a whole, little-endian,
    numeric tensor whose entry decoded cleanly and whose size fits its shape (else None;
    ``mask`` and ``storage_array`` say the same as arrays), and its shard, offset, size and
    unmasked crc32c."""

    mask: np.ndarray
    storage_array: np.ndarray
    storage: list[np.dtype[Any] | None]
    shard: list[int]
    offset: list[int]
    size: list[int]
    crc32c: list[int]


class EntryTable:
    """The entries of one index (``entries``: its table, header excluded).

    ``where`` names the index file in errors; ``num_shards`` and ``big_endian`` come from
    the header.  Every method raises DataLossError for an entry that does not hold together
    and TensorNotFoundError for a key that is not in the index.
    """

    def __init__(
        self, entries: TableEntries, where: str, *, num_shards: int, big_endian: bool
    ) -> None:
        self.where = where
        self.num_shards = num_shards
        self.big_endian = big_endian
        self.keys: list[str] = entries.names()[1:]  # every key, slice entries included
        self._table = entries
        self.columns = decode_entries(
            entries.data, entries.value_start[1:], entries.value_length[1:]
        )
        self._protos: dict[int, Entry] = {}  # protobuf-decoded entries, by slot
        self._visible: list[str] | None = None
        self._listed: dict[str, frozenset[TensorSlice]] = {}  # see _listed_slices
        self._layouts: dict[str, Layout] = {}  # validated layouts, by tensor name

    def __len__(self) -> int:
        return len(self.keys)

    # -- names -----------------------------------------------------------------------------

    @functools.cached_property
    def slots(self) -> dict[str, int]:
        """Entry position by key (every key); built on first lookup, listing needs none."""
        return dict(zip(self.keys, range(len(self.keys))))

    def names(self) -> list[str]:
        """The tensors' names in key order, shared (callers must not modify the list).

        The per-slice entries of partitioned tensors are hidden when the full tensor's
        entry lists their slice, as TensorFlow's CheckpointReader hides them
        (tensorflow/c/checkpoint_reader.cc).
        """
        if self._visible is None:
            keys = self.keys
            # Slice keys start with a NUL byte (tensor_slice key encoding), so they sort
            # first: only that leading run needs looking at.
            first = 0
            while first < len(keys) and keys[first][:1] == "\x00":
                first += 1
            leading = [k for k in keys[:first] if not self._is_listed_slice(k)]
            self._visible = leading + keys[first:] if first else keys
        return self._visible

    @functools.cached_property
    def _visible_set(self) -> dict[str, int] | frozenset[str]:
        names = self.names()
        return self.slots if names is self.keys else frozenset(names)

    def __contains__(self, name: object) -> bool:
        """Whether ``name`` is one of :meth:`names`."""
        return name in self._visible_set

    def _is_listed_slice(self, key: str) -> bool:
        try:
            full_name, tensor_slice = decode_slice_key(key.encode("utf-8", "surrogateescape"))
        except ValueError:
            return False
        if full_name not in self.slots:
            return False
        try:
            return tensor_slice in self._listed_slices(full_name)
        except DataLossError:
            return False  # reported when the tensor itself is read

    def _listed_slices(self, full_name: str) -> frozenset[TensorSlice]:
        """The slices ``full_name``'s entry lists, as a set made once per tensor: listing a
        tensor of k slices looks each of its k slice keys up in it."""
        found = self._listed.get(full_name)
        if found is None:
            found = self._listed[full_name] = frozenset(self.slices(full_name))
        return found

    def slot(self, key: str) -> int:
        """The position of ``key``'s entry; TensorNotFoundError if there is none."""
        found = self.slots.get(key)
        if found is None:
            raise TensorNotFoundError("not found in the checkpoint", path=self.where, tensor=key)
        return found

    # -- entries ---------------------------------------------------------------------------

    def entry(self, key: str) -> Entry:
        """The validated BundleEntryProto of ``key`` (any key, slice entries included)."""
        slot = self.slot(key)
        found = self._protos.get(slot)
        return found if found is not None else self._parse(slot)

    def _parse(self, slot: int) -> Entry:
        key = self.keys[slot]
        try:
            entry = Entry.FromString(self._table.value(slot + 1))
        except Exception:  # protobuf's DecodeError
            raise DataLossError(
                "its entry is not a BundleEntryProto", path=self.where, tensor=key
            ) from None
        dims = [d.size for d in entry.shape.dim]
        if entry.shape.unknown_rank or (dims and min(dims) < 0):
            raise DataLossError(
                f"invalid tensor shape {dims} (unknown_rank={entry.shape.unknown_rank})",
                path=self.where,
                tensor=key,
            )
        self._protos[slot] = entry
        return entry

    def dtype(self, key: str) -> dtypes.DType:
        """The dtype of ``key``; UnsupportedError for a DataType tfckpt does not know."""
        slot = self.slot(key)
        regular = self.columns.regular[slot]
        enum = int(self.columns.dtype[slot]) if regular else self.entry(key).dtype
        found = dtypes.from_enum(enum)
        if found is None:
            raise UnsupportedError(
                f"unknown dtype (DataType enum {enum}); a newer TensorFlow may have written it",
                path=self.where,
                tensor=key,
            )
        return found

    def shape(self, key: str) -> tuple[int, ...]:
        slot = self.slot(key)
        if self.columns.regular[slot]:
            return tuple(self.columns.shapes[slot])  # type: ignore[arg-type]
        return tuple(d.size for d in self.entry(key).shape.dim)

    def shape_map(self, names: list[str]) -> dict[str, list[int]]:
        """``{name: shape}`` for ``names`` (new lists: the caller may keep them)."""
        shapes = self.columns.shape_lists()
        if names is self.keys:
            out = dict(zip(self.keys, shapes))
        else:
            slots = self.slots
            out = {name: shapes[slots[name]] for name in names}
        for i in np.flatnonzero(~self.columns.regular).tolist():
            key = self.keys[i]
            if key in out:
                out[key] = list(self.shape(key))
        return out  # type: ignore[return-value]

    def slices(self, key: str) -> list[TensorSlice]:
        """The stored slices of a partitioned tensor (empty for a tensor stored whole)."""
        slot = self.slot(key)
        if self.columns.regular[slot]:
            return []  # entries with slices are never regular
        try:
            return [TensorSlice.from_proto(s) for s in self.entry(key).slices]
        except ValueError as exc:
            raise DataLossError(
                f"invalid slice in its entry: {exc}", path=self.where, tensor=key
            ) from None

    # -- layouts ---------------------------------------------------------------------------

    @functools.cached_property
    def whole(self) -> Whole:
        """What reading the common case needs per entry, with no per-entry work on the way
        (see :class:`Whole`)."""
        columns = self.columns
        n = len(self.keys)
        storage = np.full(n, None, object)
        mask = np.zeros(n, bool)
        if not self.big_endian:
            enums = columns.dtype
            for enum in np.unique(enums[columns.regular]).tolist():
                dtype = dtypes.from_enum(enum)
                if dtype is None or not dtype.is_numeric_storage:
                    continue
                item = dtype.storage_dtype
                rows = (
                    columns.regular
                    & (enums == enum)
                    & (columns.rank <= MAX_RANK)
                    & ((columns.num_elements > 0) | (columns.rank <= 1))  # see check_numpy_shape
                    & (columns.num_elements >= 0)
                    & (columns.num_elements * item.itemsize == columns.size)
                    & (columns.shard_id < self.num_shards)
                )
                storage[rows] = item
                mask |= rows
        return Whole(
            mask=mask,
            storage_array=storage,
            storage=storage.tolist(),
            shard=columns.shard_id.tolist(),
            offset=columns.offset.tolist(),
            size=columns.size.tolist(),
            crc32c=columns.crc32c.tolist(),
        )

    def shapes(self) -> list[list[int] | None]:
        """Every entry's shape (None where irregular), shared: callers must not modify."""
        return self.columns.shapes

    def layout(self, name: str) -> Layout:
        """Where the tensor ``name`` is stored, validated before anything is read.

        Raises UnsupportedError for resource and variant tensors, DataLossError when the
        entry's size does not fit its dtype and shape, or its slices do not tile the tensor
        exactly (each slice inside the tensor, with an entry holding exactly its volume, no
        two overlapping, the volumes adding up to the tensor's: so every element is stored
        once, which whole reads, views and partial reads rely on alike).  A layout is made
        once per tensor: a partitioned tensor's may have thousands of extents to check.
        """
        found = self._layouts.get(name)
        if found is None:
            found = self._layouts[name] = self._make_layout(name)
        return found

    def _make_layout(self, name: str) -> Layout:
        dtype = self.dtype(name)
        if dtype.name in _UNREADABLE:
            raise UnsupportedError(
                f"{dtype.name} tensors cannot be read without TensorFlow "
                "(they hold C++ objects, not data)",
                path=self.where,
                tensor=name,
            )
        shape = self.shape(name)
        check_numpy_shape(shape, dtype, self.where, name)
        stored = self.slices(name)
        if not stored:
            extent = self._extent(name, name, dtype, shape, None, tuple((0, n) for n in shape))
            return Layout(name, dtype, shape, [extent], sliced=False)
        extents = []
        total = 0
        for tensor_slice in stored:
            try:
                bounds = tensor_slice.bounds(shape)
            except ValueError as exc:
                raise DataLossError(
                    f"slice {tensor_slice}: {exc}", path=self.where, tensor=name
                ) from None
            key = slice_key(name, tensor_slice)
            if key not in self.slots:
                raise DataLossError(
                    f"slice {tensor_slice}: the slice's entry is missing from the index",
                    path=self.where,
                    tensor=name,
                )
            extents.append(self._extent(name, key, dtype, shape, tensor_slice, bounds))
            total += math.prod(b - a for a, b in bounds)
        if total != math.prod(shape):
            raise DataLossError(
                f"its slices cover {total} elements but the tensor has {math.prod(shape)}",
                path=self.where,
                tensor=name,
            )
        self._check_no_overlap(name, extents)
        return Layout(name, dtype, shape, extents, sliced=True)

    def _check_no_overlap(self, name: str, extents: list[Extent]) -> None:
        """DataLossError when two slices overlap (their volumes adding up to the tensor's,
        they then leave a hole); UnsupportedError when telling would take too many
        comparisons (a layout no TensorFlow partitioner writes)."""
        try:
            pair = find_overlap([e.bounds for e in extents])
        except TooManyComparisons:
            raise UnsupportedError(
                f"its {len(extents)} slices are too many to check for overlaps in this layout",
                path=self.where,
                tensor=name,
            ) from None
        if pair is not None:
            first, second = (extents[i].tensor_slice for i in pair)
            raise DataLossError(
                f"slice {second} overlaps slice {first} (and the slices leave a hole)",
                path=self.where,
                tensor=name,
            )

    def _extent(
        self,
        name: str,
        key: str,
        dtype: dtypes.DType,
        full_shape: tuple[int, ...],
        tensor_slice: TensorSlice | None,
        bounds: tuple[tuple[int, int], ...],
    ) -> Extent:
        entry = self.entry(key)
        where = f"slice {tensor_slice}: " if tensor_slice is not None else ""
        shape = tuple(b - a for a, b in bounds)
        stored_shape = tuple(d.size for d in entry.shape.dim)
        if tensor_slice is not None and stored_shape != shape:
            raise DataLossError(
                f"{where}stored slice has shape {list(stored_shape)}, expected {list(shape)}",
                path=self.where,
                tensor=name,
            )
        if tensor_slice is not None and entry.dtype != dtype.as_datatype_enum:
            raise DataLossError(
                f"{where}stored slice has DataType {entry.dtype}, the tensor "
                f"{dtype.as_datatype_enum} ({dtype.name})",
                path=self.where,
                tensor=name,
            )
        if not 0 <= entry.shard_id < self.num_shards:
            raise DataLossError(
                f"{where}entry points to data shard {entry.shard_id} but the checkpoint has "
                f"{self.num_shards} shards",
                path=self.where,
                tensor=name,
            )
        if entry.offset < 0 or entry.size < 0:  # int64 fields: a 10-byte varint is negative
            raise DataLossError(
                f"{where}entry says offset {entry.offset} and size {entry.size} in its data "
                "file; neither can be negative",
                path=self.where,
                tensor=name,
            )
        count = math.prod(shape)
        if dtype.name == "string":
            if count > entry.size:  # every string takes at least its one-byte length
                raise DataLossError(
                    f"{where}entry size {entry.size} is too small for {count} strings",
                    path=self.where,
                    tensor=name,
                )
        elif entry.size != count * dtype.size:
            raise DataLossError(
                f"{where}entry holds {entry.size} bytes but {dtype.name} {list(shape)} needs "
                f"{count * dtype.size}",
                path=self.where,
                tensor=name,
            )
        return Extent(
            key=key,
            shard=entry.shard_id,
            offset=entry.offset,
            size=entry.size,
            crc32c=checksum.unmask(entry.crc32c),
            shape=shape,
            bounds=bounds,
            tensor_slice=tensor_slice,
        )


# Box comparisons find_overlap may make (NumPy compares the boxes still open at each step).
_MAX_OVERLAP_COMPARISONS = 1 << 26


class TooManyComparisons(Exception):
    """find_overlap would need more than _MAX_OVERLAP_COMPARISONS comparisons."""


def find_overlap(boxes: list[tuple[tuple[int, int], ...]]) -> tuple[int, int] | None:
    """The indices of two boxes (``(start, stop)`` per dimension) that overlap, or None.

    Partitioned variables are cut along one axis: the boxes then agree on every other axis
    and sorting them along that one settles it.  Otherwise a sweep along the axis where the
    boxes' starts differ most compares each box with those still open there.
    """
    if len(boxes) < 2:
        return None
    starts = np.array([[a for a, _ in box] for box in boxes], np.int64).reshape(len(boxes), -1)
    stops = np.array([[b for _, b in box] for box in boxes], np.int64).reshape(len(boxes), -1)
    if starts.shape[1] == 0:
        return 0, 1  # two slices of a scalar both hold all of it
    axis = max(range(starts.shape[1]), key=lambda d: len(np.unique(starts[:, d])))
    order = np.argsort(starts[:, axis], kind="stable")
    order = order[(stops[order] > starts[order]).all(axis=1)]  # empty boxes overlap nothing
    others = np.arange(starts.shape[1]) != axis
    if (starts[order][:, others] == starts[order[:1]][:, others]).all() and (
        stops[order][:, others] == stops[order[:1]][:, others]
    ).all():
        clash = np.flatnonzero(stops[order[:-1], axis] > starts[order[1:], axis])
        return (int(order[clash[0]]), int(order[clash[0] + 1])) if len(clash) else None
    return _sweep(starts, stops, order, axis)


def _sweep(
    starts: np.ndarray, stops: np.ndarray, order: np.ndarray, axis: int
) -> tuple[int, int] | None:
    """find_overlap's general case: boxes in ``order`` (by start along ``axis``)."""
    open_boxes = np.zeros(0, np.int64)
    comparisons = 0
    for i in order.tolist():
        open_boxes = open_boxes[stops[open_boxes, axis] > starts[i, axis]]
        comparisons += len(open_boxes)
        if comparisons > _MAX_OVERLAP_COMPARISONS:
            raise TooManyComparisons
        if len(open_boxes):
            hit = ((starts[open_boxes] < stops[i]) & (starts[i] < stops[open_boxes])).all(axis=1)
            if hit.any():
                return int(open_boxes[np.argmax(hit)]), i
        open_boxes = np.append(open_boxes, i)
    return None
