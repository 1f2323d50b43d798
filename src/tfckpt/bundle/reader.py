"""Reading TensorBundle (V2) checkpoints: one read pipeline for every kind of tensor.

Every read, of one tensor or of thousands, goes through :meth:`BundleReader.read_many`:

1. *resolve* each name to its extents (:class:`tfckpt.bundle.entries.Layout`), validated
   before anything is allocated; whole little-endian numeric tensors, the common case, come
   straight from the entry table's columns;
2. *group* the extents by data shard and check that they lie inside it;
3. *fetch* each group (:mod:`tfckpt.bundle.batch` picks the strategy: one positional read,
   parallel pieces of a large tensor, one arena for many tensors, memory-map views) and
   *verify* the CRC32C of every extent while it is in cache;
4. *finish*: swap the byte order of big-endian bundles, decode strings (their checksum is
   verified by the decoder), assemble partitioned tensors from their slices.

Partial reads (:meth:`BundleReader.read_region`, :mod:`tfckpt.bundle.region`) use the same
extents.

The files may be on any :class:`~tfckpt.storage.location.Storage`: local files are read
through memory maps and positional reads, remote ones (fsspec) by ranged requests of just
the extents asked for; there, ``copy=False`` gives owned arrays (there is no map to view).

Closing (:meth:`BundleReader.close`) releases the local data files
(:mod:`tfckpt.bundle.data_files` holds them and the guards of their bytes); a read in flight in
another thread holds its data file (:meth:`tfckpt.storage.source.LocalFile.acquire`) and
completes with correct values, the file being closed when it is done, and a read after
close opens the file again.  Memory-mapped reads compare the extents they touch with the
data file's current size first (``fstat``, once per call), so a file truncated since it was
opened is a DataLossError, not a SIGBUS.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np

from tfckpt import checksum, dtypes
from tfckpt.bundle import batch
from tfckpt.bundle.data_files import (
    DataFiles,
    check_current,
    check_ranges,
    checksum_mismatch,
    unpin,
)
from tfckpt.bundle.entries import Entry, EntryTable, Extent, Layout
from tfckpt.bundle.finish import assemble, decode_string_extent, from_big_endian
from tfckpt.bundle.header import BIG_ENDIAN, read_header
from tfckpt.bundle.naming import index_filename
from tfckpt.bundle.region import read_region
from tfckpt.bundle.strings import StringDecodeError, decode_string_view
from tfckpt.errors import CheckpointNotFoundError, DataLossError, InvalidArgumentError
from tfckpt.partial import normalize_index
from tfckpt.storage.commit import aside_path
from tfckpt.storage.location import LOCAL, Storage
from tfckpt.storage.source import HAS_PREADV, ByteSource, LocalFile
from tfckpt.table.files import open_table
from tfckpt.table.reader import TableReader
from tfckpt.tensor_slice import TensorSlice

_UINT8 = np.dtype(np.uint8)
_crc32c = checksum.crc32c


class BundleReader:
    """Reads the tensors of the V2 checkpoint at ``prefix``.

    ``verify_checksums`` checks the CRC32C of every table block and every tensor read.
    The index is decoded in bulk when the reader opens; local data files are opened on
    first use, remote ones (``storage``, see :func:`tfckpt.storage.location.locate`) right
    after the index, so that their versions are pinned before any tensor is read.  Raises
    CheckpointNotFoundError when there is no index, DataLossError when it is not a bundle
    index, UnsupportedError for versions this reader does not implement.

    Example::

        with BundleReader("model.ckpt-1") as reader:
            kernel = reader.read("dense/kernel")
    """

    def __init__(
        self,
        prefix: str | os.PathLike[str],
        *,
        verify_checksums: bool = True,
        storage: Storage = LOCAL,
    ) -> None:
        self.prefix = os.fspath(prefix)
        self.index_path = index_filename(self.prefix)
        self._verify = verify_checksums
        self._storage = storage
        self._set_aside = False  # reading the old files of an interrupted overwrite
        try:
            index = self._open_index()
        except CheckpointNotFoundError:
            raise CheckpointNotFoundError(
                f"no checkpoint at {self.prefix!r}: the index file does not exist",
                path=self.index_path,
            ) from None
        table = index.entries()
        header = read_header(table, self.index_path)
        self.num_shards: int = header.num_shards
        self.big_endian: bool = header.endianness == BIG_ENDIAN
        self.version = (header.version.producer, header.version.min_consumer)
        self.entries = EntryTable(
            table, self.index_path, num_shards=self.num_shards, big_endian=self.big_endian
        )
        if self.num_shards < 1 and len(self.entries):
            raise DataLossError(f"header says {self.num_shards} data shards", path=self.index_path)
        self._files = DataFiles(self.prefix, self.num_shards, storage, set_aside=self._set_aside)
        if storage.remote:
            self._files.open_all(self.entries)

    def _open_index(self) -> TableReader:
        """The index table; for a local prefix whose overwrite was killed between its
        renames, the old index that it set aside (:mod:`tfckpt.storage.commit`; reading
        never repairs, the next writer does).  The final name is tried again last: a live
        writer may have just completed."""
        try:
            return open_table(self.index_path, self._storage, verify_checksums=self._verify)
        except CheckpointNotFoundError:
            if self._storage.remote:
                raise
        aside = aside_path(self.index_path)
        try:
            table = open_table(aside, self._storage, verify_checksums=self._verify)
        except CheckpointNotFoundError:
            return open_table(self.index_path, self._storage, verify_checksums=self._verify)
        self.index_path, self._set_aside = aside, True
        return table

    # -- what is stored --------------------------------------------------------------------

    def names(self) -> list[str]:
        """Tensor names in key order, slice entries of partitioned tensors hidden (shared:
        callers must not modify the list)."""
        return self.entries.names()

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def entry(self, key: str) -> Entry:
        """The validated BundleEntryProto stored under ``key`` (slice keys included)."""
        return self.entries.entry(key)

    def dtype(self, name: str) -> dtypes.DType:
        return self.entries.dtype(name)

    def shape(self, name: str) -> tuple[int, ...]:
        return self.entries.shape(name)

    def slices(self, name: str) -> list[TensorSlice]:
        """The stored slices of a partitioned tensor (empty for one stored whole)."""
        return self.entries.slices(name)

    def shape_map(self) -> dict[str, list[int]]:
        """``{name: shape}`` of every tensor of :meth:`names`."""
        return self.entries.shape_map(self.names())

    # -- reading ---------------------------------------------------------------------------

    def read(self, name: str, *, copy: bool = True) -> np.ndarray:
        """The tensor ``name`` as an array (0-d for scalars; object array of bytes for strings).

        Partitioned tensors are assembled from their slices.  With ``copy=False`` numeric
        tensors are read-only views of a memory map of the data file (owned arrays for
        remote files); with ``copy=True`` they are owned, writable arrays read straight
        into place.  Either way the tensor's
        CRC32C is checked when ``verify_checksums`` is on.  Raises TensorNotFoundError,
        DataLossError (truncated or corrupt data), UnsupportedError (resource tensors).
        """
        return self.read_many([name], copy=copy)[name]

    def read_many(self, names: Iterable[str], *, copy: bool = True) -> dict[str, np.ndarray]:
        """``{name: read(name, copy=copy)}`` for ``names``, read in bulk.

        With ``copy=True`` the tensors of each data file are read with a few large reads
        into one buffer that the returned (writable) arrays share; with ``copy=False`` they
        are views of the memory map.  Checksums are verified before anything is returned.
        """
        names = names if isinstance(names, list) else list(names)
        if len(names) == 1:
            # The common case, one small whole numeric tensor, without planning: the same
            # guards as below (range, checksum) in a few microseconds.
            name = names[0]
            whole = self.entries.whole
            slot = self.entries.slots.get(name)
            if slot is not None and (storage := whole.storage[slot]) is not None:
                size = whole.size[slot]
                # (Local files only: remote ones take the planned path, one ranged read.)
                if (size < batch.PARALLEL_BYTES or not copy) and (
                    source := self._files.pin_local(whole.shard[slot], name)
                ) is not None:
                    try:
                        return {name: self._read_one(source, name, slot, storage, copy)}
                    finally:
                        source.release()
        return self._read_planned(names, copy)

    def _read_one(
        self, source: LocalFile, name: str, slot: int, storage: np.dtype[Any], copy: bool
    ) -> np.ndarray:
        """One whole numeric tensor of the pinned local ``source``: the same guards as the
        planned path (range, checksum) in a few microseconds."""
        whole = self.entries.whole
        offset, size = whole.offset[slot], whole.size[slot]
        if offset > source.size() - size:
            check_ranges(source, [name], np.array([offset]), np.array([size]))
        shape = self.entries.columns.shapes[slot]
        assert shape is not None  # a whole entry is regular: its shape is decoded
        data: np.ndarray | memoryview
        if copy:
            array = np.empty(shape, storage)
            # (os.preadv takes any writable buffer, ml_dtypes arrays included; NumPy's
            # stubs declare ndarray.__buffer__ for Python >= 3.12 only.  The descriptor is
            # pinned open: a close() in another thread waits for this read.)
            if size and (
                not HAS_PREADV or os.preadv(source.fd, [array], offset) != size  # type: ignore[list-item]
            ):
                try:
                    source.readinto(offset, array)  # a short read: retry in a loop
                except DataLossError:
                    check_current(source, [name], np.array([offset]), np.array([size]))
                    raise
            data = array
        else:
            # Touching mapped pages past the file's end would be SIGBUS: its size now (the
            # descriptor is pinned open).
            if size and offset > os.fstat(source.fd).st_size - size:
                check_current(source, [name], np.array([offset]), np.array([size]))
            data = source.view(offset, size)
            array = np.frombuffer(data, storage).reshape(shape)
        if self._verify:
            crc = _crc32c(data) if size < batch.PARALLEL_BYTES else batch.crc(data)
            if crc != whole.crc32c[slot]:
                raise checksum_mismatch(source, name, offset, size, whole.crc32c[slot], crc)
        return array

    def _read_planned(self, names: list[str], copy: bool) -> dict[str, np.ndarray]:
        entries = self.entries
        whole = entries.whole
        try:
            slots = np.fromiter(map(entries.slots.__getitem__, names), np.int64, len(names))
        except KeyError:
            for name in names:
                entries.slot(name)  # raises TensorNotFoundError for the first unknown name
            raise
        is_whole = whole.mask[slots]
        out: dict[str, np.ndarray] = {}
        # Whole numeric tensors: straight from the columns, one group per shard.
        rows = slots[is_whole]
        owners = np.flatnonzero(is_whole)
        columns = entries.columns
        for shard_id in np.unique(columns.shard_id[rows]).tolist():
            mine = columns.shard_id[rows] == shard_id
            picked = rows[mine]
            group = batch.Group(
                storage=whole.storage_array[picked].tolist(),
                shapes=_pick(entries.shapes(), picked),
                offsets=columns.offset[picked],
                sizes=columns.size[picked],
                crcs=columns.crc32c[picked],
            )
            group_names = [names[i] for i in owners[mine].tolist()]
            out.update(zip(group_names, self._fetch(shard_id, group_names, group, copy)))
        # Everything else: strings, partitioned and big-endian tensors, irregular entries.
        layouts = [entries.layout(names[i]) for i in np.flatnonzero(~is_whole).tolist()]
        if layouts:
            out.update(self._read_layouts(layouts, copy))
        if len(out) == len(names) and is_whole.all() and len(np.unique(columns.shard_id[rows])) < 2:
            return out  # already in the order asked for
        return {name: out[name] for name in names}

    def _read_layouts(self, layouts: list[Layout], copy: bool) -> dict[str, np.ndarray]:
        # Fetch every extent, grouped by shard and kind, then finish each tensor.
        by_group: dict[tuple[int, bool], list[tuple[Layout, Extent]]] = {}
        for layout in layouts:
            for extent in layout.extents:
                by_group.setdefault((extent.shard, layout.is_string), []).append((layout, extent))
        fetched: dict[tuple[str, str], np.ndarray] = {}
        sources: dict[int, ByteSource] = {}  # (for errors; they may be closed meanwhile)
        for (shard_id, is_string), members in by_group.items():
            group = batch.Group(
                storage=[
                    _UINT8 if is_string else layout.dtype.storage_dtype for layout, _ in members
                ],
                shapes=[[e.size] if is_string else list(e.shape) for _, e in members],
                offsets=np.array([e.offset for _, e in members], np.int64),
                sizes=np.array([e.size for _, e in members], np.int64),
                crcs=np.array([e.crc32c for _, e in members], np.int64),
            )
            labels = [layout.name for layout, _ in members]
            # Strings are decoded into new bytes objects: their bytes need no owned copy,
            # and their checksum is the decoder's.
            arrays = self._fetch(
                shard_id, labels, group, copy and not is_string, not is_string, sources
            )
            for (layout, extent), array in zip(members, arrays):
                fetched[layout.name, extent.key] = array
        return {layout.name: self._finish(layout, fetched, copy, sources) for layout in layouts}

    def _finish(
        self,
        layout: Layout,
        fetched: dict[tuple[str, str], np.ndarray],
        copy: bool,
        sources: dict[int, ByteSource],
    ) -> np.ndarray:
        parts = []
        for extent in layout.extents:
            raw = fetched[layout.name, extent.key]
            if layout.is_string:
                source = sources[extent.shard]
                name = layout.name
                part, crc = decode_string_extent(raw, extent, self.big_endian, source.path, name)
                if self._verify and crc is not None and crc != extent.crc32c:
                    raise checksum_mismatch(
                        source, name, extent.offset, extent.size, extent.crc32c, crc
                    )
            else:
                part = raw.reshape(extent.shape)
                if self.big_endian and part.dtype.itemsize > 1:
                    part = from_big_endian(part, copy)
            parts.append((extent, part))
        if not layout.sliced:
            return parts[0][1]
        return assemble(layout, parts)

    def _fetch(
        self,
        shard_id: int,
        labels: list[str],
        group: batch.Group,
        copy: bool,
        verify: bool = True,
        sources: dict[int, ByteSource] | None = None,
    ) -> list[np.ndarray]:
        """The group's extents of one shard, range-checked and (when ``verify``) their
        checksums verified; ``labels`` name their tensors in errors.  The data file is
        pinned open for the whole fetch (recorded in ``sources``)."""
        source = self._files.pin(shard_id, labels[0])
        try:
            if sources is not None:
                sources[shard_id] = source
            check_ranges(source, labels, group.offsets, group.sizes)

            def mismatch(i: int, actual: int) -> None:
                offset, size = int(group.offsets[i]), int(group.sizes[i])
                raise checksum_mismatch(source, labels[i], offset, size, int(group.crcs[i]), actual)

            verify = verify and self._verify
            if copy:
                try:
                    return batch.read_owned(source, group, verify, mismatch)
                except DataLossError as exc:  # a short read: name the tensor
                    if isinstance(source, LocalFile) and exc.tensor is None:
                        check_current(source, labels, group.offsets, group.sizes)
                    raise
            if isinstance(source, LocalFile):  # mapped pages past the end would be SIGBUS
                check_current(source, labels, group.offsets, group.sizes)
            return batch.map_views(source, group, verify, mismatch)
        finally:
            unpin(source)

    def read_string_view(self, name: str) -> memoryview:
        """A 0-d string tensor's bytes as a read-only view of the memory map (no copy),
        checksum verified; InvalidArgumentError for any other tensor."""
        layout = self.entries.layout(name)
        if not layout.is_string or layout.shape != () or layout.sliced:
            raise InvalidArgumentError(
                f"not a scalar string but {layout.dtype.name} {list(layout.shape)}",
                path=self.prefix,
                tensor=name,
            )
        extent = layout.extents[0]
        offsets, sizes = np.array([extent.offset]), np.array([extent.size])
        source = self._files.pin(extent.shard, name)
        try:
            check_ranges(source, [name], offsets, sizes)
            if extent.size == 0:
                return memoryview(b"")
            if isinstance(source, LocalFile):  # mapped pages past the end would be SIGBUS
                check_current(source, [name], offsets, sizes)
            data = source.view(extent.offset, extent.size)
            if data is None:  # no memory map (a remote file): the bytes, owned
                data = memoryview(source.read_ranges([(extent.offset, extent.size)])[0])
        finally:
            unpin(source)
        try:
            view, crc = decode_string_view(data, self.big_endian)
        except StringDecodeError as exc:
            raise DataLossError(
                f"corrupt string tensor: {exc}", path=source.path, tensor=name
            ) from None
        if self._verify and crc != extent.crc32c:
            raise checksum_mismatch(source, name, extent.offset, extent.size, extent.crc32c, crc)
        return view

    def read_region(self, name: str, index: Any) -> np.ndarray:
        """``tensor[index]`` for basic indexing, reading only the bytes it needs.

        Numeric tensors are read through the memory map, per stored extent (remote files:
        ranged reads of just the bytes holding the selected elements); string tensors are
        decoded whole first.  No checksum is verified (it covers whole tensors).
        """
        layout = self.entries.layout(name)
        selection, int_axes = normalize_index(index, layout.shape)  # (bad indexes raise first)
        if layout.is_string:
            return self.read(name)[index]
        return read_region(layout, self._files, selection, int_axes, self.big_endian)

    # -- the data files --------------------------------------------------------------------

    @property
    def set_aside(self) -> bool:
        """Whether this reader reads the set-aside files of an overwrite that was killed
        midway (:mod:`tfckpt.storage.commit`) rather than the files under the final names."""
        return self._set_aside

    def data_path(self, shard_id: int) -> str:
        """The path that data shard ``shard_id`` is read from (a set-aside file while an
        interrupted overwrite is not undone, see :attr:`set_aside`)."""
        return self._files.path(shard_id)

    def close(self) -> None:
        """Closes the local data files (arrays and views already returned stay valid).

        Safe while other threads read: a read in flight completes with correct values and
        its file is closed when it is done; a read after close opens the file again.
        Remote files hold nothing to release and stay pinned to the versions first read.
        """
        self._files.close()

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
