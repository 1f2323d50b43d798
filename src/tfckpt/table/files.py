"""Opening a table file (a ``.index``, a V1 checkpoint) on any storage."""

from __future__ import annotations

from tfckpt.storage.location import LOCAL, Storage
from tfckpt.table.format import FOOTER_SIZE, Footer
from tfckpt.table.reader import TableReader

# Remote tables up to this size are fetched in one request; larger ones footer first, so
# that a large object that is not a table is refused before it is downloaded.
WHOLE_FETCH_BYTES = 64 << 20


def open_table(
    path: str, storage: Storage = LOCAL, *, verify_checksums: bool = True
) -> TableReader:
    """The table file at ``path`` on ``storage``, read whole.

    Raises CheckpointNotFoundError when the file does not exist, DataLossError when it is
    not a table (and CheckpointError when a remote store fails).

    Example::

        table = open_table("model.ckpt-1.index")
    """
    if not storage.remote:
        return TableReader.open(path, verify_checksums=verify_checksums)
    source = storage.open(path)
    try:
        size = source.size()
        if size > WHOLE_FETCH_BYTES:
            (footer,) = source.read_ranges([(size - FOOTER_SIZE, FOOTER_SIZE)])
            Footer.decode(bytes(footer), path)
        (data,) = source.read_ranges([(0, size)])
    finally:
        source.close()
    return TableReader(bytes(data), path, verify_checksums=verify_checksums)
