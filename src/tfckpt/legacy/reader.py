"""Reading legacy V1 checkpoints (the format is described in :mod:`tfckpt.legacy`)."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from types import EllipsisType
from typing import Any

import numpy as np

from tfckpt import dtypes
from tfckpt.errors import (
    CheckpointNotFoundError,
    DataLossError,
    InvalidArgumentError,
    TensorNotFoundError,
    UnsupportedError,
)
from tfckpt.legacy.naming import missing_shards, v1_files
from tfckpt.partial import normalize_index
from tfckpt.proto import saved_tensor_slice_pb2, tensor_pb2
from tfckpt.shapes import check_numpy_shape
from tfckpt.storage.location import LOCAL, Storage
from tfckpt.table.files import open_table
from tfckpt.table.reader import TableReader
from tfckpt.tensor_slice import TensorSlice, encode_slice_key

# dtype name -> TensorProto field holding its values
_VALUE_FIELD = {
    "float32": "float_val",
    "float64": "double_val",
    "bool": "bool_val",
    "int64": "int64_val",
    "uint32": "uint32_val",
    "uint64": "uint64_val",
    "int32": "int_val",
    "int16": "int_val",
    "int8": "int_val",
    "uint8": "int_val",
    "uint16": "int_val",
    "qint8": "int_val",
    "quint8": "int_val",
    "qint16": "int_val",
    "quint16": "int_val",
    "qint32": "int_val",
    "float16": "half_val",
    "bfloat16": "half_val",
    "complex64": "scomplex_val",
    "complex128": "dcomplex_val",
    "string": "string_val",
}


class _TensorInfo:
    __slots__ = ("dtype", "shape", "slices")

    def __init__(self, dtype: dtypes.DType, shape: tuple[int, ...]) -> None:
        self.dtype = dtype
        self.shape = shape
        self.slices: list[tuple[TensorSlice, int]] = []  # (slice, table index)


class V1Reader:
    """Reads the tensors of the V1 checkpoint at ``prefix`` (same interface as BundleReader);
    its files are read whole when it opens, from ``storage`` (local files by default)."""

    def __init__(
        self,
        prefix: str | os.PathLike[str],
        *,
        verify_checksums: bool = True,
        storage: Storage = LOCAL,
    ) -> None:
        self.prefix = os.fspath(prefix)
        self.files = v1_files(self.prefix, storage)
        if not self.files:
            raise CheckpointNotFoundError(
                "no V1 checkpoint files match this prefix (expected the file itself or "
                "-NNNNN-of-MMMMM shards)",
                path=self.prefix,
            )
        # (a shard file opened by its own path is read alone, deliberately)
        missing = missing_shards(self.files) if self.files != [self.prefix] else []
        if missing:  # (its tensors would silently be missing from the checkpoint)
            raise CheckpointNotFoundError(
                f"a shard of the V1 checkpoint at {self.prefix!r} does not exist "
                f"({len(missing)} of them missing)",
                path=missing[0],
            )
        self._tables = [
            open_table(f, storage, verify_checksums=verify_checksums) for f in self.files
        ]
        self._tensors: dict[str, _TensorInfo] = {}
        for index, table in enumerate(self._tables):
            self._load_meta(index, table)
        self._names = sorted(self._tensors)

    def _load_meta(self, index: int, table: TableReader) -> None:
        raw = table.get(b"")
        if raw is None:
            raise DataLossError(
                "no table of contents (the empty key); is this a TensorFlow V1 checkpoint?",
                path=table.name,
            )
        saved = saved_tensor_slice_pb2.SavedTensorSlices()
        try:
            saved.ParseFromString(raw)
        except Exception:
            raise DataLossError(
                "the table of contents (the empty key) is not a SavedTensorSlices",
                path=table.name,
            ) from None
        for meta in saved.meta.tensor:
            dtype = dtypes.from_enum(meta.type)
            if dtype is None:
                raise UnsupportedError(
                    f"unknown dtype (DataType enum {meta.type})",
                    path=table.name,
                    tensor=meta.name,
                )
            shape = tuple(d.size for d in meta.shape.dim)
            if any(d < 0 for d in shape):
                raise DataLossError(
                    f"invalid shape {list(shape)}: dimensions must not be negative",
                    path=table.name,
                    tensor=meta.name,
                )
            info = self._tensors.get(meta.name)
            if info is None:
                info = self._tensors[meta.name] = _TensorInfo(dtype, shape)
            elif info.dtype != dtype or info.shape != shape:
                raise DataLossError(
                    f"dtype/shape {dtype.name} {list(shape)} disagree with another shard's "
                    f"{info.dtype.name} {list(info.shape)}",
                    path=table.name,
                    tensor=meta.name,
                )
            for proto in meta.slice:
                try:
                    tensor_slice = TensorSlice.from_proto(proto)
                except ValueError as exc:
                    raise DataLossError(
                        f"invalid slice in the table of contents: {exc}",
                        path=table.name,
                        tensor=meta.name,
                    ) from None
                info.slices.append((tensor_slice, index))

    def names(self) -> list[str]:
        """Tensor names, sorted (shared: callers must not modify the list)."""
        return self._names

    def __contains__(self, name: object) -> bool:
        return name in self._tensors

    def shape_map(self) -> dict[str, list[int]]:
        return {name: list(self._tensors[name].shape) for name in self._names}

    def _info(self, name: str) -> _TensorInfo:
        info = self._tensors.get(name)
        if info is None:
            raise TensorNotFoundError(
                "no tensor of this name in the checkpoint",
                path=self.prefix,
                tensor=name,
            )
        return info

    def dtype(self, name: str) -> dtypes.DType:
        return self._info(name).dtype

    def shape(self, name: str) -> tuple[int, ...]:
        return self._info(name).shape

    def slices(self, name: str) -> list[TensorSlice]:
        return [s for s, _ in self._info(name).slices]

    def read(self, name: str, *, copy: bool = True) -> np.ndarray:
        """The full tensor, assembled from its saved slices (always an owned array)."""
        info = self._info(name)
        is_string = info.dtype.name == "string"
        if info.dtype.name not in _VALUE_FIELD:
            raise UnsupportedError(
                f"V1 checkpoints cannot hold {info.dtype.name} tensors",
                path=self.prefix,
                tensor=name,
            )
        check_numpy_shape(info.shape, info.dtype, self.prefix, name)
        # Every slice's values are parsed (and counted) before the tensor is allocated, so
        # a shape the file's bytes cannot hold fails without allocating it.
        parts = []
        for tensor_slice, index in info.slices:
            table = self._tables[index]
            slice_name = f"slice {tensor_slice}"
            try:
                bounds = tensor_slice.bounds(info.shape)
            except ValueError as exc:
                # (the message names the slice and the shape it does not fit)
                raise DataLossError(str(exc), path=table.name, tensor=name) from None
            shape = tuple(b - a for a, b in bounds)
            values = self._slice_values(table, name, tensor_slice, info.dtype, shape, slice_name)
            parts.append((tuple(slice(a, b) for a, b in bounds), values, table, slice_name))
        count = math.prod(info.shape)
        held = sum(values.size for _, values, _, _ in parts)
        if held > count:
            raise DataLossError(
                f"a slice overlaps another: the slices hold {held} elements, the tensor {count}",
                path=self.prefix,
                tensor=name,
            )
        if held < count:
            raise DataLossError(
                f"the saved slices cover only {held} of {count} elements",
                path=self.prefix,
                tensor=name,
            )
        out = np.empty(info.shape, object if is_string else info.dtype.storage_dtype)
        covered = np.zeros(info.shape, bool)
        for region, values, table, slice_name in parts:  # (as many elements as the tensor:
            if covered[region].any():  # without an overlap, the slices cover it)
                raise DataLossError(
                    f"{slice_name}: overlaps another slice", path=table.name, tensor=name
                )
            # (Ellipsis: a 0-d string stays bytes.  A named index, not ``out[(*region, ...)]``,
            # which mypy rejects as Python 3.11 syntax when targeting 3.10.)
            target: tuple[slice | EllipsisType, ...] = (*region, Ellipsis)
            out[target] = values
            covered[region] = True
        return out

    def read_many(self, names: Iterable[str], *, copy: bool = True) -> dict[str, np.ndarray]:
        """``{name: read(name)}`` for ``names``."""
        return {name: self.read(name, copy=copy) for name in names}

    def read_string_view(self, name: str) -> memoryview:
        """A 0-d string tensor's bytes; InvalidArgumentError for any other tensor."""
        info = self._info(name)
        if info.dtype.name != "string" or info.shape != ():
            raise InvalidArgumentError(
                f"not a scalar string but {info.dtype.name} {list(info.shape)}",
                path=self.prefix,
                tensor=name,
            )
        return memoryview(self.read(name).item())  # the 0-d object array's bytes

    def read_region(self, name: str, index: Any) -> np.ndarray:
        """``tensor[index]`` (basic indexing only); V1 tables are in memory already, so this
        reads the tensor."""
        normalize_index(index, self.shape(name))  # same validation as for V2 bundles
        return self.read(name)[index]

    def close(self) -> None:
        """Nothing to release: the tables were read into memory when opened."""

    def __enter__(self) -> V1Reader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _slice_values(
        self,
        table: TableReader,
        name: str,
        tensor_slice: TensorSlice,
        dtype: dtypes.DType,
        shape: tuple[int, ...],
        slice_name: str,
    ) -> np.ndarray:
        raw = table.get(encode_slice_key(name, tensor_slice))
        if raw is None:
            raise DataLossError(
                f"{slice_name}: the slice's data is missing", path=table.name, tensor=name
            )
        saved = saved_tensor_slice_pb2.SavedTensorSlices()
        try:
            saved.ParseFromString(raw)
        except Exception:
            raise DataLossError(
                f"{slice_name}: data is not a SavedTensorSlices", path=table.name, tensor=name
            ) from None
        proto = saved.data.data
        count = math.prod(shape)
        values = _values(proto, dtype, count)
        if values is None:
            raise DataLossError(
                f"{slice_name}: expected {count} {dtype.name} values, found "
                f"{len(getattr(proto, _VALUE_FIELD[dtype.name]))} in "
                f"{_VALUE_FIELD[dtype.name]}",
                path=table.name,
                tensor=name,
            )
        return values.reshape(shape)


def _values(proto: tensor_pb2.TensorProto, dtype: dtypes.DType, count: int) -> np.ndarray | None:
    name = dtype.name
    field = _VALUE_FIELD[name]
    if proto.tensor_content and name != "string":
        if len(proto.tensor_content) % dtype.size:
            return None  # not a whole number of elements
        data = np.frombuffer(proto.tensor_content, dtype.storage_dtype.newbyteorder("<"))
        return data.astype(dtype.storage_dtype) if data.size == count else None
    items = getattr(proto, field)
    if name == "string":
        if len(items) != count:
            return None
        out = np.empty(count, object)
        out[:] = list(items)
        return out
    if field in ("scomplex_val", "dcomplex_val"):
        if len(items) != 2 * count:
            return None
        parts = np.array(items, np.float32 if field == "scomplex_val" else np.float64)
        return parts.view(dtype.storage_dtype)
    if len(items) != count:
        return None
    if field == "half_val":
        return np.array(items, np.int64).astype(np.uint16).view(dtype.storage_dtype)
    if field == "int_val":
        return np.array(items, np.int64).astype(dtype.storage_dtype)
    return np.array(items, dtype.storage_dtype)
