"""Reading TensorBundle (V2) checkpoints."""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Container, Iterable
from typing import Any

import numpy as np

from tfckpt import checksum, dtypes, gc_pause
from tfckpt.bundle import batch
from tfckpt.bundle.index import decode_entries
from tfckpt.bundle.naming import data_filename, index_filename
from tfckpt.bundle.partial import Bounds, gather, normalize_index
from tfckpt.bundle.shards import HAS_PREADV, DataFile
from tfckpt.bundle.strings import StringDecodeError, decode_string_view, decode_strings
from tfckpt.errors import (
    CheckpointNotFoundError,
    DataLossError,
    InvalidArgumentError,
    TensorNotFoundError,
    UnsupportedError,
)
from tfckpt.proto import tensor_bundle_pb2
from tfckpt.table.reader import TableReader
from tfckpt.tensor_slice import TensorSlice, decode_slice_key, encode_slice_key

# tensor_bundle.cc: kTensorBundleVersion (the consumer version this reader implements)
# and kTensorBundleMinProducer.
BUNDLE_VERSION = 1
BUNDLE_MIN_PRODUCER = 0

_LITTLE = tensor_bundle_pb2.BundleHeaderProto.LITTLE
_BIG = tensor_bundle_pb2.BundleHeaderProto.BIG

Entry = Any  # a tfckpt.proto.tensor_bundle_pb2.BundleEntryProto
# storage dtype, shape, element count, shard id, offset, size, unmasked crc32c
_Record = tuple[np.dtype[Any], tuple[int, ...], int, int, int, int, int]
_crc32c = checksum.crc32c
_ENTRY_FROM_STRING = tensor_bundle_pb2.BundleEntryProto.FromString


