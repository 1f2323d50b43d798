"""The held half of a sharded save: values checked and converted as they are added, held,
then planned (:mod:`tfckpt.bundle.sharding`) and written, one data file a shard, in
parallel on the shared pool.

The entries come out as MergeV2Checkpoints leaves them (tensor_bundle.cc MergeOneBundle):
a tensor cut into slices gets a full entry that takes the id of the first shard holding one
of its slices and lists the slices in shard order; a piece covering its whole tensor is an
ordinary entry (tensor_bundle.cc IsFullSlice).
"""

from __future__ import annotations

import concurrent.futures
from typing import Any

import numpy as np

from tfckpt import dtypes
from tfckpt.bundle.entry_codec import EntryFields
from tfckpt.bundle.naming import data_filename
from tfckpt.bundle.output import WRITE_BUFFER, DataFile
from tfckpt.bundle.prepare import (
    STRING_ENUM,
    encode_string_array,
    piece_nbytes,
    prepare_string_pieces,
)
from tfckpt.bundle.sharding import (
    Piece,
    Plan,
    TensorInfo,
    check_splittable,
    plan_max_shard_size,
    plan_num_shards,
)
from tfckpt.bundle.threads import shared_pool
from tfckpt.bundle.values import as_bytes, in_byte_order, to_array
from tfckpt.bundle.write_batch import StringPieces, WriteBatch
from tfckpt.errors import InvalidArgumentError
from tfckpt.storage.commit import Commit
from tfckpt.tensor_slice import TensorSlice, encode_slice_key


class Held:
    """A value held until the save is planned: its key (a slice's key when it was added as
    a slice), converted value and what the planner knows of it."""

    __slots__ = ("enum", "info", "key", "name", "name_key", "value")

    def __init__(self, key: bytes, name: str, enum: int, value: Any, info: TensorInfo) -> None:
        self.key = key
        self.name = name
        self.name_key = name.encode("utf-8", "surrogateescape")
        self.enum = enum
        self.value = value
        self.info = info


