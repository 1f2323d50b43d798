"""The BundleEntryProto codec, both directions, vectorised: one pass per field, not per entry.

The entry layout is described in :mod:`tfckpt.bundle`.

*Decoding* (:func:`decode_entries`): decoding tens of thousands of entries one by one
through protobuf, then turning each shape into Python ints, costs microseconds per entry;
instead all entries are walked in lock step, field by field, with NumPy, for the common
layout (dtype, shape, shard, offset, size, crc32c, each at most once).  Anything else
(slices, a repeated shape, unknown fields, negative or out-of-range values, malformed bytes)
marks the entry *irregular*: :class:`tfckpt.bundle.entries.EntryTable` then decodes it with
protobuf, so the columns are a cache of protobuf's reading, never a second opinion.

*Encoding* (:func:`encode_entries`, :func:`encode_entries_joined`, :func:`encode_header`):
exactly the bytes of protobuf's ``SerializeToString(deterministic=True)``: fields in number
order, proto3 scalars omitted when zero, the shape message present even when empty (a
scalar's); dtype and shape from a cache (models repeat a few shapes), the scalar fields of
all entries together with NumPy, every entry a masked row of one byte matrix.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tfckpt import checksum
from tfckpt.proto import tensor_bundle_pb2, tensor_slice_pb2
from tfckpt.table.bulk import decode_varints
from tfckpt.table.format import encode_varint, varint_lengths
from tfckpt.table.writer import JoinedValues
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
_VARINT_SHIFTS = np.arange(0, 70, 7, dtype=np.uint64)  # the 7-bit groups of a varint64
_BYTE_COLUMNS = np.arange(10)


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
    data, lengths = encode_entries_joined(entries)
    ends = np.cumsum(lengths).tolist()
    return [data[a:b] for a, b in zip([0, *ends], ends)]


def encode_entries_joined(entries: Sequence[EntryFields]) -> JoinedValues:
    """:func:`encode_entries` concatenated, with each entry's length: no bytes object per
    entry (what :meth:`tfckpt.table.writer.TableWriter.add_sorted` takes).

    Each entry is a row of a byte matrix, a column group per field (dtype and shape from a
    cache, then shard_id, offset, size and crc32c, each as tag and varint or fixed32); a mask
    keeps each row's used bytes and the masked matrix, read in row order, is the encoding.
    """
    n = len(entries)
    if n == 0:
        return JoinedValues(b"", np.zeros(0, np.int64))
    dtypes, shapes, shard_ids, offsets, sizes, crcs, slices = zip(*entries)
    heads = list(map(_dtype_and_shape, dtypes, shapes))
    parts = [_joined_rows(b"".join(heads), np.fromiter(map(len, heads), np.int64, n))]
    for tag, column in zip(_VARINT_TAGS, (shard_ids, offsets, sizes)):
        if any(column):  # all zero: omitted everywhere
            parts.append(_tagged_varints(tag, np.array(column, np.int64)))
    masked = checksum.mask_array(np.array(crcs, np.int64))
    partitioned = [i for i, s in enumerate(slices) if s] if any(slices) else []
    masked[partitioned] = 0  # proto3: a zero field is omitted
    crc_rows = np.zeros((n, 5), np.uint8)
    crc_rows[:, 0] = _CRC32C_TAG
    crc_rows[:, 1:] = masked.astype("<u4").view(np.uint8).reshape(n, 4)
    parts.append((crc_rows, np.where(masked != 0, 5, 0)))
    rows = np.concatenate([matrix for matrix, _ in parts], axis=1)
    # Column c of a part is kept where the row uses more than c of its bytes (the widths,
    # compared as bytes: fields are at most 11 bytes wide, heads at most 255 here).
    lengths = np.sum([used for _, used in parts], axis=0)
    columns: list[np.ndarray]
    used_bytes: list[np.ndarray]
    if rows.shape[1] < 256:
        columns = [np.arange(matrix.shape[1], dtype=np.uint8) for matrix, _ in parts]
        used_bytes = [used.astype(np.uint8)[:, None] for _, used in parts]
    else:
        columns = [np.arange(matrix.shape[1]) for matrix, _ in parts]
        used_bytes = [used[:, None] for _, used in parts]
    keep = np.concatenate([c < u for c, u in zip(columns, used_bytes)], axis=1)
    data = rows[keep].tobytes()
    if partitioned:  # (rare: one entry per partitioned tensor) the slices follow the crc
        ends = np.cumsum(lengths).tolist()
        pieces = [data[a:b] for a, b in zip([0, *ends], ends)]
        for i in partitioned:
            pieces[i] += b"".join(map(_slice_field, slices[i]))
            lengths[i] = len(pieces[i])
        data = b"".join(pieces)
    return JoinedValues(data, lengths)


def _joined_rows(joined: bytes, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Byte strings given joined, one per row of a matrix as wide as the longest (the
    bytes past a string's length are garbage the caller masks out), and their lengths."""
    width = max(int(lengths.max()), 1)
    starts = np.zeros(len(lengths), np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    padded = np.frombuffer(joined + bytes(width), np.uint8)
    return sliding_window_view(padded, width)[starts], lengths


def _tagged_varints(tag: int, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``tag`` and the varint of each value as matrix rows, and their used widths (0 where
    the value is 0: proto3 omits it).  A negative value takes 10 bytes, its two's
    complement, as protobuf encodes a negative int32 or int64 too."""
    wide = values.astype(np.uint64)
    width = varint_lengths(wide)
    groups = ((wide[:, None] >> _VARINT_SHIFTS) & np.uint64(0x7F)).astype(np.uint8)
    groups |= ((width - 1)[:, None] > _BYTE_COLUMNS).astype(np.uint8) << 7
    rows = np.empty((len(values), 11), np.uint8)
    rows[:, 0] = tag
    rows[:, 1:] = groups
    return rows, np.where(values != 0, 1 + width, 0)


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
