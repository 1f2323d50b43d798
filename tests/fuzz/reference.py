"""An independent statement of when a bundle entry can be read, for deciding expectations.

Structure-aware mutations change an entry and ask :func:`entry_verdict` what a correct
reader must do with the result, from the rules of the format (tensor_bundle.cc and
tfckpt.bundle): ``fail`` (the entry cannot be read: a bad dtype, shape, shard, range,
size, or slices that do not tile the tensor), ``fail_verified`` (only its checksum is
wrong), ``same`` (protobuf reads it as the original), or ``changed`` (a valid entry that
may read differently).  It is written from the rules, in plain Python, without the
reader's code, so that a check the reader lacks shows up as a value where this says
``fail``.
"""

from __future__ import annotations

import itertools
import math

import crc32c

from tests.fuzz.editing import BundleEdit, Entry
from tfckpt import checksum, dtypes
from tfckpt.tensor_slice import TensorSlice, decode_slice_key, encode_slice_key

FAIL, FAIL_VERIFIED, SAME, CHANGED = "fail", "fail_verified", "same", "changed"
_NUMPY_MAX_RANK = 64


def _dims(entry: Entry) -> list[int]:
    return [d.size for d in entry.shape.dim]


def _readable_dtype(enum: int) -> dtypes.DType | None:
    found = dtypes.from_enum(enum)
    if found is None or found.name in ("resource", "variant"):
        return None
    return found


def _shape_ok(dims: list[int], dtype: dtypes.DType, unknown_rank: bool) -> bool:
    if unknown_rank or len(dims) > _NUMPY_MAX_RANK or any(d < 0 for d in dims):
        return False
    itemsize = 8 if dtype.name == "string" else dtype.size
    return math.prod(d for d in dims if d) * itemsize < 1 << 63 or 0 not in dims


def _range_ok(edit: BundleEdit, entry: Entry) -> bool:
    if not 0 <= entry.shard_id < edit.header.num_shards:
        return False
    data = edit.data_bytes(entry.shard_id)
    if data is None:
        return False
    return entry.offset >= 0 and entry.size >= 0 and entry.offset + entry.size <= len(data)


def _size_ok(dtype: dtypes.DType, dims: list[int], size: int) -> bool:
    count = math.prod(dims)
    if dtype.name == "string":
        return count <= size  # each string takes at least its one-byte length
    return count * dtype.size == size


def _crc_matches(edit: BundleEdit, entry: Entry) -> bool:
    data = edit.data_bytes(entry.shard_id)
    assert data is not None
    stored = checksum.unmask(entry.crc32c)
    return crc32c.crc32c(data[entry.offset : entry.offset + entry.size]) == stored


def _whole_verdict(edit: BundleEdit, entry: Entry) -> str:
    dtype = _readable_dtype(entry.dtype)
    if dtype is None:
        return FAIL
    dims = _dims(entry)
    if not _shape_ok(dims, dtype, entry.shape.unknown_rank):
        return FAIL
    if not _range_ok(edit, entry) or not _size_ok(dtype, dims, entry.size):
        return FAIL
    if dtype.name != "string" and not _crc_matches(edit, entry):
        return FAIL_VERIFIED
    return CHANGED


def _boxes_tile(shape: list[int], boxes: list[tuple[tuple[int, int], ...]]) -> bool:
    """Whether the boxes, each inside ``shape``, cover it exactly once."""
    volume = sum(math.prod(b - a for a, b in box) for box in boxes)
    if volume != math.prod(shape):
        return False
    return not any(
        all(a1 < b2 and a2 < b1 for (a1, b1), (a2, b2) in zip(one, two))
        for one, two in itertools.combinations(boxes, 2)
    )


def _partition_verdict(edit: BundleEdit, name: str, full: Entry) -> str:
    """The verdict for a partitioned tensor whose full entry is ``full``."""
    dtype = _readable_dtype(full.dtype)
    dims = _dims(full)
    if dtype is None or not _shape_ok(dims, dtype, full.shape.unknown_rank):
        return FAIL
    keys = set(edit.key_list())
    boxes = []
    verdict = CHANGED
    for proto in full.slices:
        try:
            piece = TensorSlice.from_proto(proto)
            bounds = piece.bounds(dims)
        except ValueError:
            return FAIL
        key = encode_slice_key(name, piece)
        if key not in keys:
            return FAIL
        try:
            stored = edit.entry(key)
        except Exception:  # protobuf's DecodeError
            return FAIL
        shape = [b - a for a, b in bounds]
        if _dims(stored) != shape or stored.dtype != full.dtype:
            return FAIL
        if not _range_ok(edit, stored) or not _size_ok(dtype, shape, stored.size):
            return FAIL
        if dtype.name != "string" and not _crc_matches(edit, stored):
            verdict = FAIL_VERIFIED
        boxes.append(bounds)
    if not _boxes_tile(dims, boxes):
        return FAIL
    return verdict


def entry_verdict(edit: BundleEdit, key: bytes, original: bytes) -> str:
    """What a correct reader must do with the tensor owning ``key`` after its entry's value
    changed from ``original`` (see the module)."""
    value = edit.entries[edit.position(key)][1]
    try:
        entry = Entry.FromString(value)
    except Exception:  # protobuf's DecodeError
        return FAIL
    if entry == Entry.FromString(original):
        return SAME
    return tensor_verdict(edit, key)


def tensor_verdict(edit: BundleEdit, key: bytes) -> str:
    """The verdict for the tensor owning ``key`` in the edited bundle."""
    try:
        name, _ = decode_slice_key(key)
    except ValueError:
        name = key.decode("utf-8", "surrogateescape")
        full_key = key
    else:
        full_key = name.encode("utf-8", "surrogateescape")
    try:
        full = edit.entry(full_key)
    except Exception:  # no such key (ValueError), or it does not parse (DecodeError)
        return FAIL if full_key == key else CHANGED
    if full.slices:
        return _partition_verdict(edit, name, full)
    if full_key != key:
        return CHANGED  # a slice entry the full tensor does not list: read on its own
    return _whole_verdict(edit, full)