class HeldTensors:
    """The values of a sharded writer, held until :meth:`write`.

    ``sharding`` is ``("max_shard_size", bytes)`` or ``("num_shards", n)``
    (:func:`tfckpt.bundle.sharding.check_options`).

    Example::

        held = HeldTensors(("num_shards", 2), big_endian=False)
        held.hold_value(b"w", "w", np.ones(3), None)
        entries, num_shards = held.write(commit, "/tmp/ckpt/model")
    """

    def __init__(self, sharding: tuple[str, int], *, big_endian: bool) -> None:
        self.sharding = sharding
        self.big_endian = big_endian
        self.values: list[Held] = []

    def hold_value(self, key: bytes, name: str, value: Any, dtype: Any) -> Held:
        """Checks and converts ``value`` (as ``dtype``, if given) and holds it.

        Raises:
            InvalidArgumentError: the value cannot be stored, or (``max_shard_size``) a
                string tensor larger than a shard cannot be split.
        """
        if type(value) is StringPieces:
            if dtype is not None and dtype != "string":
                raise InvalidArgumentError("StringPieces are a string tensor", tensor=name)
            total = sum(piece_nbytes(piece, name) for piece in value.pieces)
            info = TensorInfo(name, "string", (), total, total)
            return self._keep(Held(key, name, STRING_ENUM, value, info))
        array, tf_dtype = to_array(value, name, dtype)
        return self.hold(key, name, array, tf_dtype, None, None)

    def hold(
        self,
        key: bytes,
        name: str,
        array: np.ndarray,
        tf_dtype: dtypes.DType,
        full_shape: tuple[int, ...] | None,
        offset: tuple[int, ...] | None,
    ) -> Held:
        """Holds an array that :func:`~tfckpt.bundle.values.to_array` made (a slice of
        ``full_shape`` at ``offset``, or a whole tensor), with the sizes the planner counts.

        Raises:
            As :meth:`hold_value`.
        """
        shape = tuple(array.shape)
        if tf_dtype.name == "string":
            # Elements as bytes (str as UTF-8), so that slices encode as they are.
            flat = [as_bytes(v, name) for v in array.reshape(-1).tolist()]
            lengths = list(map(len, flat))
            array = np.empty(len(flat), object)
            array[:] = flat
            array = array.reshape(shape)
            info = TensorInfo(
                name, "string", shape, sum(lengths), max(lengths, default=0), full_shape, offset
            )
        else:
            array = in_byte_order(array, self.big_endian)
            itemsize = array.dtype.itemsize
            info = TensorInfo(
                name, tf_dtype.name, shape, array.size * itemsize, itemsize, full_shape, offset
            )
        return self._keep(Held(key, name, tf_dtype.as_datatype_enum, array, info))

    def _keep(self, held: Held) -> Held:
        kind, limit = self.sharding
        if kind == "max_shard_size":
            check_splittable(held.info, limit)
        self.values.append(held)
        return held

    def write(self, commit: Commit, prefix: str) -> tuple[dict[bytes, EntryFields], int]:
        """Plans the held tensors, creates every data file in ``commit``, writes the shards
        (in parallel when there are several) and returns the entries and the number of
        shards.  Every shard is done before an error is raised.

        Raises:
            StorageError: a data file could not be created or written.
        """
        held, self.values = self.values, []
        infos = [h.info for h in held]
        kind, number = self.sharding
        if kind == "max_shard_size":
            plan: Plan = plan_max_shard_size(infos, number)
        else:
            plan = plan_num_shards(infos, number)
        plan = plan or [[]]  # nothing to save: one empty data file, as unsharded
        count = len(plan)
        files = []
        for shard in range(count):
            path = data_filename(prefix, shard, count)
            out = commit.create(path, buffer_size=WRITE_BUFFER)
            files.append(DataFile(commit, out, path, shard))
        tasks = [(held, pieces, data) for pieces, data in zip(plan, files)]
        if count == 1:
            results = [self._write_shard(*tasks[0], True)]
        else:
            futures = [shared_pool().submit(self._write_shard, *task, False) for task in tasks]
            concurrent.futures.wait(futures)  # every shard is done before any error is raised
            results = [future.result() for future in futures]
        entries: dict[bytes, EntryFields] = {}
        full: dict[bytes, tuple[Held, int, list[TensorSlice]]] = {}
        for shard, (pieces, written) in enumerate(zip(plan, results)):
            entries.update(written)
            for piece in pieces:
                h = held[piece.tensor]
                tensor_slice = _piece_slice(h, piece)
                if tensor_slice is not None:
                    full.setdefault(h.name_key, (h, shard, []))[2].append(tensor_slice)
        for name_key, (h, shard, slices) in full.items():
            full_shape = h.info.full_shape if h.info.full_shape is not None else h.info.shape
            entries[name_key] = (h.enum, full_shape, shard, 0, 0, 0, tuple(slices))
        return entries, count

    def _write_shard(
        self, held: list[Held], pieces: list[Piece], data: DataFile, overlap: bool
    ) -> dict[bytes, EntryFields]:
        """Writes one shard's pieces, in order, to ``data``; returns their entries.  (Run on
        the shared pool when there are several shards: checksums are then computed here,
        never queued on the pool this runs on.)"""
        entries: dict[bytes, EntryFields] = {}
        batch = WriteBatch()
        for piece in pieces:
            h = held[piece.tensor]
            tensor_slice = _piece_slice(h, piece)
            key = h.name_key if tensor_slice is None else encode_slice_key(h.name, tensor_slice)
            value = h.value
            if type(value) is StringPieces:
                prepare_string_pieces(batch, key, h.name, value, self.big_endian)
            else:
                if tuple(piece.shape) != value.shape:
                    base = h.info.offset or (0,) * value.ndim
                    value = value[
                        tuple(
                            slice(o - b, o - b + n)
                            for o, b, n in zip(piece.offset, base, piece.shape)
                        )
                    ]
                if h.enum == STRING_ENUM:
                    buffers, crc = encode_string_array(h.name, value, self.big_endian)
                    batch.add_buffers(
                        key, STRING_ENUM, value.shape, buffers, sum(map(len, buffers)), crc
                    )
                else:  # (in its stored byte order since it was held)
                    if not value.flags.c_contiguous:
                        value = np.ascontiguousarray(value)
                    batch.add_array(key, h.enum, value)
            if batch.is_full():
                data.write(batch, entries, overlap=overlap)
                batch = WriteBatch()
        if batch.keys:
            data.write(batch, entries, overlap=overlap)
        return entries


def _piece_slice(held: Held, piece: Piece) -> TensorSlice | None:
    """The slice a planned piece is stored as, None when it is the whole tensor."""
    full_shape = held.info.full_shape if held.info.full_shape is not None else held.info.shape
    if tuple(piece.shape) == tuple(full_shape):
        return None
    return TensorSlice(tuple(piece.offset), tuple(piece.shape))
