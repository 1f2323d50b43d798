"""What a checkpoint is made of: its files, header, and every tensor with its stored size.

:func:`take_inventory` reads the index only (and, for V1, the tables): it does not read or
check tensor data.  ``tfckpt inspect`` and ``tfckpt info`` print it; ``tfckpt verify``
starts from it.
"""

from __future__ import annotations

import glob
import math
import os
from dataclasses import dataclass, field

from tfckpt import paths
from tfckpt.bundle.naming import data_filename, index_filename
from tfckpt.bundle.reader import BundleReader
from tfckpt.errors import CheckpointError
from tfckpt.legacy.reader import V1Reader


@dataclass(frozen=True)
class TensorInfo:
    """One tensor: TensorFlow dtype name, shape, the bytes it takes in the data files (None
    when unknown: an entry that does not hold together), its number of stored slices (0
    when stored whole) and the data shards holding it."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int | None
    slices: int = 0
    shards: tuple[int, ...] = ()


@dataclass(frozen=True)
class FileInfo:
    """A file of the checkpoint: ``role`` is ``index``, ``data`` or ``table`` (V1); ``size``
    is None when the file is missing."""

    path: str
    role: str
    size: int | None
    shard: int | None = None


@dataclass
class Inventory:
    """A checkpoint's files and tensors (see :func:`take_inventory`)."""

    prefix: str
    format: str
    tensors: list[TensorInfo] = field(default_factory=list)
    files: list[FileInfo] = field(default_factory=list)
    num_shards: int = 1
    big_endian: bool = False
    version: tuple[int, int] | None = None  # (producer, min_consumer) of a V2 bundle
    stray_files: list[str] = field(default_factory=list)  # data files of another shard count

    @property
    def total_bytes(self) -> int:
        return sum(t.nbytes or 0 for t in self.tensors)

    def bytes_by_dtype(self) -> dict[str, tuple[int, int]]:
        """``{dtype: (tensors, bytes)}``, largest first."""
        out: dict[str, tuple[int, int]] = {}
        for tensor in self.tensors:
            count, nbytes = out.get(tensor.dtype, (0, 0))
            out[tensor.dtype] = (count + 1, nbytes + (tensor.nbytes or 0))
        return dict(sorted(out.items(), key=lambda item: (-item[1][1], item[0])))


def _size(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def take_inventory(path: str | os.PathLike[str]) -> Inventory:
    """The files and tensors of the checkpoint at ``path`` (prefix, directory, SavedModel).

    Raises:
        CheckpointNotFoundError: there is no checkpoint at ``path``.
        DataLossError: the index (or a V1 table) is corrupt.

    Example::

        inventory = take_inventory("model.ckpt-1000")
        print(inventory.total_bytes, inventory.bytes_by_dtype())
    """
    prefix, fmt = paths.resolve(path)
    if fmt == paths.V2:
        with BundleReader(prefix) as bundle:
            return _bundle_inventory(bundle)
    with V1Reader(prefix) as tables:
        return _v1_inventory(tables)


def _bundle_inventory(bundle: BundleReader) -> Inventory:
    prefix = bundle.prefix
    inventory = Inventory(
        prefix,
        paths.V2,
        num_shards=bundle.num_shards,
        big_endian=bundle.big_endian,
        version=bundle.version,
    )
    inventory.files.append(FileInfo(index_filename(prefix), "index", _size(bundle.index_path)))
    expected = set()
    for shard in range(bundle.num_shards):
        data = data_filename(prefix, shard, bundle.num_shards)
        expected.add(data)
        inventory.files.append(FileInfo(data, "data", _size(data), shard))
    inventory.stray_files = sorted(
        p for p in glob.glob(glob.escape(prefix) + ".data-?????-of-?????") if p not in expected
    )
    entries = bundle.entries
    for name in bundle.names():
        dtype = entries.dtype(name).name
        shape = entries.shape(name)
        nbytes: int | None
        try:
            layout = entries.layout(name)
            nbytes = sum(e.size for e in layout.extents)
            slices = len(layout.extents) if layout.sliced else 0
            shards = tuple(sorted({e.shard for e in layout.extents}))
        except CheckpointError:  # variants, or an entry that does not hold together
            try:
                entry = entries.entry(name)
                nbytes, slices, shards = entry.size, len(entry.slices), (entry.shard_id,)
            except CheckpointError:
                nbytes, slices, shards = None, 0, ()
        inventory.tensors.append(TensorInfo(name, dtype, shape, nbytes, slices, shards))
    return inventory


def _v1_inventory(tables: V1Reader) -> Inventory:
    inventory = Inventory(tables.prefix, paths.V1, num_shards=len(tables.files))
    for i, file in enumerate(tables.files):
        inventory.files.append(FileInfo(file, "table", _size(file), i))
    for name in tables.names():
        dtype = tables.dtype(name)
        shape = tables.shape(name)
        nbytes: int | None
        if dtype.is_numeric_storage:
            nbytes = math.prod(shape) * dtype.size
        else:  # strings: their bytes, which V1 keeps inside the table
            try:
                nbytes = sum(len(s) for s in tables.read(name).reshape(-1).tolist())
            except CheckpointError:
                nbytes = None
        slices = len(tables.slices(name))
        inventory.tensors.append(
            TensorInfo(name, dtype.name, shape, nbytes, slices if slices > 1 else 0)
        )
    return inventory
