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

Partial reads (:meth:`BundleReader.read_region`) use the same extents.

The files may be on any :class:`~tfckpt.storage.location.Storage`: local files are read
through memory maps and positional reads, remote ones (fsspec) by ranged requests of just
the extents asked for; there, ``copy=False`` gives owned arrays (there is no map to view).

Closing (:meth:`BundleReader.close`) releases the local data files; a read in flight in
another thread holds its data file (:meth:`tfckpt.storage.source.LocalFile.acquire`) and
completes with correct values, the file being closed when it is done, and a read after
close opens the file again.  Memory-mapped reads compare the extents they touch with the
data file's current size first (``fstat``, once per call), so a file truncated since it was
opened is a DataLossError, not a SIGBUS.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from typing import Any

import numpy as np

from tfckpt import checksum, dtypes
from tfckpt.bundle import batch
from tfckpt.bundle.entries import Entry, EntryTable, Extent, Layout
from tfckpt.bundle.finish import assemble, decode_string_extent, from_big_endian
from tfckpt.bundle.header import BIG_ENDIAN, read_header
from tfckpt.bundle.naming import data_filename, index_filename
from tfckpt.bundle.strings import StringDecodeError, decode_string_view
from tfckpt.bundle.threads import shared_pool
from tfckpt.errors import (
    CheckpointNotFoundError,
    DataLossError,
    InvalidArgumentError,
)
from tfckpt.partial import Bounds, gather, normalize_index
from tfckpt.partial_ranges import RangedPiece
from tfckpt.storage.commit import aside_path, set_aside_source
from tfckpt.storage.location import LOCAL, Storage
from tfckpt.storage.source import HAS_PREADV, ByteSource, LocalFile
from tfckpt.table.files import open_table
from tfckpt.table.reader import TableReader
from tfckpt.tensor_slice import TensorSlice