def _key(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


def _name(key: bytes) -> str:
    return key.decode("utf-8", "surrogateescape")


class BundleReader:
    """Reads the tensors of the V2 checkpoint at ``prefix``.

    ``verify_checksums`` checks the CRC32C of every table block and every tensor read.
    The index is decoded in bulk when the reader opens (:mod:`tfckpt.bundle.index`); data
    files are opened on first use and read with positional reads straight into the
    returned arrays (owned arrays) or through a read-only memory map (``copy=False``).
    """

    def __init__(self, prefix: str | os.PathLike[str], *, verify_checksums: bool = True) -> None:
        self.prefix = os.fspath(prefix)
        self.index_path = index_filename(self.prefix)
        self._verify = verify_checksums
        if not os.path.exists(self.index_path):
            raise CheckpointNotFoundError(
                f"no checkpoint at {self.prefix!r}: {self.index_path!r} does not exist",
                path=self.index_path,
            )
        table = TableReader.open(self.index_path, verify_checksums=verify_checksums)
        self._table = table.entries()
        names = self._table.names()
        if not names or names[0] != "":
            raise DataLossError(
                f"{self.index_path!r}: no bundle header (the entry under the empty key is "
                "missing); is this a TensorFlow V2 checkpoint index?",
                path=self.index_path,
            )
        header = tensor_bundle_pb2.BundleHeaderProto()
        try:
            header.ParseFromString(self._table.value(0))
        except Exception:  # protobuf's DecodeError
            raise DataLossError(
                f"{self.index_path!r}: the bundle header is not a BundleHeaderProto",
                path=self.index_path,
            ) from None
        self._check_version(header.version)
        self._names = names[1:]  # entry i of the columns is table entry i + 1
        if header.num_shards < 1 and self._names:
            raise DataLossError(
                f"{self.index_path!r}: header says {header.num_shards} data shards",
                path=self.index_path,
            )
        if header.endianness not in (_LITTLE, _BIG):
            raise DataLossError(
                f"{self.index_path!r}: unknown endianness {header.endianness} in header",
                path=self.index_path,
            )
        self.num_shards: int = header.num_shards
        self.big_endian: bool = header.endianness == _BIG
        self.version = (header.version.producer, header.version.min_consumer)
        self._columns = decode_entries(
            self._table.data, self._table.value_start[1:], self._table.value_length[1:]
        )
        self._entries: dict[int, Entry] = {}  # protobuf-decoded entries, by slot
        self._shapes: dict[int, tuple[int, ...]] = {}  # validated shapes of irregular entries
        self._records: list[_Record | None] | None = None
        self._fast: tuple[np.ndarray, np.ndarray] | None = None
        self._shards: dict[int, DataFile] = {}
        self._visible: list[str] | None = None

    def _check_version(self, version: Any) -> None:
        # core/framework/versions.cc CheckVersions, with the bundle's constants.
        where = self.index_path
        if version.producer < BUNDLE_MIN_PRODUCER:
            raise UnsupportedError(
                f"{where!r}: checkpoint producer version {version.producer} is below the "
                f"minimum {BUNDLE_MIN_PRODUCER} this reader supports",
                path=where,
            )
        if version.min_consumer > BUNDLE_VERSION:
            raise UnsupportedError(
                f"{where!r}: checkpoint needs a reader of version >= {version.min_consumer}; "
                f"tfckpt implements version {BUNDLE_VERSION}",
                path=where,
            )
        if BUNDLE_VERSION in version.bad_consumers:
            raise UnsupportedError(
                f"{where!r}: checkpoint disallows readers of version {BUNDLE_VERSION}",
                path=where,
            )

    # -- entries ---------------------------------------------------------------------------

    def keys(self) -> list[str]:
        """Tensor names in key order; the per-slice entries of partitioned tensors are hidden.

        As TensorFlow's CheckpointReader does, a key is hidden only when a full-tensor entry
        lists its slice (tensorflow/c/checkpoint_reader.cc).
        """
        return list(self.visible_names())

    def visible_names(self) -> list[str]:
        """The names :meth:`keys` returns, shared with the reader: callers must not modify
        the list."""
        if self._visible is None:
            names = self._names
            # Slice keys start with a NUL byte (tensor_slice key encoding), so they sort
            # first: only that leading run needs looking at.
            first = 0
            while first < len(names) and names[first][:1] == "\x00":
                first += 1
            leading = [n for n in names[:first] if not self._is_listed_slice(n)]
            self._visible = leading + names[first:] if first else names
        return self._visible

    @functools.cached_property
    def _slot(self) -> dict[str, int]:
        """Entry index by name; built on first lookup (listing does not need it)."""
        return dict(zip(self._names, range(len(self._names))))

    def visible(self) -> tuple[list[str], Container[str]]:
        """The visible names (see :meth:`keys`) and a container to test membership; both
        shared with the reader (no copies), so callers must not modify them."""
        visible = self.visible_names()
        if visible is self._names:
            return self._names, self._slot  # no hidden slice entries: every key is visible
        return visible, frozenset(visible)

    def all_keys(self) -> list[str]:
        """Every key of the index but the header's, per-slice entries included."""
        return list(self._names)

    def _is_listed_slice(self, name: str) -> bool:
        try:
            full_name, tensor_slice = decode_slice_key(_key(name))
        except ValueError:
            return False
        if full_name not in self._slot:
            return False
        try:
            return tensor_slice in self.slices(full_name)
        except DataLossError:
            return False  # reported when the tensor itself is read

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._slot

    def _slot_of(self, name: str) -> int:
        slot = self._slot.get(name)
        if slot is None:
            raise TensorNotFoundError(
                f"tensor {name!r} not found in checkpoint {self.prefix!r}",
                path=self.prefix,
                tensor=name,
            )
        return slot

    def entry(self, name: str) -> Entry:
        """The validated BundleEntryProto of ``name``."""
        slot = self._slot_of(name)
        found = self._entries.get(slot)
        if found is not None:
            return found
        return self._parse_entry(slot, name)

    def _parse_entry(self, slot: int, name: str) -> Entry:
        try:
            entry = _ENTRY_FROM_STRING(self._table.value(slot + 1))
        except Exception:
            raise DataLossError(
                f"{self.index_path!r}, tensor {name!r}: entry is not a BundleEntryProto",
                path=self.index_path,
                tensor=name,
            ) from None
        shape = entry.shape
        dims = [d.size for d in shape.dim]
        if shape.unknown_rank or (dims and min(dims) < 0):
            raise DataLossError(
                f"{self.index_path!r}, tensor {name!r}: invalid tensor shape "
                f"{dims} (unknown_rank={shape.unknown_rank})",
                path=self.index_path,
                tensor=name,
            )
        self._entries[slot] = entry
        self._shapes[slot] = tuple(dims)
        return entry

    def _shape_list(self, slot: int, name: str) -> list[int]:
        shape = self._columns.shapes[slot]
        if shape is None:  # irregular: protobuf decodes (and validates) it
            if slot not in self._shapes:
                self._parse_entry(slot, name)
            return list(self._shapes[slot])
        return list(shape)

    def shape_map(self) -> dict[str, list[int]]:
        """``{name: shape}`` of every visible tensor, from the bulk-decoded index."""
        shapes = self._columns.shape_lists()  # new lists: the caller may keep them
        visible = self.visible_names()
        if visible is self._names:
            out = dict(zip(self._names, shapes))
        else:
            slot = self._slot
            out = {name: shapes[slot[name]] for name in visible}
        for i in np.flatnonzero(~self._columns.regular).tolist():
            name = self._names[i]
            if name in out:
                out[name] = self._shape_list(i, name)
        return out  # type: ignore[return-value]

    def dtype(self, name: str) -> dtypes.DType:
        """The dtype of ``name``; UnsupportedError for a DataType tfckpt does not know."""
        slot = self._slot_of(name)
        if self._columns.regular[slot]:
            enum = int(self._columns.dtype[slot])
        else:
            enum = self.entry(name).dtype
        found = dtypes.from_enum(enum)
        if found is None:
            raise UnsupportedError(
                f"{self.index_path!r}, tensor {name!r}: unknown dtype (DataType enum {enum}); "
                "a newer TensorFlow may have written it",
                path=self.index_path,
                tensor=name,
            )
        return found

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._shape_list(self._slot_of(name), name))

    def slices(self, name: str) -> list[TensorSlice]:
        """The stored slices of a partitioned tensor (empty for an ordinary tensor)."""
        try:
            return [TensorSlice.from_proto(s) for s in self.entry(name).slices]
        except ValueError as exc:
            raise DataLossError(
                f"{self.index_path!r}, tensor {name!r}: invalid slice in its entry: {exc}",
                path=self.index_path,
                tensor=name,
            ) from None

    # -- data ------------------------------------------------------------------------------

    def _shard(self, shard_id: int, name: str) -> DataFile:
        shard = self._shards.get(shard_id)
        if shard is None:
            if not 0 <= shard_id < self.num_shards:
                raise DataLossError(
                    f"{self.index_path!r}, tensor {name!r}: entry points to data shard "
                    f"{shard_id} but the checkpoint has {self.num_shards} shards",
                    path=self.index_path,
                    tensor=name,
                )
            path = data_filename(self.prefix, shard_id, self.num_shards)
            try:
                shard = DataFile(path)
            except CheckpointNotFoundError as exc:
                raise CheckpointNotFoundError(
                    f"{exc.message} (needed for tensor {name!r})", path=path, tensor=name
                ) from None
            self._shards[shard_id] = shard
        return shard

    def read(self, name: str, *, copy: bool = True) -> np.ndarray:
        """The tensor ``name`` as an array (0-d for scalars; object array of bytes for strings).

        Partitioned tensors are assembled from their slices.  With ``copy=False`` numeric
        tensors are read-only views of a memory map of the data file (no copy); with
        ``copy=True`` they are owned, writable arrays read straight into place.  Either way
        the tensor's CRC32C is checked when ``verify_checksums`` is on.
        """
        slot = self._slot.get(name)
        records = self._records if self._records is not None else self._build_records()
        record = records[slot] if slot is not None else None
        if record is None:
            return self._read_general(name, copy)
        # The fast path: a whole, little-endian, numeric tensor whose entry decoded cleanly.
        storage, shape, count, shard_id, offset, size, crc = record
        shard = self._shards.get(shard_id) or self._shard(shard_id, name)
        if offset + size > shard.size:
            shard.check_range(offset, size, name)
        if size >= batch.PARALLEL_BYTES and batch.workers() > 1:
            return self._read_large(name, record, shard, copy)
        if copy:
            array = np.empty(shape, storage)
            if size and (not HAS_PREADV or os.preadv(shard.fd, [array], offset) != size):
                shard.readinto(offset, array)  # a short read (or no preadv): retry in a loop
        else:
            array = np.frombuffer(shard.view(), storage, count, offset).reshape(shape)
        if self._verify and (actual := _crc32c(array)) != crc:
            self._compare_crc(name, self.entry(name), shard, actual)
        return array

    def _read_large(self, name: str, record: _Record, shard: DataFile, copy: bool) -> np.ndarray:
        # Large tensors: read and checksum in parallel pieces (batch.read_large).
        storage, shape, count, _, offset, _, crc = record
        if copy:
            array = np.empty(shape, storage)
            actual = batch.read_large(shard, array, offset, self._verify)
        else:
            array = np.frombuffer(shard.view(), storage, count, offset).reshape(shape)
            actual = batch.crc_large(array) if self._verify else None
        if actual is not None and actual != crc:
            self._compare_crc(name, self.entry(name), shard, actual)
        return array

    def read_many(self, names: Iterable[str], *, copy: bool = True) -> dict[str, np.ndarray]:
        """``{name: read(name, copy=copy)}`` for ``names``, read in bulk.

        With ``copy=True`` the tensors of each data file are read with a few large reads
        into one buffer that the returned (writable) arrays share (:mod:`tfckpt.bundle.batch`);
        with ``copy=False`` they are views of the memory map.  Checksums are verified, in
        parallel for large data, before anything is returned.
        """
        names = list(names)
        fast, storage_of = self._fast_columns()
        slot = self._slot
        try:
            slots = np.fromiter(map(slot.__getitem__, names), np.int64, len(names))
        except KeyError:  # some are not in the index: read() reports them
            slots = np.fromiter((slot.get(name, -1) for name in names), np.int64, len(names))
        chosen = np.zeros(len(names), bool)
        known = slots >= 0
        chosen[known] = fast[slots[known]]
        columns = self._columns
        out: dict[str, np.ndarray] = {}
        picked = slots[chosen]
        positions = np.flatnonzero(chosen)
        shard_ids = columns.shard_id[picked]
        for shard_id in np.unique(shard_ids).tolist():
            mine = shard_ids == shard_id
            rows = picked[mine]
            group = batch.Group(
                names=[names[i] for i in positions[mine].tolist()],
                storage=storage_of[rows].tolist(),
                shapes=_pick(columns.shapes, rows),
                offsets=columns.offset[rows],
                sizes=columns.size[rows],
                crcs=columns.crc32c[rows],
            )
            shard = self._shard(shard_id, group.names[0])
            ends = group.offsets + group.sizes
            if len(ends) and ends.max() > shard.size:
                i = int(np.argmax(ends > shard.size))
                shard.check_range(int(group.offsets[i]), int(group.sizes[i]), group.names[i])

            def mismatch(
                i: int, actual: int, group: batch.Group = group, shard: DataFile = shard
            ) -> None:
                name = group.names[i]
                self._compare_crc(name, self.entry(name), shard, actual)

            if copy:
                out.update(batch.read_owned(shard, group, self._verify, mismatch))
            else:
                out.update(batch.map_views(shard, group, self._verify, mismatch))
        for i in np.flatnonzero(~chosen).tolist():
            out[names[i]] = self.read(names[i], copy=copy)
        if len(out) == len(names) and chosen.all() and len(np.unique(shard_ids)) <= 1:
            return out  # already in the order asked for
        return {name: out[name] for name in names}

    def _fast_columns(self) -> tuple[np.ndarray, np.ndarray]:
        """Which entries the fast paths read (regular, whole, little-endian, numeric, with
        a consistent size), and each entry's storage dtype (an object array)."""
        if self._fast is not None:
            return self._fast
        columns = self._columns
        n = len(self._names)
        enums = columns.dtype
        itemsize = np.zeros(n, np.int64)
        storage_of = np.empty(n, object)
        for enum in np.unique(enums[columns.regular]).tolist():
            dtype = dtypes.from_enum(enum)
            if dtype is None or not dtype.is_numeric_storage:
                continue
            rows = enums == enum
            itemsize[rows] = dtype.storage_dtype.itemsize
            storage_of[rows] = dtype.storage_dtype
        fast = (
            columns.regular
            & (itemsize > 0)
            & (columns.num_elements >= 0)
            & (columns.num_elements * itemsize == columns.size)
            & (columns.shard_id < self.num_shards)
        )
        if self.big_endian:
            fast[:] = False
        self._fast = (fast, storage_of)
        return self._fast

    def _build_records(self) -> list[_Record | None]:
        """What the fast path of :meth:`read` needs per entry, or None where it does not
        apply (irregular entries, strings, slices, big-endian bundles, bad sizes)."""
        columns = self._columns
        fast, storage_of = self._fast_columns()
        records: list[_Record | None] = [None] * len(self._names)
        rows = np.flatnonzero(fast)
        shapes = columns.shapes
        fields = zip(
            rows.tolist(),
            storage_of[rows].tolist(),
            columns.num_elements[rows].tolist(),
            columns.shard_id[rows].tolist(),
            columns.offset[rows].tolist(),
            columns.size[rows].tolist(),
            columns.crc32c[rows].tolist(),
        )
        with gc_pause.paused():  # (many acyclic tuples)
            for i, storage, count, shard_id, offset, size, crc in fields:
                records[i] = (storage, tuple(shapes[i]), count, shard_id, offset, size, crc)  # type: ignore[arg-type]
        self._records = records
        return records

    def read_string_view(self, name: str) -> memoryview:
        """A 0-d string tensor's bytes as a read-only view of the memory map (no copy),
        checksum verified; InvalidArgumentError for any other tensor."""
        entry = self.entry(name)
        dtype = self.dtype(name)
        shape = tuple(d.size for d in entry.shape.dim)
        if dtype.name != "string" or shape != () or entry.slices:
            raise InvalidArgumentError(
                f"{self.prefix!r}, tensor {name!r}: not a scalar string but {dtype.name} "
                f"{list(shape)}",
                path=self.prefix,
                tensor=name,
            )
        shard = self._shard(entry.shard_id, name)
        shard.check_range(entry.offset, entry.size, name)
        if entry.size == 0:
            return memoryview(b"")
        return self._read_strings(name, entry, shard, (), 1, as_view=True)[()]  # type: ignore[no-any-return]

    def _read_general(self, name: str, copy: bool) -> np.ndarray:
        entry = self.entry(name)
        dtype = self.dtype(name)
        if entry.slices:
            return self._assemble(name, entry, dtype)
        return self._read_entry(name, entry, dtype, copy)

    def _read_entry(self, name: str, entry: Entry, dtype: dtypes.DType, copy: bool) -> np.ndarray:
        if dtype.name in ("resource", "variant"):
            raise UnsupportedError(
                f"{self.prefix!r}, tensor {name!r}: {dtype.name} tensors cannot be read "
                "without TensorFlow (they hold C++ objects, not data)",
                path=self.prefix,
                tensor=name,
            )
        shape = tuple(d.size for d in entry.shape.dim)
        count = math.prod(shape)
        shard = self._shard(entry.shard_id, name)
        shard.check_range(entry.offset, entry.size, name)
        if dtype.name == "string":
            if count > entry.size:  # every string takes at least its one-byte length
                raise DataLossError(
                    f"{shard.path!r}, tensor {name!r}: entry size {entry.size} is too small "
                    f"for {count} strings",
                    path=shard.path,
                    tensor=name,
                )
            return self._read_strings(name, entry, shard, shape, count)
        storage = dtype.storage_dtype
        expected = count * storage.itemsize
        if entry.size != expected:
            raise DataLossError(
                f"{shard.path!r}, tensor {name!r}: entry size is {entry.size} bytes but "
                f"{dtype.name} {list(shape)} needs {expected}",
                path=shard.path,
                tensor=name,
            )
        if copy:
            array = np.empty(shape, storage)
            raw = array.reshape(-1).view(np.uint8)
            if expected:
                shard.readinto(entry.offset, memoryview(raw))
            self._check_crc(name, entry, shard, raw)
        else:
            view = shard.view()[entry.offset : entry.offset + expected]
            self._check_crc(name, entry, shard, view)
            array = np.frombuffer(view, storage, count).reshape(shape)
        if self.big_endian and storage.itemsize > 1:
            array = _from_big_endian(array, storage, copy)
        return array

    def _check_crc(self, name: str, entry: Entry, shard: DataFile, data: Any) -> None:
        if not self._verify:
            return
        actual = checksum.crc32c(data)
        self._compare_crc(name, entry, shard, actual)

    def _compare_crc(self, name: str, entry: Entry, shard: DataFile, actual: int) -> None:
        stored = checksum.unmask(entry.crc32c)
        if stored != actual:
            raise DataLossError(
                f"{shard.path!r}, tensor {name!r}: checksum mismatch: the entry says crc32c "
                f"{stored:#010x}, the {entry.size} bytes at offset {entry.offset} give "
                f"{actual:#010x}",
                path=shard.path,
                tensor=name,
            )

    def _read_strings(
        self,
        name: str,
        entry: Entry,
        shard: DataFile,
        shape: tuple[int, ...],
        count: int,
        as_view: bool = False,
    ) -> np.ndarray:
        """String tensors as object arrays of bytes; ``as_view`` (0-d only) puts a read-only
        memoryview of the memory map in the array instead of a copy of the bytes."""
        out = np.empty(shape, dtype=object)
        if entry.size == 0 and count == 0:
            return out  # TensorFlow writes 4 checksum bytes even then, but tolerates none
        data = shard.view()[entry.offset : entry.offset + entry.size]
        try:
            if as_view and shape == ():
                out[()], crc = decode_string_view(data, self.big_endian)
                if self._verify:
                    self._compare_crc(name, entry, shard, crc)
                return out
            strings, crc = decode_strings(data, count, self.big_endian)
        except StringDecodeError as exc:
            raise DataLossError(
                f"{shard.path!r}, tensor {name!r}: corrupt string tensor: {exc}",
                path=shard.path,
                tensor=name,
            ) from None
        if self._verify:
            self._compare_crc(name, entry, shard, crc)
        out.reshape(-1)[:] = strings
        return out

    def _assemble(self, name: str, entry: Entry, dtype: dtypes.DType) -> np.ndarray:
        full_shape = tuple(d.size for d in entry.shape.dim)
        self._check_slice_sizes(name, full_shape, dtype)
        out = np.empty(full_shape, object if dtype.name == "string" else dtype.storage_dtype)
        covered = np.zeros(full_shape, bool)
        for tensor_slice in self.slices(name):
            slice_name = _name(encode_slice_key(name, tensor_slice))
            where = f"{self.index_path!r}, tensor {name!r}, slice {tensor_slice}"
            try:
                bounds = tensor_slice.bounds(full_shape)
            except ValueError as exc:
                raise DataLossError(f"{where}: {exc}", path=self.index_path, tensor=name) from None
            if slice_name not in self:
                raise DataLossError(
                    f"{where}: the slice's entry is missing from the index",
                    path=self.index_path,
                    tensor=name,
                )
            part_entry = self.entry(slice_name)
            part = self._read_entry(name, part_entry, dtype, copy=False)
            region = tuple(slice(start, stop) for start, stop in bounds)
            if part.shape != out[region].shape:
                raise DataLossError(
                    f"{where}: stored slice has shape {list(part.shape)}, expected "
                    f"{list(out[region].shape)}",
                    path=self.index_path,
                    tensor=name,
                )
            if covered[region].any():
                raise DataLossError(
                    f"{where}: overlaps another slice", path=self.index_path, tensor=name
                )
            out[region] = part
            covered[region] = True
        if not covered.all():
            raise DataLossError(
                f"{self.index_path!r}, tensor {name!r}: its slices cover only "
                f"{int(covered.sum())} of {covered.size} elements",
                path=self.index_path,
                tensor=name,
            )
        return out

    def _check_slice_sizes(
        self, name: str, full_shape: tuple[int, ...], dtype: dtypes.DType
    ) -> None:
        # Before allocating the full tensor: the slices' volumes must add up to it and
        # every slice entry must hold exactly its volume (so a crafted index cannot make
        # tfckpt allocate more than the data files hold).
        where = f"{self.index_path!r}, tensor {name!r}"
        total = 0
        for tensor_slice in self.slices(name):
            try:
                volume = math.prod(tensor_slice.shape_in(full_shape))
            except ValueError as exc:
                raise DataLossError(f"{where}: {exc}", path=self.index_path, tensor=name) from None
            key = _name(encode_slice_key(name, tensor_slice))
            if key in self and dtype.is_numeric_storage:
                size = self.entry(key).size
                if size != volume * dtype.size:
                    raise DataLossError(
                        f"{where}, slice {tensor_slice}: entry holds {size} bytes, the slice "
                        f"needs {volume * dtype.size}",
                        path=self.index_path,
                        tensor=name,
                    )
            total += volume
        if total != math.prod(full_shape):
            raise DataLossError(
                f"{where}: its slices cover {total} elements but the tensor has "
                f"{math.prod(full_shape)}",
                path=self.index_path,
                tensor=name,
            )

    def read_region(self, name: str, index: Any) -> np.ndarray:
        """``tensor[index]`` for basic indexing, reading only the bytes it needs.

        Numeric tensors are read through the memory map, per stored piece; string tensors are
        decoded whole first.  No checksum is verified (it covers whole tensors).
        """
        entry = self.entry(name)
        dtype = self.dtype(name)
        shape = tuple(d.size for d in entry.shape.dim)
        slices, int_axes = normalize_index(index, shape)
        if dtype.name == "string" or dtype.name in ("resource", "variant"):
            return self.read(name)[index]  # type: ignore[no-any-return]
        storage = dtype.storage_dtype
        parts: list[tuple[Bounds, Any]] = []
        stored = (
            [(s, _name(encode_slice_key(name, s))) for s in self.slices(name)]
            if entry.slices
            else [(TensorSlice.full(len(shape)), name)]
        )
        for tensor_slice, key in stored:
            if key not in self:
                raise DataLossError(
                    f"{self.index_path!r}, tensor {name!r}, slice {tensor_slice}: the slice's "
                    "entry is missing from the index",
                    path=self.index_path,
                    tensor=name,
                )
            part_entry = self.entry(key)
            part_shape = tuple(d.size for d in part_entry.shape.dim)
            try:
                bounds = tensor_slice.bounds(shape)
            except ValueError as exc:
                raise DataLossError(
                    f"{self.index_path!r}, tensor {name!r}: {exc}",
                    path=self.index_path,
                    tensor=name,
                ) from None
            count = math.prod(part_shape)
            if (
                part_entry.size != count * storage.itemsize
                or tuple(b - a for a, b in bounds) != part_shape
            ):
                raise DataLossError(
                    f"{self.index_path!r}, tensor {name!r}: stored piece {tensor_slice} has "
                    f"shape {list(part_shape)} and {part_entry.size} bytes, which do not fit",
                    path=self.index_path,
                    tensor=name,
                )
            shard = self._shard(part_entry.shard_id, name)
            shard.check_range(part_entry.offset, part_entry.size, name)

            def view(
                shard: DataFile = shard,
                entry: Entry = part_entry,
                part_shape: tuple[int, ...] = part_shape,
                count: int = count,
            ) -> np.ndarray:
                data = shard.view()[entry.offset : entry.offset + entry.size]
                return np.frombuffer(data, storage, count).reshape(part_shape)

            parts.append((bounds, view))
        out = gather(parts, slices, int_axes, storage)
        if self.big_endian and storage.itemsize > 1:
            out = _from_big_endian(out, storage, True)
        return out

    def close(self) -> None:
        for shard in self._shards.values():
            shard.close()
        self._shards.clear()

    def __enter__(self) -> BundleReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _pick(items: list[Any], rows: np.ndarray) -> list[Any]:
    """``[items[i] for i in rows]``, without the copy loop when ``rows`` is everything."""
    if len(rows) == len(items) and (
        len(rows) == 0 or (rows[0] == 0 and (np.diff(rows) == 1).all())
    ):
        return items
    return [items[i] for i in rows.tolist()]


def _from_big_endian(array: np.ndarray, storage: np.dtype[Any], copy: bool) -> np.ndarray:
    # byte_swap_tensor.cc: each element is swapped, complex numbers component by component.
    unit = storage.itemsize // 2 if storage.kind == "c" else storage.itemsize
    raw = array if copy else array.copy()
    raw.reshape(-1).view(f"u{unit}").byteswap(inplace=True)
    return raw
