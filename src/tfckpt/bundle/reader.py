"""Reading TensorBundle (V2) checkpoints."""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from tfckpt import checksum, dtypes
from tfckpt.bundle.naming import data_filename, index_filename
from tfckpt.bundle.partial import Bounds, gather, normalize_index
from tfckpt.bundle.shards import DataFile
from tfckpt.bundle.strings import StringDecodeError, decode_strings
from tfckpt.errors import (
    CheckpointNotFoundError,
    DataLossError,
    TensorNotFoundError,
    UnsupportedError,
)
from tfckpt.proto import tensor_bundle_pb2
from tfckpt.table.reader import TableReader
from tfckpt.tensor_slice import TensorSlice, decode_slice_key, encode_slice_key

# tensor_bundle.cc: kTensorBundleVersion (the consumer version this reader implements)
# and kTensorBundleMinProducer.
BUNDLE_VERSION = 1
BUNDLE_MIN_PRODUCER = 0

_LITTLE = tensor_bundle_pb2.BundleHeaderProto.LITTLE
_BIG = tensor_bundle_pb2.BundleHeaderProto.BIG

Entry = Any  # a tfckpt.proto.tensor_bundle_pb2.BundleEntryProto
_ENTRY_FROM_STRING = tensor_bundle_pb2.BundleEntryProto.FromString


