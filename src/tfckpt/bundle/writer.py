"""Writing TensorBundle (V2) checkpoints, byte-identical to TensorFlow's ``SaveV2``.

Data is appended to the data file in the order tensors are added, with no padding; the
index lists the entries in key order (BundleWriter::Add / AddSlice / Finish in
tensorflow/core/util/tensor_bundle/tensor_bundle.cc).

Every tensor takes one path.  It is prepared into a batch (:mod:`tfckpt.bundle.prepare`:
converted to its stored array, byte-swapped, or string-encoded, as the buffers to write and
what its checksum still has to cover); a batch is written when it is full and at the end of
each call (:mod:`tfckpt.bundle.output`), and only then are its entries recorded.  The files
are published through :mod:`tfckpt.storage.commit`: under temporary names until
:meth:`BundleWriter.finish` renames the data file and then the index (setting the old
checkpoint's files aside first when it replaces one, so that a crash leaves the old
checkpoint or the new one, never a mixture).  A writer claims its prefix first
(:mod:`tfckpt.bundle.claim`): a second writer of the same prefix fails instead of mixing.

Sharded saves (``max_shard_size``: TensorFlow's MaxShardSizePolicy layout; ``num_shards``:
whole tensors spread over N files) are planned by :mod:`tfckpt.bundle.sharding`: the writer
checks and converts each value as it is added and holds it
(:mod:`tfckpt.bundle.sharded_write`); :meth:`BundleWriter.finish` plans the shards (the
planner's module says why there), creates every data file in one commit, writes the shards
in parallel on the shared pool and then the one index (``num_shards`` in its header, each
entry's ``shard_id``; a tensor cut into slices gets a full entry as MergeV2Checkpoints
leaves it), published like a single-shard save: data files first, the index last.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from tfckpt import dtypes
from tfckpt.bundle.claim import claim_prefix
from tfckpt.bundle.entry_codec import EntryFields, partitioned_entry
from tfckpt.bundle.naming import data_filename, index_filename
from tfckpt.bundle.output import WRITE_BUFFER, DataFile, temporary_of, write_index
from tfckpt.bundle.prepare import prepare_array, prepare_value
from tfckpt.bundle.sharded_write import HeldTensors
from tfckpt.bundle.sharding import check_options
from tfckpt.bundle.values import stored_as_is, to_array
from tfckpt.bundle.write_batch import StringPieces, WriteBatch
from tfckpt.errors import InvalidArgumentError, StorageError
from tfckpt.storage.commit import LocalCommit, storage_error
from tfckpt.storage.location import commit_for
from tfckpt.tensor_slice import TensorSlice, encode_slice_key

__all__ = ["BundleWriter", "StringPieces", "save_tensors"]


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
        self._held: HeldTensors | None = None
        self._num_shards = 1
        if self._sharding is None:
            path = data_filename(self.prefix, 0, 1)
            try:
                out = self._commit.create(path, buffer_size=WRITE_BUFFER)
            except BaseException:
                self._claim.release()
                raise
            self._data = DataFile(self._commit, out, path, 0)
        else:
            self._held = HeldTensors(self._sharding, big_endian=big_endian)
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
            self._record_held(
                self._held.hold(slice_key, name, array, tf_dtype, full_shape, starts).key
            )
        else:
            batch = WriteBatch()
            prepare_array(batch, slice_key, name, array, tf_dtype, self.big_endian)
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
                self._entries, self._num_shards = self._held.write(self._commit, self.prefix)
            index_path = index_filename(self.prefix)
            index = self._commit.create(index_path)
            try:
                write_index(index, self._entries, self.big_endian, self._num_shards)
            except StorageError:
                raise
            except OSError as exc:
                temporary = temporary_of(self._commit, index_path)
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
                self._held.values.clear()
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
                key = self._new_key(name, batch)
                self._record_held(self._held.hold_value(key, name, value, dtype).key)
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
                    prepare_value(batch, key, name, value, dtype, self.big_endian)
                if batch.is_full():
                    full, batch = batch, WriteBatch()
                    self._write(full)
        finally:
            if batch.keys:
                self._write(batch)

    def _write(self, batch: WriteBatch) -> None:
        """Writes a batch to the one data file and records its entries."""
        self._data.write(batch, self._entries, overlap=True)

    def _record_held(self, key: bytes) -> None:
        """Claims the key of a value held for a sharded save (its entry comes at finish)."""
        self._entries[key] = (0, (), 0, 0, 0, 0, ())

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


class _Releasable(Protocol):
    def release(self) -> None: ...


class _NoClaim:
    """The claim of a prefix on an object store: none (no lock to take there)."""

    def release(self) -> None:
        pass


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
