"""The BundleEntryProto codec, both directions, vectorised: one pass per field, not per entry.

The entry layout is described in :mod:`tfckpt.bundle`.

*Decoding* (:func:`decode_entries`): decoding tens of thousands of entries one by one
through protobuf, then turning each shape into Python ints, costs microseconds per entry;
instead all entries are walked in lock step, field by field, with NumPy, for the common
layout (dtype, shape, shard, offset, size, crc32c, each at most once).  Anything else
(slices, a repeated shape, unknown fields, negative or out-of-range values, malformed bytes)
marks the entry *irregular*: :class:`tfckpt.bundle.entries.EntryTable` then decodes it with
protobuf, so the columns are a cache of protobuf's reading, never a second opinion.

*Encoding* (:func:`encode_entries`, :func:`encode_header`): exactly the bytes of protobuf's
``SerializeToString(deterministic=True)``: fields in number order, proto3 scalars omitted
when zero, the shape message present even when empty (a scalar's); dtype and shape from a
cache (models repeat a few shapes), the scalar fields of all entries together with NumPy.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from tfckpt import checksum
from tfckpt.proto import tensor_bundle_pb2, tensor_slice_pb2
from tfckpt.table.bulk import decode_varints
from tfckpt.table.format import encode_varint
from tfckpt.tensor_slice import TensorSlice

_INT32_LIMIT = 1 << 31
_INT64_LIMIT = np.uint64(1 << 63)


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


# -- encoding ------------------------------------------------------------------------------

# One entry's fields, in field order: dtype (a DataType enum), shape, shard_id, offset, size,
# crc32c (the *unmasked* CRC32C of the entry's data; stored masked, crc32c.h Mask) and
# slices.  A plain tuple: a writer makes tens of thousands at C speed with zip().
EntryFields = tuple[int, tuple[int, ...], int, int, int, int, tuple[TensorSlice, ...]]

_VARINT_TAGS = (0x18, 0x20, 0x28)  # shard_id, offset, size
_CRC32C_TAG = 0x35
_SLICES_TAG = b"\x3a"
_ROW_WIDTH = 3 * (1 + 10) + (1 + 4)  # three tagged varints of up to 10 bytes, the fixed32


def partitioned_entry(
    dtype: int, shape: tuple[int, ...], slices: tuple[TensorSlice, ...]
) -> EntryFields:
    """The entry of a tensor saved in slices: only dtype, full shape and the slices' extents;
    each slice's data has an entry of its own (tensor_bundle.cc BundleWriter::AddSlice)."""
    return (dtype, shape, 0, 0, 0, 0, slices)


def encode_entries(entries: Sequence[EntryFields]) -> list[bytes]:
    """Each entry serialized as a BundleEntryProto (see the module docstring).

    An entry with slices is stored without a checksum, as TensorFlow stores it.
    """
    if not entries:
        return []
    dtypes, shapes, shard_ids, offsets, sizes, crcs, slices = zip(*entries)
    masked = checksum.mask_array(np.array(crcs, np.int64))
    partitioned = [i for i, s in enumerate(slices) if s] if any(slices) else []
    masked[partitioned] = 0  # proto3: a zero field is omitted
    varint_columns = [
        np.array(column, np.int64) if any(column) else None
        for column in (shard_ids, offsets, sizes)
    ]
    blob, starts, stops = _scalar_fields(varint_columns, masked)
    out = [
        head + blob[start:stop]
        for head, start, stop in zip(map(_dtype_and_shape, dtypes, shapes), starts, stops)
    ]
    for i in partitioned:
        out[i] += b"".join(map(_slice_field, slices[i]))
    return out


def encode_header(big_endian: bool = False, num_shards: int = 1) -> bytes:
    """The BundleHeaderProto stored under the index's empty key (version: producer 1, the
    kTensorBundleVersion of tensor_bundle.h; min_consumer 0)."""
    header = tensor_bundle_pb2.BundleHeaderProto()
    header.num_shards = num_shards
    header.endianness = (
        tensor_bundle_pb2.BundleHeaderProto.BIG
        if big_endian
        else tensor_bundle_pb2.BundleHeaderProto.LITTLE
    )
    header.version.producer = 1
    return header.SerializeToString()


def _scalar_fields(
    varint_columns: list[np.ndarray | None], masked_crcs: np.ndarray
) -> tuple[bytes, list[int], list[int]]:
    """Fields 3 to 6 of every entry: entry i's are ``blob[starts[i]:stops[i]]``."""
    n = len(masked_crcs)
    rows = np.zeros((n, _ROW_WIDTH), np.uint8)
    used = np.zeros(n, np.int64)  # bytes of each row filled so far
    for tag, values in zip(_VARINT_TAGS, varint_columns):
        if values is None:  # all zero: omitted
            continue
        present = np.flatnonzero(values)
        used[present] = _put_varints(rows, present, used[present], tag, values[present])
    present = np.flatnonzero(masked_crcs)
    at = used[present]
    rows[present, at] = _CRC32C_TAG
    crc_bytes = masked_crcs[present].astype("<u4").view(np.uint8).reshape(-1, 4)
    for k in range(4):
        rows[present, at + 1 + k] = crc_bytes[:, k]
    used[present] += 5
    starts = np.arange(0, n * _ROW_WIDTH, _ROW_WIDTH)
    return rows.tobytes(), starts.tolist(), (starts + used).tolist()


def _put_varints(
    rows: np.ndarray, present: np.ndarray, at: np.ndarray, tag: int, values: np.ndarray
) -> np.ndarray:
    """Writes ``tag`` and the varint of ``values[j]`` at ``rows[present[j], at[j]:]``;
    returns where each row's next field goes.  (A negative value takes 10 bytes, as its
    two's complement, which is how protobuf encodes a negative int32 or int64 too.)"""
    rows[present, at] = tag
    remaining = values.astype(np.uint64)
    at = at + 1
    going = np.arange(len(present))
    while len(going):
        low = (remaining[going] & np.uint64(0x7F)).astype(np.uint8)
        remaining[going] >>= np.uint64(7)
        more = remaining[going] != 0
        rows[present[going], at[going]] = low | (more.astype(np.uint8) << 7)
        at[going] += 1
        going = going[more]
    return at


@functools.lru_cache(maxsize=16384)
def _dtype_and_shape(dtype: int, shape: tuple[int, ...]) -> bytes:
    """Fields 1 and 2 (TensorShapeProto: dim=2 {size=1}, zero sizes omitted)."""
    dims = b"".join(
        b"\x12\x00" if d == 0 else _length_delimited(b"\x12", b"\x08" + encode_varint(d))
        for d in shape
    )
    dtype_field = b"\x08" + encode_varint(dtype) if dtype else b""
    return dtype_field + _length_delimited(b"\x12", dims)


def _slice_field(tensor_slice: TensorSlice) -> bytes:
    proto = tensor_slice_pb2.TensorSliceProto()
    tensor_slice.to_proto(proto)
    return _length_delimited(_SLICES_TAG, proto.SerializeToString(deterministic=True))


def _length_delimited(tag: bytes, body: bytes) -> bytes:
    return tag + encode_varint(len(body)) + body
