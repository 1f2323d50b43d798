"""The TensorFlow-compatible reading API: ``load_checkpoint`` and ``CheckpointReader``."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from tfckpt import paths, reader_cache
from tfckpt.backend import Backend
from tfckpt.bundle.reader import BundleReader
from tfckpt.dtypes import DType
from tfckpt.errors import TensorNotFoundError
from tfckpt.legacy.reader import V1Reader
from tfckpt.storage.location import LOCAL, Storage, locate
from tfckpt.tensor_slice import TensorSlice

# What get_tensor returns, as TensorFlow's reader does: a NumPy scalar for a 0-d numeric
# tensor, bytes for a 0-d string, an ndarray otherwise (an object array of bytes for strings).
TensorValue = np.ndarray | np.generic | bytes


def _value(array: np.ndarray) -> TensorValue:
    """``array`` itself, or the element of a 0-d array (a NumPy scalar, or bytes)."""
    return array if array.ndim else array[()]


class CheckpointReader:
    """Reads one checkpoint, with the methods of TensorFlow's ``CheckpointReader``.

    Also a read-only mapping from tensor names to values: ``keys()``, ``in``, ``[name]``,
    ``len()``, iteration, and a context manager that closes the data files.  See
    :func:`load_checkpoint` for ``fs`` and ``storage_options`` (remote checkpoints).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        verify_checksums: bool = True,
        fs: Any = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        storage, where = locate(path, fs=fs, storage_options=storage_options)
        prefix, fmt = paths.resolve(where, storage)
        self.prefix = prefix
        self.format = fmt
        self._backend: Backend = _open_backend(prefix, fmt, verify_checksums, storage)
        self._names = self._backend.names()

    @classmethod
    def _over(cls, prefix: str, fmt: str, backend: Backend) -> CheckpointReader:
        """A reader over an open ``backend`` that it does not own (one borrowed from
        :mod:`tfckpt.reader_cache`, which closes its files)."""
        reader = cls.__new__(cls)
        reader.prefix = prefix
        reader.format = fmt
        reader._backend = backend
        reader._names = backend.names()
        return reader

    # -- TensorFlow's names ----------------------------------------------------------------

    def get_variable_to_shape_map(self) -> dict[str, list[int]]:
        """``{name: shape}`` with shapes as lists of Python ints."""
        return self._backend.shape_map()

    def get_variable_to_dtype_map(self) -> dict[str, DType]:
        """``{name: dtype}``; dtypes have TensorFlow's ``.name`` and ``.as_numpy_dtype``."""
        return {name: self._backend.dtype(name) for name in self._names}

    def get_dtype(self, name: str) -> DType:
        """The dtype of one tensor (without building the whole dtype map)."""
        self._require(name)
        return self._backend.dtype(name)

    def _require(self, name: str) -> None:
        if name not in self._backend:
            raise TensorNotFoundError("not found in the checkpoint", path=self.prefix, tensor=name)

    def has_tensor(self, name: str) -> bool:
        return name in self._backend

    def get_tensor(self, name: str, *, copy: bool = True) -> TensorValue:
        """The value of ``name``, as TensorFlow's reader returns it.

        A NumPy scalar for 0-d numeric tensors, ``bytes`` for a 0-d string, an object array
        of ``bytes`` for string tensors, an ndarray otherwise; partitioned tensors are
        assembled.  ``copy=False`` returns read-only views of a memory map of the data file
        instead of owned arrays, where the tensor is stored whole (remote checkpoints have
        no memory map: owned arrays either way).  Raises TensorNotFoundError,
        DataLossError, UnsupportedError.

        Example::

            kernel = tfckpt.load_checkpoint("model.ckpt-1").get_tensor("dense/kernel")
        """
        if name not in self._backend:
            self._require(name)
        return _value(self._backend.read_many([name], copy=copy)[name])

    def get_bytes_view(self, name: str) -> memoryview:
        """A 0-d string tensor's bytes without copying them: a read-only memoryview of the
        data file's memory map (V2 checkpoints), checksum verified.  For large serialized
        values (NumpyState's ``.npy`` bytes, say) that are parsed once and dropped."""
        self._require(name)
        return self._backend.read_string_view(name)

    def get_tensors(
        self, names: Iterable[str] | None = None, *, copy: bool = True
    ) -> dict[str, TensorValue]:
        """``{name: get_tensor(name)}`` for ``names`` (default: every tensor), read in bulk.

        Much faster than a ``get_tensor`` loop for many tensors: the owned arrays of one
        data file are filled by a few large reads into one buffer that they share, and
        checksums are verified in parallel.  ``copy=False`` gives memory-map views.
        """
        wanted = self._names if names is None else list(names)
        for name in wanted:
            if name not in self._backend:
                self._require(name)
        values: dict[str, TensorValue] = dict(self._backend.read_many(wanted, copy=copy))
        for name, value in values.items():
            if isinstance(value, np.ndarray) and not value.ndim:
                values[name] = value[()]
        return values

    def get_slice(self, name: str) -> TensorView:
        """A lazy handle on ``name``: ``shape``, ``dtype`` and ``[...]`` basic indexing that
        reads only the bytes it needs (like safetensors' ``get_slice``)."""
        self._require(name)
        return TensorView(self._backend, name)

    def get_tensor_slices(self, name: str) -> list[TensorSlice]:
        """The stored slices of a partitioned tensor, with their extents (empty if whole)."""
        self._require(name)
        slices = self._backend.slices(name)
        full = TensorSlice.full(len(self._backend.shape(name)))
        return [] if slices == [full] else slices

    def debug_string(self) -> bytes:
        """TensorFlow's listing, byte for byte: ``name (DT_FLOAT) [5,5,1,16]\\n`` per entry,
        in TensorFlow's order (see :mod:`tfckpt.compat.debug_string`; keys as stored)."""
        from tfckpt.compat.debug_string import debug_string

        return debug_string(self._backend)

    # -- Python conveniences ---------------------------------------------------------------

    def keys(self) -> list[str]:
        """Tensor names in the checkpoint's (sorted) order."""
        return list(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._backend

    def __getitem__(self, name: str) -> TensorValue:
        return self.get_tensor(name)

    def __len__(self) -> int:
        return len(self._names)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def items(self) -> Iterator[tuple[str, TensorValue]]:
        for name in self._names:
            yield name, self.get_tensor(name)

    def close(self) -> None:
        """Closes the data files (arrays already returned stay valid, ``copy=False`` views
        included: the memory map goes with the last of them).

        Safe while other threads read: a read in flight completes with correct values and
        its file is closed when it is done.  A read after close opens the file again (as
        TensorFlow's reader, which has no close, always reads).  A reader that is never
        closed releases its files when it is garbage.
        """
        self._backend.close()

    def __enter__(self) -> CheckpointReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<tfckpt.CheckpointReader {self.prefix!r}: {len(self)} tensors>"


class TensorView:
    """Part of a tensor on demand: ``view[0:10, :]`` reads just those elements."""

    def __init__(self, backend: Backend, name: str) -> None:
        self._backend = backend
        self.name = name
        self.shape: tuple[int, ...] = backend.shape(name)
        self.dtype: DType = backend.dtype(name)

    def get_shape(self) -> list[int]:
        return list(self.shape)

    def get_dtype(self) -> str:
        return self.dtype.name

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __getitem__(self, index: Any) -> TensorValue:
        value = self._backend.read_region(self.name, index)
        # As NumPy: integers alone give a scalar, an Ellipsis keeps a 0-d array.
        items = index if isinstance(index, tuple) else (index,)
        if isinstance(value, np.ndarray) and value.ndim == 0 and Ellipsis not in items:
            return value[()]
        return value

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        value = self._backend.read_many([self.name])[self.name]
        return value if dtype is None else value.astype(dtype)

    def __repr__(self) -> str:
        return f"<tfckpt.TensorView {self.name!r} {self.dtype.name} {list(self.shape)}>"


def load_checkpoint(
    ckpt_dir_or_file: str | os.PathLike[str],
    *,
    verify_checksums: bool = True,
    fs: Any = None,
    storage_options: Mapping[str, Any] | None = None,
) -> CheckpointReader:
    """Opens a checkpoint (prefix, directory with a state file, or SavedModel directory).

    ``ckpt_dir_or_file`` may be an fsspec URL (``gs://``, ``s3://``, ``https://``,
    ``memory://``, chained ``simplecache::gs://``...; ``storage_options`` go to fsspec:
    credentials, endpoints) or, with ``fs`` (an fsspec filesystem), a path on it.  Remote
    checkpoints need the extras (``pip install "tfckpt[gcs]"``, ``[s3]``, ``[http]`` or
    ``[remote]``); their index is fetched whole when the reader opens and tensors by ranged
    requests of just their bytes.  HTTP(S) cannot list directories: give the prefix, or a
    directory URL under which its ``checkpoint`` state file is served.

    Raises CheckpointNotFoundError when there is no checkpoint, DataLossError when its
    index is corrupt, UnsupportedError for a URL whose backend is not installed,
    CheckpointError when a remote store refuses access or keeps failing.

    Example::

        reader = tfckpt.load_checkpoint("gs://bucket/run", storage_options={"token": "anon"})
        kernel = reader.get_tensor("dense/kernel")
    """
    return CheckpointReader(
        ckpt_dir_or_file,
        verify_checksums=verify_checksums,
        fs=fs,
        storage_options=storage_options,
    )


def load_tensors(
    ckpt_dir_or_file: str | os.PathLike[str],
    names: Iterable[str] | None = None,
    *,
    copy: bool = True,
    verify_checksums: bool = True,
    fs: Any = None,
    storage_options: Mapping[str, Any] | None = None,
) -> dict[str, TensorValue]:
    """Every tensor of a checkpoint (or those in ``names``) as ``{name: array}``, like
    safetensors' ``load_file``; the counterpart of :func:`tfckpt.save_tensors`.

    Owned arrays by default (they share one buffer per data file); ``copy=False`` returns
    read-only views of memory maps that stay valid after the call.  Remote checkpoints
    (``fs``, ``storage_options``: see :func:`load_checkpoint`) are fetched by few large,
    concurrent ranged requests, neighbouring tensors coalesced; their arrays are owned.
    """
    with load_checkpoint(
        ckpt_dir_or_file, verify_checksums=verify_checksums, fs=fs, storage_options=storage_options
    ) as reader:
        return reader.get_tensors(names, copy=copy)


def _open_backend(
    prefix: str, fmt: str, verify_checksums: bool, storage: Storage = LOCAL
) -> Backend:
    backend = BundleReader if fmt == paths.V2 else V1Reader
    return backend(prefix, verify_checksums=verify_checksums, storage=storage)


@contextmanager
def _shared_reader(
    ckpt_dir_or_file: str | os.PathLike[str],
    fs: Any = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Iterator[CheckpointReader]:
    """A reader of the checkpoint whose decoded index is shared with other calls
    (:data:`tfckpt.reader_cache.SHARED`; a rewritten checkpoint is opened again).  Remote
    checkpoints are opened for the call alone (the cache knows local files' identities)."""
    storage, where = locate(ckpt_dir_or_file, fs=fs, storage_options=storage_options)
    if storage.remote:
        with load_checkpoint(where, fs=fs, storage_options=storage_options) as reader:
            yield reader
        return
    prefix, fmt = paths.resolve(where)
    opener = functools.partial(_open_backend, prefix, fmt, True)
    with reader_cache.SHARED.borrow(prefix, fmt, opener) as backend:
        yield CheckpointReader._over(prefix, fmt, backend)


def list_variables(
    ckpt_dir_or_file: str | os.PathLike[str],
    *,
    fs: Any = None,
    storage_options: Mapping[str, Any] | None = None,
) -> list[tuple[str, list[int]]]:
    """``[(name, shape), ...]`` sorted by name, like ``tf.train.list_variables`` (``fs``,
    ``storage_options``: remote checkpoints, see :func:`load_checkpoint`).

    The decoded index is kept for the next call on the same unchanged checkpoint (see
    :mod:`tfckpt.reader_cache`).  Raises CheckpointNotFoundError, DataLossError.

    Example::

        names = [name for name, shape in tfckpt.list_variables("bert_model.ckpt")]
    """
    with _shared_reader(ckpt_dir_or_file, fs, storage_options) as reader:
        shapes = reader.get_variable_to_shape_map()
    return [(name, shapes[name]) for name in sorted(shapes)]


def load_variable(
    ckpt_dir_or_file: str | os.PathLike[str],
    name: str,
    *,
    fs: Any = None,
    storage_options: Mapping[str, Any] | None = None,
) -> TensorValue:
    """One tensor's value (an owned array), like ``tf.train.load_variable``; a trailing
    ``:0`` is ignored (``fs``, ``storage_options``: see :func:`load_checkpoint`).

    Cheap to call once per name: the decoded index is shared between calls on the same
    unchanged checkpoint (see :mod:`tfckpt.reader_cache`).  Raises CheckpointNotFoundError,
    TensorNotFoundError, DataLossError, UnsupportedError.

    Example::

        for name, _ in tfckpt.list_variables(path):
            weights[name] = tfckpt.load_variable(path, name)
    """
    if name.endswith(":0"):
        name = name[:-2]
    with _shared_reader(ckpt_dir_or_file, fs, storage_options) as reader:
        return reader.get_tensor(name)