_UINT8 = np.dtype(np.uint8)
_crc32c = checksum.crc32c
# How often a read opens a data file again that close() in another thread closed under it.
_REOPEN_TRIES = 100


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
        self._shards: dict[int, ByteSource] = {}
        self._local: dict[int, LocalFile] = {}  # the shards that are local files
        self._shards_lock = threading.Lock()  # opening shards, and close()
        if storage.remote:
            self._open_shards()

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

    def _open_shards(self) -> None:
        """Opens every data file that entries point to (concurrently), recording each one's
        version: reads are then pinned to it, and a checkpoint replaced after its index was
        read fails instead of being read against the old index.  Missing files are
        reported when a tensor in them is read, as for local checkpoints."""
        columns = self.entries.columns
        used = columns.regular & (columns.shard_id >= 0) & (columns.shard_id < self.num_shards)
        shard_ids = np.unique(columns.shard_id[used]).tolist()

        def open_one(shard_id: int) -> None:
            try:
                self._shard(shard_id, "")
            except CheckpointNotFoundError:
                pass

        if len(shard_ids) > 1:
            list(shared_pool().map(open_one, shard_ids))
        else:
            for shard_id in shard_ids:
                open_one(shard_id)

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
                    source := self._pin_local(whole.shard[slot], name)
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
            self._check_ranges(source, [name], np.array([offset]), np.array([size]))
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
                    self._check_current(source, [name], np.array([offset]), np.array([size]))
                    raise
            data = array
        else:
            # Touching mapped pages past the file's end would be SIGBUS: its size now (the
            # descriptor is pinned open).
            if size and offset > os.fstat(source.fd).st_size - size:
                self._check_current(source, [name], np.array([offset]), np.array([size]))
            data = source.view(offset, size)
            array = np.frombuffer(data, storage).reshape(shape)
        if self._verify:
            crc = _crc32c(data) if size < batch.PARALLEL_BYTES else batch.crc(data)
            if crc != whole.crc32c[slot]:
                self._mismatch(source, name, offset, size, whole.crc32c[slot], crc)
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
                    self._mismatch(source, name, extent.offset, extent.size, extent.crc32c, crc)
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
        source = self._pin(shard_id, labels[0])
        try:
            if sources is not None:
                sources[shard_id] = source
            self._check_ranges(source, labels, group.offsets, group.sizes)

            def mismatch(i: int, actual: int) -> None:
                offset, size = int(group.offsets[i]), int(group.sizes[i])
                self._mismatch(source, labels[i], offset, size, int(group.crcs[i]), actual)

            verify = verify and self._verify
            if copy:
                try:
                    return batch.read_owned(source, group, verify, mismatch)
                except DataLossError as exc:  # a short read: name the tensor
                    if isinstance(source, LocalFile) and exc.tensor is None:
                        self._check_current(source, labels, group.offsets, group.sizes)
                    raise
            if isinstance(source, LocalFile):  # mapped pages past the end would be SIGBUS
                self._check_current(source, labels, group.offsets, group.sizes)
            return batch.map_views(source, group, verify, mismatch)
        finally:
            self._unpin(source)

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
        source = self._pin(extent.shard, name)
        try:
            self._check_ranges(source, [name], offsets, sizes)
            if extent.size == 0:
                return memoryview(b"")
            if isinstance(source, LocalFile):  # mapped pages past the end would be SIGBUS
                self._check_current(source, [name], offsets, sizes)
            data = source.view(extent.offset, extent.size)
            if data is None:  # no memory map (a remote file): the bytes, owned
                data = memoryview(source.read_ranges([(extent.offset, extent.size)])[0])
        finally:
            self._unpin(source)
        try:
            view, crc = decode_string_view(data, self.big_endian)
        except StringDecodeError as exc:
            raise DataLossError(
                f"corrupt string tensor: {exc}", path=source.path, tensor=name
            ) from None
        if self._verify and crc != extent.crc32c:
            self._mismatch(source, name, extent.offset, extent.size, extent.crc32c, crc)
        return view

    def read_region(self, name: str, index: Any) -> np.ndarray:
        """``tensor[index]`` for basic indexing, reading only the bytes it needs.

        Numeric tensors are read through the memory map, per stored extent (remote files:
        ranged reads of just the bytes holding the selected elements); string tensors are
        decoded whole first.  No checksum is verified (it covers whole tensors).
        """
        shape = self.entries.shape(name)
        selection, int_axes = normalize_index(index, shape)
        layout = self.entries.layout(name)
        if layout.is_string:
            return self.read(name)[index]
        storage = layout.dtype.storage_dtype
        pieces: list[tuple[Bounds, Any]] = []
        pinned: dict[int, ByteSource] = {}  # held open until the selection is gathered
        current: dict[int, int] = {}  # the local files' sizes now (fstat, once each)
        try:
            for extent in layout.extents:
                source = pinned.get(extent.shard)
                if source is None:
                    source = pinned[extent.shard] = self._pin(extent.shard, name)
                offsets, sizes = np.array([extent.offset]), np.array([extent.size])
                self._check_ranges(source, [name], offsets, sizes)

                if not isinstance(source, LocalFile):  # no map: ranged reads of the selection
                    ranged = RangedPiece(source, extent.offset, extent.shape, storage)
                    pieces.append((extent.bounds, ranged))
                    continue
                if extent.shard not in current:
                    current[extent.shard] = source.current_size()
                if extent.size:  # mapped pages past the end would be SIGBUS
                    self._check_ranges(source, [name], offsets, sizes, current[extent.shard])

                def view(source: LocalFile = source, extent: Extent = extent) -> np.ndarray:
                    data = source.view(extent.offset, extent.size)
                    return np.frombuffer(data, storage).reshape(extent.shape)

                pieces.append((extent.bounds, view))
            out = gather(pieces, selection, int_axes, storage)
        finally:
            for source in pinned.values():
                self._unpin(source)
        if self.big_endian and storage.itemsize > 1:
            out = from_big_endian(out, True)
        return out

    # -- guards ----------------------------------------------------------------------------

    def _pin_local(self, shard_id: int, name: str) -> LocalFile | None:
        """The data file ``shard_id`` pinned open (release it when done) if it is a local
        file (opened if need be), else None."""
        source = self._local.get(shard_id)
        if source is not None and source.acquire():
            return source
        pinned = self._pin(shard_id, name)
        if isinstance(pinned, LocalFile):
            self._local[shard_id] = pinned
            return pinned
        return None

    def _pin(self, shard_id: int, name: str) -> ByteSource:
        """The data file ``shard_id``, opened if need be and (a local file) held open until
        :meth:`_unpin`: a :meth:`close` in another thread waits for the read using it.  A
        file closed between being looked up and pinned is opened again."""
        for _ in range(_REOPEN_TRIES):
            source = self._shard(shard_id, name)
            if not isinstance(source, LocalFile) or source.acquire():
                return source
            with self._shards_lock:  # closed under us: forget it (close() usually has)
                if self._shards.get(shard_id) is source:
                    del self._shards[shard_id]
                if self._local.get(shard_id) is source:
                    del self._local[shard_id]
        raise InvalidArgumentError(
            f"the reader was closed {_REOPEN_TRIES} times while this read opened its data file",
            path=self.prefix,
            tensor=name,
        )

    @staticmethod
    def _unpin(source: ByteSource) -> None:
        if isinstance(source, LocalFile):
            source.release()

    @property
    def set_aside(self) -> bool:
        """Whether this reader reads the set-aside files of an overwrite that was killed
        midway (:mod:`tfckpt.storage.commit`) rather than the files under the final names."""
        return self._set_aside

    def data_path(self, shard_id: int) -> str:
        """The path that data shard ``shard_id`` is read from (a set-aside file while an
        interrupted overwrite is not undone, see :attr:`set_aside`)."""
        path = data_filename(self.prefix, shard_id, self.num_shards)
        return set_aside_source(path) if self._set_aside else path

    def _shard(self, shard_id: int, name: str) -> ByteSource:
        source = self._shards.get(shard_id)
        if source is not None:
            return source
        with self._shards_lock:  # threads racing to open a shard open it once
            source = self._shards.get(shard_id)
            if source is None:
                path = self.data_path(shard_id)
                try:
                    source = self._storage.open(path)
                except CheckpointNotFoundError:
                    raise CheckpointNotFoundError(
                        f"the data file does not exist (needed for tensor {name!r})",
                        path=path,
                        tensor=name,
                    ) from None
                self._shards[shard_id] = source
        return source

    @staticmethod
    def _check_ranges(
        source: ByteSource,
        labels: list[str],
        offsets: np.ndarray,
        sizes: np.ndarray,
        file_size: int | None = None,
    ) -> None:
        """DataLossError naming the first extent that ends past ``file_size`` (by default
        the file's size when opened)."""
        opened = source.size()
        size = opened if file_size is None else file_size
        beyond = offsets > size - sizes  # (offset + size could overflow int64)
        if beyond.any():
            i = int(np.argmax(beyond))
            why = (
                "truncated?"
                if size == opened
                else f"it had {opened} when opened: truncated while open?"
            )
            raise DataLossError(
                f"the entry says bytes {int(offsets[i])}..{int(offsets[i]) + int(sizes[i])} "
                f"but the file has {size} bytes ({why})",
                path=source.path,
                tensor=labels[i],
            )

    @classmethod
    def _check_current(
        cls, source: LocalFile, labels: list[str], offsets: np.ndarray, sizes: np.ndarray
    ) -> None:
        """The extents against the file's size now (one ``fstat``): a file truncated since
        it was opened is DataLossError before any mapped page past its end is touched
        (which would be SIGBUS) or a short read is reported without its tensor.
        (TensorFlow maps nothing: BundleReader::GetValue in tensor_bundle.cc reads through
        a RandomAccessFile, so truncation is an error there too.)"""
        cls._check_ranges(source, labels, offsets, sizes, source.current_size())

    @staticmethod
    def _mismatch(
        source: ByteSource, name: str, offset: int, size: int, stored: int, actual: int
    ) -> None:
        change = source.changed()
        raise DataLossError(
            f"checksum mismatch: the entry says crc32c {stored:#010x}, the {size} bytes at "
            f"offset {offset} give {actual:#010x}"
            + (f" (the file changed since it was opened: {change})" if change else ""),
            path=source.path,
            tensor=name,
        )

    def close(self) -> None:
        """Closes the local data files (arrays and views already returned stay valid).

        Safe while other threads read: a read in flight completes with correct values and
        its file is closed when it is done; a read after close opens the file again.
        Remote files hold nothing to release and stay pinned to the versions first read.
        """
        with self._shards_lock:
            shards, local = self._shards, self._local
            self._shards = {k: s for k, s in shards.items() if not isinstance(s, LocalFile)}
            self._local = {}
        for source in {id(s): s for s in [*shards.values(), *local.values()]}.values():
            if isinstance(source, LocalFile):
                source.close()

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
