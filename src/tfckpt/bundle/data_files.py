"""The data files of one V2 checkpoint, as a reader holds them: opened once, pinned for
each read, closed safely while other threads read; and the guards every read of their
bytes passes (ranges inside the file, the file's size now, checksum mismatches named).

A local data file is opened on first use and held open by each read that uses it
(:meth:`tfckpt.storage.source.LocalFile.acquire`): :meth:`DataFiles.close` in another
thread waits for those reads, which complete with correct values, and a read after it
opens the file again.  Remote data files are opened together right after the index, so
that their versions are pinned before any tensor is read (a checkpoint replaced after its
index was read then fails instead of being read against the old index).
"""

from __future__ import annotations

import threading

import numpy as np

from tfckpt.bundle.entries import EntryTable
from tfckpt.bundle.naming import data_filename
from tfckpt.bundle.threads import shared_pool
from tfckpt.errors import CheckpointNotFoundError, DataLossError, InvalidArgumentError
from tfckpt.storage.commit import set_aside_source
from tfckpt.storage.location import Storage
from tfckpt.storage.source import ByteSource, LocalFile

# How often a read opens a data file again that close() in another thread closed under it.
_REOPEN_TRIES = 100


class DataFiles:
    """The data shards of the checkpoint at ``prefix`` on ``storage``.

    ``set_aside``: read the set-aside files of an overwrite that was killed midway
    (:mod:`tfckpt.storage.commit`) instead of the files under their final names.

    Example::

        files = DataFiles("model.ckpt-1", 1, LOCAL)
        source = files.pin(0, "dense/kernel")
        try:
            data = source.read_ranges([(0, 16)])
        finally:
            unpin(source)
        files.close()
    """

    def __init__(self, prefix: str, num_shards: int, storage: Storage, *, set_aside: bool):
        self.prefix = prefix
        self.num_shards = num_shards
        self.storage = storage
        self.set_aside = set_aside
        self._open: dict[int, ByteSource] = {}
        self._local: dict[int, LocalFile] = {}  # the open shards that are local files
        self._lock = threading.Lock()  # opening shards, and close()

    def path(self, shard_id: int) -> str:
        """The path that data shard ``shard_id`` is read from."""
        path = data_filename(self.prefix, shard_id, self.num_shards)
        return set_aside_source(path) if self.set_aside else path

    def open_all(self, entries: EntryTable) -> None:
        """Opens (concurrently) every data file that ``entries`` point to.  Missing files
        are reported when a tensor in them is read, as for local checkpoints."""
        columns = entries.columns
        used = columns.regular & (columns.shard_id >= 0) & (columns.shard_id < self.num_shards)
        shard_ids = np.unique(columns.shard_id[used]).tolist()

        def open_one(shard_id: int) -> None:
            try:
                self._source(shard_id, "")
            except CheckpointNotFoundError:
                pass

        if len(shard_ids) > 1:
            list(shared_pool().map(open_one, shard_ids))
        else:
            for shard_id in shard_ids:
                open_one(shard_id)

    def pin(self, shard_id: int, name: str) -> ByteSource:
        """The data file ``shard_id``, opened if need be and (a local file) held open until
        :func:`unpin`: a :meth:`close` in another thread waits for the read using it.  A
        file closed between being looked up and pinned is opened again.

        Raises:
            CheckpointNotFoundError: the data file does not exist (naming ``name``).
            InvalidArgumentError: the files were closed under this call again and again.
        """
        for _ in range(_REOPEN_TRIES):
            source = self._source(shard_id, name)
            if not isinstance(source, LocalFile) or source.acquire():
                return source
            with self._lock:  # closed under us: forget it (close() usually has)
                if self._open.get(shard_id) is source:
                    del self._open[shard_id]
                if self._local.get(shard_id) is source:
                    del self._local[shard_id]
        raise InvalidArgumentError(
            f"the reader was closed {_REOPEN_TRIES} times while this read opened its data file",
            path=self.prefix,
            tensor=name,
        )

    def pin_local(self, shard_id: int, name: str) -> LocalFile | None:
        """The data file ``shard_id`` pinned open (release it when done) if it is a local
        file (opened if need be), else None.

        Raises:
            As :meth:`pin`.
        """
        source = self._local.get(shard_id)
        if source is not None and source.acquire():
            return source
        pinned = self.pin(shard_id, name)
        if isinstance(pinned, LocalFile):
            self._local[shard_id] = pinned
            return pinned
        return None

    def _source(self, shard_id: int, name: str) -> ByteSource:
        source = self._open.get(shard_id)
        if source is not None:
            return source
        with self._lock:  # threads racing to open a shard open it once
            source = self._open.get(shard_id)
            if source is None:
                path = self.path(shard_id)
                try:
                    source = self.storage.open(path)
                except CheckpointNotFoundError:
                    raise CheckpointNotFoundError(
                        f"the data file does not exist (needed for tensor {name!r})",
                        path=path,
                        tensor=name,
                    ) from None
                self._open[shard_id] = source
        return source

    def close(self) -> None:
        """Closes the local data files; remote ones hold nothing to release and stay
        pinned to the versions first read.  Safe while other threads read (see the
        module)."""
        with self._lock:
            opened, local = self._open, self._local
            self._open = {k: s for k, s in opened.items() if not isinstance(s, LocalFile)}
            self._local = {}
        for source in {id(s): s for s in [*opened.values(), *local.values()]}.values():
            if isinstance(source, LocalFile):
                source.close()


def unpin(source: ByteSource) -> None:
    """Ends a read of ``source`` that :meth:`DataFiles.pin` began."""
    if isinstance(source, LocalFile):
        source.release()


def check_ranges(
    source: ByteSource,
    labels: list[str],
    offsets: np.ndarray,
    sizes: np.ndarray,
    file_size: int | None = None,
) -> None:
    """Checks that every extent lies inside ``file_size`` (by default the file's size when
    opened).

    Raises:
        DataLossError: naming the first extent that ends past it and its tensor.
    """
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


def check_current(
    source: LocalFile, labels: list[str], offsets: np.ndarray, sizes: np.ndarray
) -> None:
    """The extents against the file's size now (one ``fstat``): a file truncated since it
    was opened is DataLossError before any mapped page past its end is touched (which would
    be SIGBUS) or a short read is reported without its tensor.  (TensorFlow maps nothing:
    BundleReader::GetValue in tensor_bundle.cc reads through a RandomAccessFile, so
    truncation is an error there too.)

    Raises:
        DataLossError: as :func:`check_ranges`.
    """
    check_ranges(source, labels, offsets, sizes, source.current_size())


def checksum_mismatch(
    source: ByteSource, name: str, offset: int, size: int, stored: int, actual: int
) -> DataLossError:
    """The DataLossError for tensor ``name`` whose bytes give ``actual`` where its entry
    says ``stored`` (saying so when the file changed since it was opened)."""
    change = source.changed()
    return DataLossError(
        f"checksum mismatch: the entry says crc32c {stored:#010x}, the {size} bytes at "
        f"offset {offset} give {actual:#010x}"
        + (f" (the file changed since it was opened: {change})" if change else ""),
        path=source.path,
        tensor=name,
    )
