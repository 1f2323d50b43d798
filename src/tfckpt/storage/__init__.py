"""The storage layer: the one place that opens files and moves bytes.

Everything above it (tables, bundles, V1 files, objects) reads and writes through it:

- :mod:`tfckpt.storage.source`: reading. A :class:`~tfckpt.storage.source.ByteSource` is
  one file's bytes: ``size()``, ``read_ranges([(offset, size), ...])``, ``readinto``,
  ``view(offset, size)`` where zero-copy is possible, ``close()``; local files are read
  through ``mmap`` and positional reads.
- :mod:`tfckpt.storage.commit`: writing. Temporaries, fsync and the renames that publish a
  checkpoint, in the order that leaves readers only ever seeing complete checkpoints.
"""
