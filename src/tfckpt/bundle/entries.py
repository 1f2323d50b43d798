"""The entries of a bundle index: every tensor's dtype, shape, place and checksum.

Every key of a ``.index`` table but the header's holds a serialized ``BundleEntryProto``
(the layout is described in :mod:`tfckpt.bundle`).  :class:`EntryTable` holds them all,
resolved once into columns: :func:`decode_entries` walks all entries in lock step, field by
field, with NumPy (one pass per field, not per entry), for the common layout (dtype, shape,
shard, offset, size, crc32c, each at most once).  Anything else (slices, a repeated shape,
unknown fields, out-of-range values, malformed bytes) marks the entry *irregular*; the
table decodes that entry with protobuf on first touch and validates it then, so the columns
are a cache of protobuf's reading, never a second opinion.

The table answers everything the readers need about an entry: name lookup, which names are
visible (:meth:`EntryTable.names`), dtypes, shapes, and a tensor's :class:`Layout`: where
each of its stored pieces is, validated against its dtype, shape and slices before any
byte is read or any memory allocated.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from tfckpt import checksum, dtypes
from tfckpt.errors import DataLossError, TensorNotFoundError, UnsupportedError
from tfckpt.proto import tensor_bundle_pb2
from tfckpt.shapes import MAX_RANK, check_numpy_shape
from tfckpt.table.bulk import TableEntries, decode_varints
from tfckpt.tensor_slice import TensorSlice, decode_slice_key, encode_slice_key

Entry = tensor_bundle_pb2.BundleEntryProto
_INT32_LIMIT = 1 << 31
_INT64_LIMIT = np.uint64(1 << 63)
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
            return tensor_slice in self.slices(full_name)
        except DataLossError:
            return False  # reported when the tensor itself is read

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
        exactly (each slice inside the tensor, with an entry holding exactly its volume, the
        volumes adding up to the tensor's).
        """
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
        return Layout(name, dtype, shape, extents, sliced=True)

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
        if not 0 <= entry.shard_id < self.num_shards:
            raise DataLossError(
                f"{where}entry points to data shard {entry.shard_id} but the checkpoint has "
                f"{self.num_shards} shards",
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


class EntryColumns:
    """Decoded fields of ``n`` entries; meaningful where ``regular`` is True.

    ``crc32c`` holds the *unmasked* checksums; ``num_elements`` is -1 where the count
    would overflow.  Shapes are held as arrays; :meth:`shape_lists` and :attr:`shapes`
    give them as lists of Python ints.
    """

    def __init__(self, n: int) -> None:
        self.regular = np.ones(n, bool)
        self.dtype = np.zeros(n, np.int64)
        self.shard_id = np.zeros(n, np.int64)
        self.offset = np.zeros(n, np.int64)
        self.size = np.zeros(n, np.int64)
        self.crc32c = np.zeros(n, np.int64)
        self.rank = np.zeros(n, np.int64)
        self.dim_first = np.zeros(n + 1, np.int64)  # dims of entry i: dims[first[i]:first[i+1]]
        self.dims = np.zeros(0, np.int64)
        self._shapes: list[list[int] | None] | None = None
        self._num_elements: np.ndarray | None = None

    @property
    def num_elements(self) -> np.ndarray:
        """Each entry's element count (product of its dims; -1 where it would overflow),
        computed on first use: listing a checkpoint does not need it."""
        if self._num_elements is None:
            self._num_elements = _count_elements(self)
        return self._num_elements

    def shape_lists(self) -> list[list[int] | None]:
        """A new list of every entry's shape (a new list of ints; None where irregular)."""
        n = len(self.regular)
        values: list[list[int] | None] = []
        rows_in_order: list[np.ndarray] = []
        for r in _ranks_present(self):
            rows = np.flatnonzero((self.rank == r) & self.regular)
            rows_in_order.append(rows)
            if r == 0:
                values.extend([] for _ in range(len(rows)))
            else:
                values.extend(self.dims[self.dim_first[rows][:, None] + np.arange(r)].tolist())
        irregular = np.flatnonzero(~self.regular)
        rows_in_order.append(irregular)
        values.extend([None] * len(irregular))
        where = np.empty(n, np.int64)
        where[np.concatenate(rows_in_order)] = np.arange(n)
        return list(map(values.__getitem__, where.tolist()))

    @property
    def shapes(self) -> list[list[int] | None]:
        """Every entry's shape, computed once and shared: callers must not modify them."""
        if self._shapes is None:
            self._shapes = self.shape_lists()
        return self._shapes


def decode_entries(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> EntryColumns:
    """Decodes the entries ``data[starts[i] : starts[i] + lengths[i]]`` (``data`` padded
    with at least 16 bytes, as :class:`tfckpt.table.bulk.TableEntries` holds it)."""
    n = len(starts)
    out = EntryColumns(n)
    ends = starts + lengths
    pos = starts.copy()
    shape_start = np.full(n, -1, np.int64)
    shape_end = np.zeros(n, np.int64)
    crc_masked = np.zeros(n, np.uint32)
    # First pass: the fields in the order protobuf serializes them (by field number, zero
    # scalars omitted), each at most once, which is how every writer we know lays them
    # out.  The rows it cannot account for take the general loop below from scratch.
    settled = _in_field_order(data, starts, ends, out, shape_start, shape_end, crc_masked)
    shape_start[~settled] = -1
    active = np.flatnonzero(~settled & (pos < ends))
    while len(active):
        p = pos[active]
        tag = data[p].astype(np.int64)
        p = p + 1
        field = tag >> 3
        wire = tag & 7
        is_varint = (wire == 0) & ((field == 1) | ((field >= 3) & (field <= 5)))
        is_crc = (wire == 5) & (field == 6)
        is_shape = (wire == 2) & (field == 2)
        bad = ~(is_varint | is_crc | is_shape)
        needs_varint = is_varint | is_shape
        values, after, ok = decode_varints(data, p[needs_varint], 10)
        new_pos = p.copy()
        new_pos[needs_varint] = after
        bad[needs_varint] |= ~ok
        # Scalars: protobuf keeps the last occurrence of a field, and so does this loop.
        rows = active[needs_varint]
        fields = field[needs_varint]
        narrow = (fields == 1) | (fields == 3)  # int32 and enum fields
        fits = values < np.where(narrow, np.uint64(_INT32_LIMIT), _INT64_LIMIT)
        bad[needs_varint] |= ~fits
        signed = values.astype(np.int64)
        for number, column in ((1, out.dtype), (3, out.shard_id), (4, out.offset), (5, out.size)):
            chosen = (fields == number) & fits
            column[rows[chosen]] = signed[chosen]
        shape_rows = is_shape[needs_varint]
        shape_len = signed[shape_rows]
        shape_at = after[shape_rows]
        shape_owner = rows[shape_rows]
        bad_shape = (shape_start[shape_owner] >= 0) | ~fits[shape_rows]  # repeated: merged
        # Compared before adding, so that a length near 2**63 cannot wrap around.
        overruns = shape_len > ends[shape_owner] - shape_at
        bad_shape |= overruns
        shape_len = np.where(overruns, 0, shape_len)
        shape_start[shape_owner] = shape_at
        shape_end[shape_owner] = shape_at + shape_len
        new_pos[is_shape] = shape_at + shape_len
        bad[is_shape] |= bad_shape
        crc_at = p[is_crc]
        crc_masked[active[is_crc]] = _fixed32_at(data, crc_at)
        new_pos[is_crc] = crc_at + 4
        bad |= new_pos > ends[active]
        out.regular[active[bad]] = False
        pos[active] = new_pos
        active = active[~bad & (new_pos < ends[active])]
    owner, size = _decode_shapes(data, out, shape_start, shape_end)
    out.crc32c = checksum.unmask_array(crc_masked)
    out.rank = np.bincount(owner, minlength=n)
    np.cumsum(out.rank, out=out.dim_first[1:])
    out.dims = size
    return out


_ORDERED_FIELDS = (  # (tag byte, column name or "" for the shape, wire kind)
    (0x08, "dtype", "varint"),
    (0x12, "", "shape"),
    (0x18, "shard_id", "varint"),
    (0x20, "offset", "varint"),
    (0x28, "size", "varint"),
    (0x35, "", "crc"),
)


def _in_field_order(
    data: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    out: EntryColumns,
    shape_start: np.ndarray,
    shape_end: np.ndarray,
    crc_masked: np.ndarray,
) -> np.ndarray:
    """Decodes entries whose fields appear in field-number order, each at most once; returns
    which rows it fully accounted for (their columns are set)."""
    pos = starts.copy()
    rows: np.ndarray | slice
    for tag, column, kind in _ORDERED_FIELDS:
        match = (data[pos] == tag) & (pos < ends)
        if match.all():
            rows = slice(None)  # the usual case: every entry has the field
        else:
            rows = np.flatnonzero(match)
            if not len(rows):
                continue
        p = pos[rows] + 1
        if kind == "crc":
            crc_masked[rows] = _fixed32_at(data, p)
            pos[rows] = p + 4
            continue
        values, after, ok = decode_varints(data, p, 10)
        limit = _INT32_LIMIT if tag in (0x08, 0x18) else int(_INT64_LIMIT)
        ok &= values < np.uint64(limit)
        signed = values.astype(np.int64)
        if kind == "shape":
            ok &= signed <= ends[rows] - after  # compared before adding: no wrap-around
            signed = np.where(ok, signed, 0)
            shape_start[rows] = after
            shape_end[rows] = after + signed
            after = after + signed
        else:
            getattr(out, column)[rows] = signed
        pos[rows] = np.where(ok, after, ends[rows] + 1)  # a failed row can match nothing more
    return pos == ends


def _fixed32_at(data: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """The little-endian uint32 at each position (any alignment) of the padded ``data``."""
    words = np.ndarray((len(data) - 3,), np.dtype("<u4"), data, 0, (1,))
    return words[positions]


def _decode_shapes(
    data: np.ndarray, out: EntryColumns, shape_start: np.ndarray, shape_end: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Decodes the dims of regular entries' shapes; returns each dim's entry and size, in
    entry order (entries it cannot decode become irregular and contribute none)."""
    owners: list[np.ndarray] = []
    sizes: list[np.ndarray] = []
    pos = shape_start.copy()
    active = np.flatnonzero(out.regular & (shape_start >= 0) & (pos < shape_end))
    while len(active):
        p = pos[active]
        tag = data[p]
        p = p + 1
        is_dim = tag == 0x12  # field 2, length-delimited
        is_unknown_rank = tag == 0x18  # field 3, varint
        values, after, ok = decode_varints(data, p, 10)
        bad = ~(is_dim | is_unknown_rank) | ~ok
        bad |= is_unknown_rank & (values != 0)  # the reader reports unknown rank itself
        length = values.astype(np.int64)
        bad |= is_dim & ((values >= _INT64_LIMIT) | (length < 0))
        bad |= is_dim & (length > shape_end[active] - after)  # before adding: no wrap-around
        new_pos = np.where(is_dim, after + np.where(bad, 0, length), after)
        # A dim is empty (size 0) or holds exactly "08 <varint size>".
        nonempty = is_dim & ~bad & (length > 0)
        dim_size = np.zeros(len(active), np.int64)
        if nonempty.any():
            inner = after[nonempty]
            size_values, size_end, size_ok = decode_varints(data, inner + 1, 10)
            well_formed = (
                (data[inner] == 0x08)
                & size_ok
                & (size_end == new_pos[nonempty])
                & (size_values < _INT64_LIMIT)
            )
            bad[nonempty] |= ~well_formed
            dim_size[nonempty] = size_values.astype(np.int64)
        bad |= new_pos > shape_end[active]
        keep = is_dim & ~bad
        owners.append(active[keep])
        sizes.append(dim_size[keep])
        out.regular[active[bad]] = False
        pos[active] = new_pos
        active = active[~bad & (new_pos < shape_end[active])]
    if not owners:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    owner = np.concatenate(owners)
    size = np.concatenate(sizes)
    order = np.argsort(owner, kind="stable")  # dims in stored order within an entry
    owner, size = owner[order], size[order]
    keep = out.regular[owner]
    return owner[keep], size[keep]


def _count_elements(out: EntryColumns) -> np.ndarray:
    counts = np.zeros(len(out.regular), np.int64)
    for r in _ranks_present(out):
        rows = np.flatnonzero((out.rank == r) & out.regular)
        if r == 0:
            counts[rows] = 1
            continue
        matrix = out.dims[out.dim_first[rows][:, None] + np.arange(r)]
        # In floating point first, so that an overflowing product is caught.
        fits = matrix.astype(np.float64).prod(axis=1) < 2.0**62
        counts[rows] = np.where(fits, matrix.prod(axis=1), -1)
    return counts


def _ranks_present(out: EntryColumns) -> list[int]:
    """The distinct ranks of the regular entries, ascending."""
    return np.flatnonzero(np.bincount(out.rank[out.regular])).tolist()
