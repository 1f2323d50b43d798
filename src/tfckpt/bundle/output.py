"""The files a bundle writer writes: data files appended to batch by batch, and the index,
written once at the end (BundleWriter::Add and BundleWriter::Finish in
tensorflow/core/util/tensor_bundle/tensor_bundle.cc: data in the order tensors are added,
no padding; the index lists the header under the empty key, then the entries in key
order).
"""

from __future__ import annotations

import concurrent.futures
from typing import BinaryIO

import numpy as np

from tfckpt.bundle.entry_codec import EntryFields, encode_entries_joined, encode_header
from tfckpt.bundle.threads import shared_pool
from tfckpt.bundle.write_batch import WriteBatch
from tfckpt.errors import StorageError
from tfckpt.storage.commit import Commit, storage_error, write_buffers
from tfckpt.table.writer import JoinedValues, TableWriter

# Small writes are staged in a buffer that stays in the CPU cache; 20,000 tensors of a few
# KiB write 5x faster through 256 KiB than through TensorFlow's 8 MiB.
WRITE_BUFFER = 256 << 10
# A batch of at least this many bytes gains nothing from staging: it is written straight
# from the arrays' memory with gathered writes (os.writev) while the shared pool checksums
# it (crc32c and the write both release the GIL), so a large save costs about the write.
LARGE_WRITE = WRITE_BUFFER


class DataFile:
    """A data file being written: appends batches and records where each tensor is.

    Example::

        data = DataFile(commit, commit.create(path, buffer_size=WRITE_BUFFER), path, 0)
        data.write(batch, entries, overlap=True)
    """

    __slots__ = ("commit", "out", "path", "shard", "size")

    def __init__(self, commit: Commit, out: BinaryIO, path: str, shard: int) -> None:
        self.commit = commit
        self.out = out
        self.path = path
        self.shard = shard
        self.size = 0

    def write(self, batch: WriteBatch, entries: dict[bytes, EntryFields], *, overlap: bool) -> None:
        """Writes a batch and records its entries in ``entries``; with ``overlap``, many
        bytes still to checksum are checksummed on the shared pool while the batch is
        written, else here.  A batch whose write fails is dropped.

        Raises:
            StorageError: the write failed (naming the file; ``errno`` says why).
        """
        try:
            if not overlap or batch.unchecked < LARGE_WRITE:
                crcs = batch.checksums()
                self._write_buffers(batch)
            else:
                crcs_future = shared_pool().submit(batch.checksums)
                try:
                    self._write_buffers(batch)
                finally:
                    concurrent.futures.wait([crcs_future])  # the arrays are in use until then
                crcs = crcs_future.result()
        except StorageError:  # named already (an upload to an object store)
            raise
        except OSError as exc:  # a full disk, an I/O error: name the file
            temporary = temporary_of(self.commit, self.path)
            raise storage_error(exc, "writing the data file failed", self.path, temporary) from None
        shard = self.shard
        offset = self.size
        for key, enum, shape, size, crc in zip(
            batch.keys, batch.enums, batch.shapes, batch.sizes, crcs
        ):
            entries[key] = (enum, shape, shard, offset, size, crc, ())
            offset += size
        self.size = offset

    def _write_buffers(self, batch: WriteBatch) -> None:
        """A small batch is staged in the write buffer; a large one is written straight
        from memory."""
        if batch.nbytes < LARGE_WRITE:
            self.out.write(b"".join(batch.buffers))
        else:
            write_buffers(self.out, batch.buffers, batch.nbytes)


def write_index(
    file: BinaryIO, entries: dict[bytes, EntryFields], big_endian: bool, num_shards: int = 1
) -> None:
    """Writes the index table of ``entries`` (and the header) to ``file``.

    Raises:
        OSError: writing failed (the caller names the file).
    """
    keys = sorted(entries)
    # The header under the empty key sorts first; the entries follow, serialized together
    # and added to the table in one batch (no bytes object per entry).
    header = encode_header(big_endian, num_shards)
    encoded = encode_entries_joined(list(map(entries.__getitem__, keys)))
    values = JoinedValues(header + encoded.data, np.insert(encoded.lengths, 0, len(header)))
    table = TableWriter(file)
    table.add_sorted([b"", *keys], values)
    table.finish()


def temporary_of(commit: Commit, final: str) -> str | None:
    """The temporary file that becomes ``final`` when ``commit`` publishes, if it has one
    (for error messages)."""
    finder = getattr(commit, "temporary_of", None)
    return finder(final) if finder is not None else None
