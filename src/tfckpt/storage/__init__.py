"""The storage layer: the one place that opens files and moves bytes.

Everything above it (tables, bundles, V1 files, objects) reads and writes through it:

- :mod:`tfckpt.storage.source`: reading. A :class:`~tfckpt.storage.source.ByteSource` is
  one file's bytes: ``size()``, ``read_ranges([(offset, size), ...])``, ``readinto``,
  ``view(offset, size)`` where zero-copy is possible, ``close()``; local files are read
  through ``mmap`` and positional reads.
- :mod:`tfckpt.storage.location`: where files are. :func:`~tfckpt.storage.location.locate`
  turns a path, an fsspec URL, or an fsspec filesystem and a path into a ``Storage`` that
  finds, lists and opens files (local, or :mod:`tfckpt.storage.remote` through fsspec,
  imported only for URLs); :mod:`tfckpt.storage.ranges` plans remote ranged reads.
- :mod:`tfckpt.storage.commit`: writing. Temporaries, fsync and the renames that publish a
  checkpoint, in the order that leaves readers only ever seeing complete checkpoints, an
  overwrite's old files set aside until the new ones are in place.
- :mod:`tfckpt.storage.remote_commit`: writing to object stores. ``RemoteCommit`` streams
  each file in blocks (multipart, resumable uploads) left unfinished until publish, which
  finishes the data shards and then the index; ``remove_objects`` deletes a checkpoint's
  objects in order.  :func:`~tfckpt.storage.location.commit_for` picks the commit for a
  write target (local path, URL, or fsspec filesystem and path).
- :mod:`tfckpt.storage.lock`: the lock files that keep two writers of the same files apart.
"""
