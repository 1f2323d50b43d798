"""Writing TensorBundle (V2) checkpoints, byte-identical to TensorFlow's ``SaveV2``.

Data is appended to the data file in the order tensors are added, with no padding; the
index lists the entries in key order (BundleWriter::Add / AddSlice / Finish in
tensorflow/core/util/tensor_bundle/tensor_bundle.cc).

Every tensor takes one path.  It is prepared into a batch (converted to its stored array,
byte-swapped, or string-encoded, as the buffers to write and what its checksum still has to
cover); a batch is written when it is full and at the end of each call, and only then are
its entries recorded.  The files are published through :mod:`tfckpt.storage.commit`: under
temporary names until :meth:`BundleWriter.finish` renames the data file and then the index
(setting the old checkpoint's files aside first when it replaces one, so that a crash leaves
the old checkpoint or the new one, never a mixture).  A writer claims its prefix first
(:mod:`tfckpt.bundle.claim`): a second writer of the same prefix fails instead of mixing.

Sharded saves (``max_shard_size``: TensorFlow's MaxShardSizePolicy layout; ``num_shards``:
whole tensors spread over N files) are planned by :mod:`tfckpt.bundle.sharding`: the writer
checks and converts each value as it is added, holds it, and in :meth:`BundleWriter.finish`
plans the shards (the module says why there), creates every data file in one commit, writes
the shards in parallel on the shared pool and then the one index (``num_shards`` in its
header, each entry's ``shard_id``; a tensor cut into slices gets a full entry as
MergeV2Checkpoints leaves it), published like a single-shard save: data files first, the
index last.
"""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, BinaryIO, Protocol

import numpy as np

from tfckpt import checksum, dtypes
from tfckpt.bundle.claim import claim_prefix
from tfckpt.bundle.entry_codec import (
    EntryFields,
    encode_entries_joined,
    encode_header,
    partitioned_entry,
)
from tfckpt.bundle.naming import data_filename, index_filename
from tfckpt.bundle.sharding import (
    Piece,
    Plan,
    TensorInfo,
    check_options,
    check_splittable,
    plan_max_shard_size,
    plan_num_shards,
)
from tfckpt.bundle.strings import encode_string_chunks, encode_string_head, encode_strings
from tfckpt.bundle.threads import shared_pool
from tfckpt.bundle.values import as_bytes, in_byte_order, stored_as_is, to_array
from tfckpt.bundle.write_batch import StringPieces, WriteBatch
from tfckpt.errors import InvalidArgumentError, StorageError
from tfckpt.storage.commit import Commit, LocalCommit, storage_error, write_buffers
from tfckpt.storage.location import commit_for
from tfckpt.table.writer import JoinedValues, TableWriter
from tfckpt.tensor_slice import TensorSlice, encode_slice_key

# Small writes are staged in a buffer that stays in the CPU cache; 20,000 tensors of a few
# KiB write 5x faster through 256 KiB than through TensorFlow's 8 MiB.
_WRITE_BUFFER = 256 << 10
# A batch of at least this many bytes gains nothing from staging: it is written straight
# from the arrays' memory with gathered writes (os.writev) while the shared pool checksums
# it (crc32c and the write both release the GIL), so a large save costs about the write.
_LARGE_WRITE = _WRITE_BUFFER
_STRING_ENUM = dtypes.string.as_datatype_enum