def _key(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


def _name(key: bytes) -> str:
    return key.decode("utf-8", "surrogateescape")


class BundleReader:
    """Reads the tensors of the V2 checkpoint at ``prefix``.

    ``verify_checksums`` checks the CRC32C of every table block and every tensor read.
    Data files are opened on first use and read with positional reads (owned arrays) or
    through a read-only memory map (``copy=False``).
    """

    def __init__(self, prefix: str | os.PathLike[str], *, verify_checksums: bool = True) -> None:
        self.prefix = os.fspath(prefix)
        self.index_path = index_filename(self.prefix)
        self._verify = verify_checksums
        if not os.path.exists(self.index_path):
            raise CheckpointNotFoundError(
                f"no checkpoint at {self.prefix!r}: {self.index_path!r} does not exist",
                path=self.index_path,
            )
        table = TableReader.open(self.index_path, verify_checksums=verify_checksums)
        self._raw: dict[bytes, bytes] = {}
        header_value: bytes | None = None
        for key, value in table.items():
            if key == b"":
                header_value = value
            else:
                self._raw[key] = value
        if header_value is None:
            raise DataLossError(
                f"{self.index_path!r}: no bundle header (the entry under the empty key is "
                "missing); is this a TensorFlow V2 checkpoint index?",
                path=self.index_path,
            )
        header = tensor_bundle_pb2.BundleHeaderProto()
        try:
            header.ParseFromString(header_value)
        except Exception:  # protobuf's DecodeError
            raise DataLossError(
                f"{self.index_path!r}: the bundle header is not a BundleHeaderProto",
                path=self.index_path,
            ) from None
        self._check_version(header.version)
        if header.num_shards < 1 and self._raw:
            raise DataLossError(
                f"{self.index_path!r}: header says {header.num_shards} data shards",
                path=self.index_path,
            )
        if header.endianness not in (_LITTLE, _BIG):
            raise DataLossError(
                f"{self.index_path!r}: unknown endianness {header.endianness} in header",
                path=self.index_path,
            )
        self.num_shards: int = header.num_shards
        self.big_endian: bool = header.endianness == _BIG
        self.version = (header.version.producer, header.version.min_consumer)
        self._entries: dict[bytes, Entry] = {}
        self._shapes: dict[bytes, tuple[int, ...]] = {}
        self._shards: dict[int, DataFile] = {}
        self._visible: list[str] | None = None

    def _check_version(self, version: Any) -> None:
        # core/framework/versions.cc CheckVersions, with the bundle's constants.
        where = self.index_path
        if version.producer < BUNDLE_MIN_PRODUCER:
            raise UnsupportedError(
                f"{where!r}: checkpoint producer version {version.producer} is below the "
                f"minimum {BUNDLE_MIN_PRODUCER} this reader supports",
                path=where,
            )
        if version.min_consumer > BUNDLE_VERSION:
            raise UnsupportedError(
                f"{where!r}: checkpoint needs a reader of version >= {version.min_consumer}; "
                f"tfckpt implements version {BUNDLE_VERSION}",
                path=where,
            )
        if BUNDLE_VERSION in version.bad_consumers:
            raise UnsupportedError(
                f"{where!r}: checkpoint disallows readers of version {BUNDLE_VERSION}",
                path=where,
            )

    # -- entries ---------------------------------------------------------------------------

    def keys(self) -> list[str]:
        """Tensor names in key order; the per-slice entries of partitioned tensors are hidden.

        As TensorFlow's CheckpointReader does, a key is hidden only when a full-tensor entry
        lists its slice (tensorflow/c/checkpoint_reader.cc).
        """
        if self._visible is None:
            visible = []
            for key in self._raw:
                if key[:1] == b"\x00" and self._is_listed_slice(key):
                    continue
                visible.append(_name(key))
            self._visible = visible
        return list(self._visible)

    def _is_listed_slice(self, key: bytes) -> bool:
        try:
            name, tensor_slice = decode_slice_key(key)
        except ValueError:
            return False
        full_key = _key(name)
        if full_key not in self._raw:
            return False
        try:
            return tensor_slice in self.slices(name)
        except DataLossError:
            return False  # reported when the tensor itself is read

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _key(name) in self._raw

    def entry(self, name: str) -> Entry:
        """The validated BundleEntryProto of ``name``."""
        key = _key(name)
        found = self._entries.get(key)
        if found is not None:
            return found
        return self._parse_entry(key, name)

    def _parse_entry(self, key: bytes, name: str) -> Entry:
        raw = self._raw.get(key)
        if raw is None:
            raise TensorNotFoundError(
                f"tensor {name!r} not found in checkpoint {self.prefix!r}",
                path=self.prefix,
                tensor=name,
            )
        try:
            entry = _ENTRY_FROM_STRING(raw)
        except Exception:
            raise DataLossError(
                f"{self.index_path!r}, tensor {name!r}: entry is not a BundleEntryProto",
                path=self.index_path,
                tensor=name,
            ) from None
        shape = entry.shape
        dims = [d.size for d in shape.dim]
        if shape.unknown_rank or (dims and min(dims) < 0):
            raise DataLossError(
                f"{self.index_path!r}, tensor {name!r}: invalid tensor shape "
                f"{dims} (unknown_rank={shape.unknown_rank})",
                path=self.index_path,
                tensor=name,
            )
        self._entries[key] = entry
        self._shapes[key] = tuple(dims)
        return entry

    def shape_map(self) -> dict[str, list[int]]:
        """``{name: shape}`` of every visible tensor, parsing the index in one pass."""
        shapes = self._shapes
        out: dict[str, list[int]] = {}
        for name in self.keys():
            key = _key(name)
            if key not in shapes:
                self._parse_entry(key, name)
            out[name] = list(shapes[key])
        return out

    def dtype(self, name: str) -> dtypes.DType:
        """The dtype of ``name``; UnsupportedError for a DataType tfckpt does not know."""
        enum = self.entry(name).dtype
        found = dtypes.from_enum(enum)
        if found is None:
            raise UnsupportedError(
                f"{self.index_path!r}, tensor {name!r}: unknown dtype (DataType enum {enum}); "
                "a newer TensorFlow may have written it",
                path=self.index_path,
                tensor=name,
            )
        return found

    def shape(self, name: str) -> tuple[int, ...]:
        key = _key(name)
        found = self._shapes.get(key)
        if found is None:
            self._parse_entry(key, name)
            found = self._shapes[key]
        return found

    def slices(self, name: str) -> list[TensorSlice]:
        """The stored slices of a partitioned tensor (empty for an ordinary tensor)."""
        try:
            return [TensorSlice.from_proto(s) for s in self.entry(name).slices]
        except ValueError as exc:
            raise DataLossError(
                f"{self.index_path!r}, tensor {name!r}: invalid slice in its entry: {exc}",
                path=self.index_path,
                tensor=name,
            ) from None

    # -- data ------------------------------------------------------------------------------

    def _shard(self, shard_id: int, name: str) -> DataFile:
        shard = self._shards.get(shard_id)
        if shard is None:
            if not 0 <= shard_id < self.num_shards:
                raise DataLossError(
                    f"{self.index_path!r}, tensor {name!r}: entry points to data shard "
                    f"{shard_id} but the checkpoint has {self.num_shards} shards",
                    path=self.index_path,
                    tensor=name,
                )
            path = data_filename(self.prefix, shard_id, self.num_shards)
            try:
                shard = DataFile(path)
            except CheckpointNotFoundError as exc:
                raise CheckpointNotFoundError(
                    f"{exc.message} (needed for tensor {name!r})", path=path, tensor=name
                ) from None
            self._shards[shard_id] = shard
        return shard

    def read(self, name: str, *, copy: bool = True) -> np.ndarray:
        """The tensor ``name`` as an array (0-d for scalars; object array of bytes for strings).

        Partitioned tensors are assembled from their slices.  With ``copy=False`` numeric
        tensors are read-only views of a memory map of the data file (no copy); with
        ``copy=True`` they are owned, writable arrays read straight into place.  Either way
        the tensor's CRC32C is checked when ``verify_checksums`` is on.
        """
        entry = self.entry(name)
        dtype = self.dtype(name)
        if entry.slices:
            return self._assemble(name, entry, dtype)
        return self._read_entry(name, entry, dtype, copy)

    def _read_entry(self, name: str, entry: Entry, dtype: dtypes.DType, copy: bool) -> np.ndarray:
        if dtype.name in ("resource", "variant"):
            raise UnsupportedError(
                f"{self.prefix!r}, tensor {name!r}: {dtype.name} tensors cannot be read "
                "without TensorFlow (they hold C++ objects, not data)",
                path=self.prefix,
                tensor=name,
            )
        shape = tuple(d.size for d in entry.shape.dim)
        count = math.prod(shape)
        shard = self._shard(entry.shard_id, name)
        shard.check_range(entry.offset, entry.size, name)
        if dtype.name == "string":
            if count > entry.size:  # every string takes at least its one-byte length
                raise DataLossError(
                    f"{shard.path!r}, tensor {name!r}: entry size {entry.size} is too small "
                    f"for {count} strings",
                    path=shard.path,
                    tensor=name,
                )
            return self._read_strings(name, entry, shard, shape, count)
        storage = dtype.storage_dtype
        expected = count * storage.itemsize
        if entry.size != expected:
            raise DataLossError(
                f"{shard.path!r}, tensor {name!r}: entry size is {entry.size} bytes but "
                f"{dtype.name} {list(shape)} needs {expected}",
                path=shard.path,
                tensor=name,
            )
        if copy:
            array = np.empty(shape, storage)
            raw = array.reshape(-1).view(np.uint8)
            if expected:
                shard.readinto(entry.offset, memoryview(raw))
            self._check_crc(name, entry, shard, raw)
        else:
            view = shard.view()[entry.offset : entry.offset + expected]
            self._check_crc(name, entry, shard, view)
            array = np.frombuffer(view, storage, count).reshape(shape)
        if self.big_endian and storage.itemsize > 1:
            array = _from_big_endian(array, storage, copy)
        return array

    def _check_crc(self, name: str, entry: Entry, shard: DataFile, data: Any) -> None:
        if not self._verify:
            return
        actual = checksum.crc32c(data)
        self._compare_crc(name, entry, shard, actual)

    def _compare_crc(self, name: str, entry: Entry, shard: DataFile, actual: int) -> None:
        stored = checksum.unmask(entry.crc32c)
        if stored != actual:
            raise DataLossError(
                f"{shard.path!r}, tensor {name!r}: checksum mismatch: the entry says crc32c "
                f"{stored:#010x}, the {entry.size} bytes at offset {entry.offset} give "
                f"{actual:#010x}",
                path=shard.path,
                tensor=name,
            )

    def _read_strings(
        self, name: str, entry: Entry, shard: DataFile, shape: tuple[int, ...], count: int
    ) -> np.ndarray:
        out = np.empty(shape, dtype=object)
        if entry.size == 0 and count == 0:
            return out  # TensorFlow writes 4 checksum bytes even then, but tolerates none
        data = shard.view()[entry.offset : entry.offset + entry.size]
        try:
            strings, crc = decode_strings(data, count, self.big_endian)
        except StringDecodeError as exc:
            raise DataLossError(
                f"{shard.path!r}, tensor {name!r}: corrupt string tensor: {exc}",
                path=shard.path,
                tensor=name,
            ) from None
        if self._verify:
            self._compare_crc(name, entry, shard, crc)
        out.reshape(-1)[:] = strings
        return out

    def _assemble(self, name: str, entry: Entry, dtype: dtypes.DType) -> np.ndarray:
        full_shape = tuple(d.size for d in entry.shape.dim)
        self._check_slice_sizes(name, full_shape, dtype)
        out = np.empty(full_shape, object if dtype.name == "string" else dtype.storage_dtype)
        covered = np.zeros(full_shape, bool)
        for tensor_slice in self.slices(name):
            slice_name = _name(encode_slice_key(name, tensor_slice))
            where = f"{self.index_path!r}, tensor {name!r}, slice {tensor_slice}"
            try:
                bounds = tensor_slice.bounds(full_shape)
            except ValueError as exc:
                raise DataLossError(f"{where}: {exc}", path=self.index_path, tensor=name) from None
            if slice_name not in self:
                raise DataLossError(
                    f"{where}: the slice's entry is missing from the index",
                    path=self.index_path,
                    tensor=name,
                )
            part_entry = self.entry(slice_name)
            part = self._read_entry(name, part_entry, dtype, copy=False)
            region = tuple(slice(start, stop) for start, stop in bounds)
            if part.shape != out[region].shape:
                raise DataLossError(
                    f"{where}: stored slice has shape {list(part.shape)}, expected "
                    f"{list(out[region].shape)}",
                    path=self.index_path,
                    tensor=name,
                )
            if covered[region].any():
                raise DataLossError(
                    f"{where}: overlaps another slice", path=self.index_path, tensor=name
                )
            out[region] = part
            covered[region] = True
        if not covered.all():
            raise DataLossError(
                f"{self.index_path!r}, tensor {name!r}: its slices cover only "
                f"{int(covered.sum())} of {covered.size} elements",
                path=self.index_path,
                tensor=name,
            )
        return out

    def _check_slice_sizes(
        self, name: str, full_shape: tuple[int, ...], dtype: dtypes.DType
    ) -> None:
        # Before allocating the full tensor: the slices' volumes must add up to it and
        # every slice entry must hold exactly its volume (so a crafted index cannot make
        # tfckpt allocate more than the data files hold).
        where = f"{self.index_path!r}, tensor {name!r}"
        total = 0
        for tensor_slice in self.slices(name):
            try:
                volume = math.prod(tensor_slice.shape_in(full_shape))
            except ValueError as exc:
                raise DataLossError(f"{where}: {exc}", path=self.index_path, tensor=name) from None
            key = _name(encode_slice_key(name, tensor_slice))
            if key in self and dtype.is_numeric_storage:
                size = self.entry(key).size
                if size != volume * dtype.size:
                    raise DataLossError(
                        f"{where}, slice {tensor_slice}: entry holds {size} bytes, the slice "
                        f"needs {volume * dtype.size}",
                        path=self.index_path,
                        tensor=name,
                    )
            total += volume
        if total != math.prod(full_shape):
            raise DataLossError(
                f"{where}: its slices cover {total} elements but the tensor has "
                f"{math.prod(full_shape)}",
                path=self.index_path,
                tensor=name,
            )

    def read_region(self, name: str, index: Any) -> np.ndarray:
        """``tensor[index]`` for basic indexing, reading only the bytes it needs.

        Numeric tensors are read through the memory map, per stored piece; string tensors are
        decoded whole first.  No checksum is verified (it covers whole tensors).
        """
        entry = self.entry(name)
        dtype = self.dtype(name)
        shape = tuple(d.size for d in entry.shape.dim)
        slices, int_axes = normalize_index(index, shape)
        if dtype.name == "string" or dtype.name in ("resource", "variant"):
            return self.read(name)[index]  # type: ignore[no-any-return]
        storage = dtype.storage_dtype
        parts: list[tuple[Bounds, Any]] = []
        stored = (
            [(s, _name(encode_slice_key(name, s))) for s in self.slices(name)]
            if entry.slices
            else [(TensorSlice.full(len(shape)), name)]
        )
        for tensor_slice, key in stored:
            if key not in self:
                raise DataLossError(
                    f"{self.index_path!r}, tensor {name!r}, slice {tensor_slice}: the slice's "
                    "entry is missing from the index",
                    path=self.index_path,
                    tensor=name,
                )
            part_entry = self.entry(key)
            part_shape = tuple(d.size for d in part_entry.shape.dim)
            try:
                bounds = tensor_slice.bounds(shape)
            except ValueError as exc:
                raise DataLossError(
                    f"{self.index_path!r}, tensor {name!r}: {exc}",
                    path=self.index_path,
                    tensor=name,
                ) from None
            count = math.prod(part_shape)
            if (
                part_entry.size != count * storage.itemsize
                or tuple(b - a for a, b in bounds) != part_shape
            ):
                raise DataLossError(
                    f"{self.index_path!r}, tensor {name!r}: stored piece {tensor_slice} has "
                    f"shape {list(part_shape)} and {part_entry.size} bytes, which do not fit",
                    path=self.index_path,
                    tensor=name,
                )
            shard = self._shard(part_entry.shard_id, name)
            shard.check_range(part_entry.offset, part_entry.size, name)

            def view(
                shard: DataFile = shard,
                entry: Entry = part_entry,
                part_shape: tuple[int, ...] = part_shape,
                count: int = count,
            ) -> np.ndarray:
                data = shard.view()[entry.offset : entry.offset + entry.size]
                return np.frombuffer(data, storage, count).reshape(part_shape)

            parts.append((bounds, view))
        out = gather(parts, slices, int_axes, storage)
        if self.big_endian and storage.itemsize > 1:
            out = _from_big_endian(out, storage, True)
        return out

    def close(self) -> None:
        for shard in self._shards.values():
            shard.close()
        self._shards.clear()

    def __enter__(self) -> BundleReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _from_big_endian(array: np.ndarray, storage: np.dtype[Any], copy: bool) -> np.ndarray:
    # byte_swap_tensor.cc: each element is swapped, complex numbers component by component.
    unit = storage.itemsize // 2 if storage.kind == "c" else storage.itemsize
    raw = array if copy else array.copy()
    raw.reshape(-1).view(f"u{unit}").byteswap(inplace=True)
    return raw