class BundleWriter:
    """Writes one V2 checkpoint at ``prefix``, tensor by tensor.

    Use as a context manager, or call :meth:`finish` (and :meth:`abort` on failure)::

        with BundleWriter("/tmp/ckpt/model") as writer:
            writer.add("w", np.ones((2, 3), np.float32))
    """

    def __init__(
        self,
        prefix: str | os.PathLike[str],
        *,
        big_endian: bool = False,
        durable: bool = False,
        max_shard_size: int | None = None,
        num_shards: int | None = None,
        fs: Any = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        """``big_endian=True`` writes a big-endian bundle, as TensorFlow does on s390x.

        ``durable=True`` also fsyncs the files and the directory before returning from
        :meth:`finish`, so the checkpoint survives a power loss (TensorFlow does not).

        ``max_shard_size`` (bytes) writes the data files TensorFlow's
        ``MaxShardSizePolicy(max_shard_size)`` writes for the same tensors added in the
        same order (tensors cut into slices where TF cuts them); ``num_shards`` spreads
        whole tensors over that many data files, largest first to the emptiest
        (:mod:`tfckpt.bundle.sharding`).  With either, values are held and written by
        :meth:`finish` (in parallel, one thread a shard): arrays must not change until then.

        ``prefix`` may be an fsspec URL (``s3://``, ``gs://``, ``memory://``...) or, with
        ``fs``, a path on that fsspec filesystem (``storage_options`` as for
        :func:`tfckpt.load_checkpoint`): the files are streamed to the store and published
        data first, index last (:mod:`tfckpt.storage.remote_commit`).

        The writer holds a local prefix until :meth:`finish` or :meth:`abort`; taking it
        puts back an overwrite of it that a killed writer left half done and removes the
        temporaries killed writers left.  Object stores have no such lock: one writer per
        prefix is the caller's job there.

        Raises:
            InvalidArgumentError: ``max_shard_size`` or ``num_shards`` is not a positive
                int, or both are given (nothing is claimed or written).
            ConcurrentWriteError: another writer (another process, or another BundleWriter
                in this one) is writing this prefix.
            StorageError: the data file cannot be created.
        """
        sharding = check_options(max_shard_size, num_shards)
        self.prefix, self._commit = commit_for(
            prefix, fs=fs, storage_options=storage_options, durable=durable
        )
        self.big_endian = big_endian
        self.durable = durable
        self._sharding = None if sharding == ("num_shards", 1) else sharding
        self._claim: _Releasable = (
            claim_prefix(self.prefix) if isinstance(self._commit, LocalCommit) else _NoClaim()
        )
        # Sharded: the values held until finish (then planned and written), else None.
        self._held: list[_Held] | None = None
        self._num_shards = 1
        if self._sharding is None:
            path = data_filename(self.prefix, 0, 1)
            try:
                out = self._commit.create(path, buffer_size=_WRITE_BUFFER)
            except BaseException:
                self._claim.release()
                raise
            self._data = _DataFile(self._commit, out, path, 0)
        else:
            self._held = []
        self._entries: dict[bytes, EntryFields] = {}
        self._native = stored_as_is(big_endian)
        self._done = False

    def add(self, name: str, value: Any, *, dtype: Any = None) -> None:
        """Appends tensor ``name``; ``dtype`` optionally forces its TensorFlow dtype.

        A :class:`StringPieces` value is a scalar string written piece by piece.

        Raises:
            InvalidArgumentError: the writer is finished; the name is not a non-empty
                string or was added already; the value cannot be stored (as ``dtype``).
        """
        self._add_all(((name, value),), dtype)

    def add_many(self, tensors: Iterable[tuple[str, Any]]) -> None:
        """:meth:`add` for each ``(name, value)``, in order, and much faster for many small
        arrays, which are checksummed and written in batches.  The arrays must not change
        until this returns (they are written from their own memory), or until
        :meth:`finish` returns in a sharded writer.

        Raises:
            InvalidArgumentError: as :meth:`add`; the tensors before the failing one are
                added, as with :meth:`add` one by one.
        """
        self._add_all(tensors, None)

    def add_slice(
        self,
        name: str,
        full_shape: Sequence[int],
        tensor_slice: TensorSlice | str | Sequence[tuple[int, int] | None],
        value: Any,
        *,
        dtype: Any = None,
    ) -> None:
        """Appends one slice of a partitioned tensor ``name`` of shape ``full_shape``.

        ``tensor_slice`` is a TensorSlice, TensorFlow's text form (``'0,5:-'``) or
        ``(start, length)`` pairs with ``None`` for a full dimension.  A slice covering the
        whole tensor is stored as an ordinary tensor, as TensorFlow does.

        Raises:
            InvalidArgumentError: as :meth:`add`; the slice does not fit ``full_shape`` or
                the value's shape, was added already, or disagrees with earlier slices.
        """
        self._check_open()
        self._check_name(name)
        tensor_slice, full_shape, slice_shape = _parse_slice(name, full_shape, tensor_slice)
        array, tf_dtype = to_array(value, name, dtype)
        if array.shape != slice_shape:
            raise InvalidArgumentError(
                f"slice {tensor_slice} of {list(full_shape)} has shape {list(slice_shape)} "
                f"but the value has shape {list(array.shape)}",
                tensor=name,
            )
        if tensor_slice.covers(full_shape):
            self.add(name, array, dtype=tf_dtype)
            return
        key = name.encode("utf-8", "surrogateescape")
        slices = self._earlier_slices(key, name, tf_dtype, full_shape)
        slice_key = encode_slice_key(name, tensor_slice)
        if slice_key in self._entries:
            raise InvalidArgumentError(f"slice {tensor_slice} added twice", tensor=name)
        if self._held is not None:
            starts = tuple(start for start, _ in tensor_slice.bounds(full_shape))
            self._hold(slice_key, name, array, tf_dtype, full_shape, starts)
        else:
            batch = WriteBatch()
            self._prepare_array(batch, slice_key, name, array, tf_dtype)
            self._write(batch)
        self._entries[key] = partitioned_entry(
            tf_dtype.as_datatype_enum, full_shape, (*slices, tensor_slice)
        )

    def finish(self) -> str:
        """Completes the checkpoint and moves it into place; returns the prefix.

        The index is written completely (under a temporary name) before anything is
        renamed, so the window in which an older checkpoint at the same prefix is replaced
        is a few renames long, and a checkpoint it replaces is set aside meanwhile (a crash
        leaves the old one or the new one); the index, renamed last, is the commit point.

        Raises:
            InvalidArgumentError: the writer is finished or aborted.
            StorageError: writing or renaming failed (ENOSPC, EIO...; its ``errno`` says
                which): the temporaries are removed, a checkpoint that was at the prefix is
                still there.
        """
        self._check_open()
        self._done = True
        try:
            if self._held is not None:
                self._write_held()
            index_path = index_filename(self.prefix)
            index = self._commit.create(index_path)
            try:
                _write_index(index, self._entries, self.big_endian, self._num_shards)
            except StorageError:
                raise
            except OSError as exc:
                temporary = self._commit_temporary(index_path)
                raise storage_error(
                    exc, "writing the index failed", index_path, temporary
                ) from None
            self._commit.publish()
        except BaseException:
            self._commit.abort()
            raise
        finally:
            self._claim.release()
        return self.prefix

    def abort(self) -> None:
        """Discards everything written; no file is left under the final names."""
        if not self._done:
            self._done = True
            if self._held is not None:
                self._held.clear()
            try:
                self._commit.abort()
            finally:
                self._claim.release()

    def __enter__(self) -> BundleWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            if not self._done:
                self.finish()
        else:
            self.abort()

    # -- the write path -------------------------------------------------------------------

    def _add_all(self, tensors: Iterable[tuple[str, Any]], dtype: Any) -> None:
        """Prepares each ``(name, value)`` (as ``dtype``) into a batch, written when full and at
        the end, also when a name, a value or ``tensors`` itself fails: what came before is
        added.  A batch whose write fails is dropped (the writer should be aborted)."""
        native = self._native if dtype is None else {}
        batch = WriteBatch()
        if self._held is not None:  # sharded: checked and held until finish
            for name, value in tensors:
                self._hold_value(self._new_key(name, batch), name, value, dtype)
            return
        try:
            for name, value in tensors:
                key = self._new_key(name, batch)
                if (
                    type(value) is np.ndarray
                    and (enum := native.get(value.dtype)) is not None
                    and value.flags.c_contiguous
                ):  # stored as it is: no conversion, no copy (the common case, kept inline)
                    batch.add_array(key, enum, value)
                else:
                    self._prepare(batch, key, name, value, dtype)
                if batch.is_full():
                    full, batch = batch, WriteBatch()
                    self._write(full)
        finally:
            if batch.keys:
                self._write(batch)

    def _prepare(self, batch: WriteBatch, key: bytes, name: str, value: Any, dtype: Any) -> None:
        """Adds a value that is not an array stored as it is."""
        if type(value) is StringPieces:
            if dtype is not None and dtype != "string":
                raise InvalidArgumentError("StringPieces are a string tensor", tensor=name)
            self._prepare_string_pieces(batch, key, name, value)
            return
        array, tf_dtype = to_array(value, name, dtype)
        self._prepare_array(batch, key, name, array, tf_dtype)

    def _prepare_array(
        self, batch: WriteBatch, key: bytes, name: str, array: np.ndarray, tf_dtype: dtypes.DType
    ) -> None:
        """Adds an array that :func:`to_array` made."""
        if tf_dtype.name == "string":
            pieces, crc = self._encode_strings(name, array)
            batch.add_buffers(key, _STRING_ENUM, array.shape, pieces, sum(map(len, pieces)), crc)
            return
        array = in_byte_order(array, self.big_endian)
        batch.add_array(key, tf_dtype.as_datatype_enum, array)

    def _encode_strings(self, name: str, array: np.ndarray) -> tuple[list[bytes], int]:
        flat = array.reshape(-1).tolist()
        try:
            return encode_string_chunks(flat, self.big_endian)
        except TypeError:  # str elements (encoded as UTF-8) or values to reject by name
            return encode_strings([as_bytes(v, name) for v in flat], self.big_endian)

    def _prepare_string_pieces(
        self, batch: WriteBatch, key: bytes, name: str, value: StringPieces
    ) -> None:
        sizes = [_nbytes(piece, name) for piece in value.pieces]
        head, crc = encode_string_head(np.array([sum(sizes)], np.uint64), self.big_endian)
        *checked_here, last = value.pieces or (b"",)  # (crc covers the head already)
        for piece in checked_here:
            crc = checksum.crc32c(piece, crc)
        # The last piece (NumpyState's array memory) is checksummed beside the write.
        nbytes = sum(map(len, head)) + sum(sizes)
        pieces = [*head, *value.pieces]
        last_size = sizes[-1] if sizes else 0
        batch.add_buffers(key, _STRING_ENUM, (), pieces, nbytes, crc, last, last_size)

    def _write(self, batch: WriteBatch) -> None:
        """Writes a batch to the one data file and records its entries."""
        self._data.write(batch, self._entries, overlap=True)

    def _commit_temporary(self, final: str) -> str | None:
        return _temporary_of(self._commit, final)

    # -- sharded saves --------------------------------------------------------------------

    def _hold_value(self, key: bytes, name: str, value: Any, dtype: Any) -> None:
        """Checks and converts a value of a sharded writer and holds it for finish."""
        if type(value) is StringPieces:
            if dtype is not None and dtype != "string":
                raise InvalidArgumentError("StringPieces are a string tensor", tensor=name)
            total = sum(_nbytes(piece, name) for piece in value.pieces)
            info = TensorInfo(name, "string", (), total, total)
            self._keep(_Held(key, name, _STRING_ENUM, value, info), ())
            return
        array, tf_dtype = to_array(value, name, dtype)
        self._hold(key, name, array, tf_dtype, None, None)

    def _hold(
        self,
        key: bytes,
        name: str,
        array: np.ndarray,
        tf_dtype: dtypes.DType,
        full_shape: tuple[int, ...] | None,
        offset: tuple[int, ...] | None,
    ) -> None:
        """Holds an array that :func:`to_array` made (a slice of ``full_shape`` at
        ``offset``, or a whole tensor), with the sizes the planner counts."""
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
        enum = tf_dtype.as_datatype_enum
        self._keep(_Held(key, name, enum, array, info), shape)

    def _keep(self, held: _Held, shape: tuple[int, ...]) -> None:
        assert self._sharding is not None and self._held is not None
        kind, limit = self._sharding
        if kind == "max_shard_size":
            check_splittable(held.info, limit)
        self._held.append(held)
        self._entries[held.key] = (held.enum, shape, 0, 0, 0, 0, ())  # claims the key

    def _write_held(self) -> None:
        """Plans the held tensors, writes every shard (in parallel when there are several)
        and records the entries, as MergeV2Checkpoints leaves them (tensor_bundle.cc
        MergeOneBundle: a slice's full entry takes the id of the first shard with one of
        its slices, and lists the slices in shard order)."""
        assert self._sharding is not None and self._held is not None
        held, self._held = self._held, []
        infos = [h.info for h in held]
        kind, number = self._sharding
        if kind == "max_shard_size":
            plan: Plan = plan_max_shard_size(infos, number)
        else:
            plan = plan_num_shards(infos, number)
        plan = plan or [[]]  # nothing to save: one empty data file, as unsharded
        self._num_shards = count = len(plan)
        files = []
        for shard in range(count):
            path = data_filename(self.prefix, shard, count)
            out = self._commit.create(path, buffer_size=_WRITE_BUFFER)
            files.append(_DataFile(self._commit, out, path, shard))
        tasks = [(held, pieces, data) for pieces, data in zip(plan, files)]
        if count == 1:
            results = [self._write_shard(*tasks[0], True)]
        else:
            futures = [shared_pool().submit(self._write_shard, *task, False) for task in tasks]
            concurrent.futures.wait(futures)  # every shard is done before any error is raised
            results = [future.result() for future in futures]
        entries: dict[bytes, EntryFields] = {}
        full: dict[bytes, tuple[_Held, int, list[TensorSlice]]] = {}
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
        self._entries = entries

    def _write_shard(
        self, held: list[_Held], pieces: list[Piece], data: _DataFile, overlap: bool
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
                self._prepare_string_pieces(batch, key, h.name, value)
            else:
                if tuple(piece.shape) != value.shape:
                    base = h.info.offset or (0,) * value.ndim
                    value = value[
                        tuple(
                            slice(o - b, o - b + n)
                            for o, b, n in zip(piece.offset, base, piece.shape)
                        )
                    ]
                if h.enum == _STRING_ENUM:
                    buffers, crc = self._encode_strings(h.name, value)
                    batch.add_buffers(
                        key, _STRING_ENUM, value.shape, buffers, sum(map(len, buffers)), crc
                    )
                else:
                    if not value.flags.c_contiguous:
                        value = np.ascontiguousarray(value)
                    batch.add_array(key, h.enum, value)
            if batch.is_full():
                data.write(batch, entries, overlap=overlap)
                batch = WriteBatch()
        if batch.keys:
            data.write(batch, entries, overlap=overlap)
        return entries

    # -- checks ---------------------------------------------------------------------------

    def _new_key(self, name: str, batch: WriteBatch) -> bytes:
        """``name``'s index key, checked to be new (in the checkpoint and in ``batch``)."""
        if self._done:
            self._check_open()
        if type(name) is not str or not name:
            self._check_name(name)
        key = name.encode("utf-8", "surrogateescape")
        if key in self._entries or key in batch.keys:
            raise InvalidArgumentError("added twice", path=self.prefix, tensor=name)
        return key

    def _check_open(self) -> None:
        if self._done:
            raise InvalidArgumentError("the writer is finished", path=self.prefix)

    def _check_name(self, name: str) -> None:
        if not isinstance(name, str) or name == "":
            raise InvalidArgumentError(
                f"tensor names are non-empty strings, found {name!r}", path=self.prefix
            )

    def _earlier_slices(
        self, key: bytes, name: str, tf_dtype: dtypes.DType, full_shape: tuple[int, ...]
    ) -> tuple[TensorSlice, ...]:
        """The slices of ``name`` added so far, checked to agree with a new one."""
        full = self._entries.get(key)
        if full is None:
            return ()
        full_enum, shape, *_, slices = full
        if not slices:  # whole tensors have no slices
            raise InvalidArgumentError("already added whole", tensor=name)
        if full_enum != tf_dtype.as_datatype_enum or shape != full_shape:
            raise InvalidArgumentError(
                f"slice has dtype {tf_dtype.name} and full shape {list(full_shape)}, "
                "earlier slices disagree",
                tensor=name,
            )
        return slices


def _parse_slice(
    name: str,
    full_shape: Sequence[int],
    tensor_slice: TensorSlice | str | Sequence[tuple[int, int] | None],
) -> tuple[TensorSlice, tuple[int, ...], tuple[int, ...]]:
    """The slice as a TensorSlice, the full shape and the slice's shape."""
    try:
        if isinstance(tensor_slice, str):
            tensor_slice = TensorSlice.parse(tensor_slice)
        elif not isinstance(tensor_slice, TensorSlice):
            tensor_slice = TensorSlice.from_extents(tensor_slice)
        shape = tuple(int(d) for d in full_shape)
        return tensor_slice, shape, tensor_slice.shape_in(shape)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(str(exc), tensor=name) from None


class _DataFile:
    """A data file being written: appends batches and records where each tensor is."""

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
        written, else here.  A batch whose write fails is dropped."""
        try:
            if not overlap or batch.unchecked < _LARGE_WRITE:
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
            temporary = _temporary_of(self.commit, self.path)
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
        if batch.nbytes < _LARGE_WRITE:
            self.out.write(b"".join(batch.buffers))
        else:
            write_buffers(self.out, batch.buffers, batch.nbytes)


class _Held:
    """A value a sharded writer holds until finish: its key (a slice's key when it was
    added as a slice), converted value and what the planner knows of it."""

    __slots__ = ("enum", "info", "key", "name", "name_key", "value")

    def __init__(self, key: bytes, name: str, enum: int, value: Any, info: TensorInfo) -> None:
        self.key = key
        self.name = name
        self.name_key = name.encode("utf-8", "surrogateescape")
        self.enum = enum
        self.value = value
        self.info = info


def _piece_slice(held: _Held, piece: Piece) -> TensorSlice | None:
    """The slice a planned piece is stored as, None when it is the whole tensor
    (tensor_bundle.cc IsFullSlice: a slice covering the tensor is an ordinary entry)."""
    full_shape = held.info.full_shape if held.info.full_shape is not None else held.info.shape
    if tuple(piece.shape) == tuple(full_shape):
        return None
    return TensorSlice(tuple(piece.offset), tuple(piece.shape))


class _Releasable(Protocol):
    def release(self) -> None: ...


class _NoClaim:
    """The claim of a prefix on an object store: none (no lock to take there)."""

    def release(self) -> None:
        pass


def _temporary_of(commit: Commit, final: str) -> str | None:
    finder = getattr(commit, "temporary_of", None)
    return finder(final) if finder is not None else None


def _nbytes(piece: Any, name: str) -> int:
    if isinstance(piece, np.ndarray):
        if not piece.flags.c_contiguous:
            raise InvalidArgumentError("StringPieces arrays must be C-contiguous", tensor=name)
        return int(piece.nbytes)
    return memoryview(piece).nbytes


def _write_index(
    file: BinaryIO, entries: dict[bytes, EntryFields], big_endian: bool, num_shards: int = 1
) -> None:
    keys = sorted(entries)
    # The header under the empty key sorts first; the entries follow, serialized together
    # and added to the table in one batch (no bytes object per entry).
    header = encode_header(big_endian, num_shards)
    encoded = encode_entries_joined(list(map(entries.__getitem__, keys)))
    values = JoinedValues(header + encoded.data, np.insert(encoded.lengths, 0, len(header)))
    table = TableWriter(file)
    table.add_sorted([b"", *keys], values)
    table.finish()


def save_tensors(
    prefix: str | os.PathLike[str],
    tensors: Mapping[str, Any],
    *,
    durable: bool = False,
    max_shard_size: int | None = None,
    num_shards: int | None = None,
    fs: Any = None,
    storage_options: Mapping[str, Any] | None = None,
) -> str:
    """Writes ``{name: value}`` as a V2 checkpoint at ``prefix``; returns the prefix.

    Tensors are stored in the mapping's order, so the files equal what ``tf.raw_ops.SaveV2``
    writes for the same names in the same order.  ``durable=True`` fsyncs before returning.
    ``max_shard_size`` (bytes) writes the shards TensorFlow's ``MaxShardSizePolicy`` writes
    for the same tensors in the same order; ``num_shards`` spreads whole tensors over that
    many data files (:class:`BundleWriter`).  ``prefix`` may be an fsspec URL, or a path
    on the fsspec filesystem ``fs`` (:class:`BundleWriter`).  Arrays are written from
    their own memory (:meth:`BundleWriter.add_many`): they must not change while this runs.

    Example::

        save_tensors("/tmp/ckpt/model", {"w": np.ones((512, 512))}, max_shard_size=1 << 20)

    Raises:
        InvalidArgumentError: a name or value cannot be written, or an option is invalid
            (nothing is left behind).
        StorageError: writing failed (nothing is left behind; a checkpoint that was at
            ``prefix`` is unchanged).
        ConcurrentWriteError: another writer is writing ``prefix``.
    """
    with BundleWriter(
        prefix,
        durable=durable,
        max_shard_size=max_shard_size,
        num_shards=num_shards,
        fs=fs,
        storage_options=storage_options,
    ) as writer:
        writer.add_many(tensors.items())
    return writer.prefix
