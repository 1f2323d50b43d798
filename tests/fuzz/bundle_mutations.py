"""Structure-aware mutations of a bundle: entries, header, keys, strings and slices.

Every mutation edits a :class:`~tests.fuzz.editing.BundleEdit` and returns a
:class:`~tests.fuzz.mutant.Mutant` whose files carry valid block and tensor checksums
(except where the checksum is what changed), so the reader's checks behind the checksums
are reached.  What the reads must give is decided by :mod:`tests.fuzz.reference` from the
edited entries, not by the mutation's intent.  A mutation returns None where it does not
apply to the seed (no string tensor, no partitioned tensor...).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import crc32c
import numpy as np

from tests.fuzz import reference, wire
from tests.fuzz.editing import BundleEdit, Entry, string_encoding
from tests.fuzz.mutant import Mutant
from tfckpt import checksum
from tfckpt.bundle.strings import decode_strings
from tfckpt.objects.keys import OBJECT_GRAPH_KEY
from tfckpt.proto import tensor_bundle_pb2 as tb
from tfckpt.tensor_slice import TensorSlice, encode_slice_key

Mutation = Callable[[random.Random, BundleEdit], Mutant | None]
_GRAPH_READS = frozenset({"graph", "tree", "restore"})
_LISTING = frozenset({"listing"})
EDGE_INTS = (-1, -(2**63), 0, 1, 2**31 - 1, 2**31, 2**32, 2**40, 2**62, 2**63 - 1)


def _subjects(edit: BundleEdit, key: bytes) -> frozenset[str]:
    owner = edit.owner(key)
    return frozenset({owner}) | (_GRAPH_READS if owner == OBJECT_GRAPH_KEY else frozenset())


def _judged(edit: BundleEdit, key: bytes, original: bytes, description: str) -> Mutant:
    """The mutant of an edited entry, its expectation from :mod:`tests.fuzz.reference`."""
    verdict = reference.entry_verdict(edit, key, original)
    return _mutant(edit, verdict, _subjects(edit, key), f"entry {key!r}: {description}")


def _mutant(edit: BundleEdit, verdict: str, subjects: frozenset[str], description: str) -> Mutant:
    files = edit.files()
    if verdict == reference.FAIL:
        return Mutant(description, files, must_fail=subjects, changed=_LISTING)
    if verdict == reference.FAIL_VERIFIED:
        return Mutant(
            description,
            files,
            must_fail_verified=subjects,
            changed=_LISTING | subjects,
            unverified_changed=True,
        )
    if verdict == reference.SAME:
        return Mutant(description, files)
    return Mutant(
        description, files, changed=_LISTING | subjects | _graph(subjects), unverified_changed=True
    )


def _graph(subjects: frozenset[str]) -> frozenset[str]:
    """A changed tensor may change what restoring and load_tree give."""
    return frozenset({"graph"}) if subjects else frozenset()


# -- entry fields ----------------------------------------------------------------------------


def _file_size(edit: BundleEdit, entry: Entry) -> int:
    data = edit.data_bytes(entry.shard_id)
    return 0 if data is None else len(data)


def _set_scalar(rng: random.Random, edit: BundleEdit, entry: Entry) -> str:
    field = rng.choice(["dtype", "shard_id", "offset", "size", "crc32c"])
    size = _file_size(edit, entry)
    choices = {
        "dtype": [0, 7, 20, 21, 34, 99, 2**31 - 1, -1, rng.randrange(1, 34)],
        "shard_id": [
            -1,
            edit.header.num_shards,
            edit.header.num_shards + 1,
            2**31 - 1,
            rng.randrange(max(1, edit.header.num_shards)),
        ],
        "offset": [*EDGE_INTS, size, size - entry.size + 1, rng.randrange(size + 1)],
        "size": [*EDGE_INTS, entry.size + 1, entry.size - 1, size + 1],
        "crc32c": [0, entry.crc32c ^ 1, rng.randrange(2**32)],
    }
    value = rng.choice(choices[field])
    if field == "crc32c":
        value &= 0xFFFFFFFF
    elif field in ("dtype", "shard_id"):
        value = max(-(2**31), min(value, 2**31 - 1))
    setattr(entry, field, value)
    return f"{field} = {value}"


def _set_shape(rng: random.Random, entry: Entry) -> str:
    dims = entry.shape.dim
    how = rng.choice(["set", "append", "remove", "rank65", "unknown_rank"])
    if how == "set" and dims:
        i, value = rng.randrange(len(dims)), rng.choice(EDGE_INTS)
        dims[i].size = value
        return f"dim {i} = {value}"
    if how == "remove" and dims:
        del dims[rng.randrange(len(dims))]
        return "a dim removed"
    if how == "rank65":
        del dims[:]
        for _ in range(65):
            dims.add().size = 1
        return "shape [1] * 65"
    if how == "unknown_rank":
        entry.shape.unknown_rank = True
        return "unknown_rank"
    value = rng.choice((1, 0, 2, -3, 2**40))
    dims.add().size = value
    return f"dim {value} appended"


def _set_slices(rng: random.Random, entry: Entry) -> str:
    rank = len(entry.shape.dim)
    extents = [
        None if rng.random() < 0.5 else (rng.randrange(3), rng.randrange(1, 3))
        for _ in range(rank + rng.choice((0, 0, 1)))
    ]
    del entry.slices[:]
    TensorSlice.from_extents(extents).to_proto(entry.slices.add())
    return f"slices = [{TensorSlice.from_extents(extents)}]"


def entry_field(rng: random.Random, edit: BundleEdit) -> Mutant | None:
    """One field of one entry set to an edge value (dtype, shape, shard, offset, size,
    crc32c, slices), re-encoded with valid block checksums."""
    key = edit.pick(rng)
    if key is None:
        return None
    original = edit.entries[edit.position(key)][1]
    entry = edit.entry(key)
    kind = rng.choice(["scalar", "scalar", "shape", "slices"])
    if kind == "scalar":
        what = _set_scalar(rng, edit, entry)
    elif kind == "shape":
        what = _set_shape(rng, entry)
    else:
        what = _set_slices(rng, entry)
    edit.set_entry(key, entry)
    return _judged(edit, key, original, what)


def entry_wire(rng: random.Random, edit: BundleEdit) -> Mutant | None:
    """One entry re-serialized by hand: fields reordered, scalars duplicated with an edge
    value first (protobuf keeps the last), varints padded, unknown fields added, or its
    bytes flipped, cut or replaced."""
    key = edit.pick(rng)
    if key is None:
        return None
    original = edit.entries[edit.position(key)][1]
    fields = wire.split(original)
    how = rng.choice(
        ["reorder", "duplicate", "pad", "unknown", "deep", "oversized", "flip", "cut", "random"]
    )
    if how == "reorder":
        value = wire.join(list(reversed(fields)))
    elif how == "duplicate":
        number = rng.choice((1, 3, 4, 5))
        decoy = wire.Field(number, wire.VARINT, rng.choice(EDGE_INTS) & ((1 << 64) - 1))
        value = wire.join([decoy]) + original
    elif how == "pad":
        value = wire.join(fields, padding=rng.choice((1, 3)))
    elif how == "unknown":
        extra = [
            wire.Field(15, wire.VARINT, 2**63),
            wire.Field(99, wire.LENGTH, b"junk"),
            wire.Field(7, wire.FIXED64, bytes(8)),
        ]
        value = wire.join([*fields, rng.choice(extra)])
    elif how == "deep":  # protobuf refuses nesting beyond its recursion limit
        value = original + wire.nested_groups(100, rng.choice((10, 100, 100000)))
    elif how == "oversized":  # an unknown field of a MiB, which protobuf skips
        value = original + wire.join([wire.Field(100, wire.LENGTH, bytes(1 << 20))])
    elif how == "flip" and original:
        at = rng.randrange(len(original))
        value = original[:at] + bytes([original[at] ^ (1 << rng.randrange(8))]) + original[at + 1 :]
    elif how == "cut":
        value = original[: rng.randrange(len(original) + 1)]
    else:
        value = rng.randbytes(rng.choice((0, 1, 5, 20)))
    edit.set_entry(key, value)
    return _judged(edit, key, original, f"re-serialized: {how}")


# -- the header ------------------------------------------------------------------------------


def header(rng: random.Random, edit: BundleEdit) -> Mutant | None:
    """The header with an edge field: num_shards, endianness, versions; or not a header."""
    names = frozenset(edit.owner(k) for k in edit.key_list()) | _GRAPH_READS
    original = edit.header
    changed = tb.BundleHeaderProto()
    changed.CopyFrom(original)
    how = rng.choice(["num_shards", "endianness", "version", "unknown", "garbage"])
    if how == "num_shards":
        changed.num_shards = rng.choice((0, -1, original.num_shards + 1, 10**9, 2**31 - 1))
        edit.header = changed
        # Every data file has a new name, which does not exist: every tensor fails.
        return Mutant(
            f"header num_shards = {changed.num_shards}",
            edit.files(),
            must_fail=names,
            changed=_LISTING,
        )
    if how == "endianness":
        changed.endianness = rng.choice((1 - original.endianness, 2, 7))
        edit.header = changed
        if changed.endianness in (0, 1):
            return Mutant(
                f"header endianness = {changed.endianness}", edit.files(), changed=frozenset({"*"})
            )
        return Mutant(
            f"header endianness = {changed.endianness}", edit.files(), must_fail=names | {"open"}
        )
    if how == "version":
        field, value = rng.choice(
            [("producer", -1), ("min_consumer", 2), ("bad_consumers", 1), ("producer", 10**6)]
        )
        if field == "bad_consumers":
            changed.version.bad_consumers.append(value)
        else:
            setattr(changed.version, field, value)
        edit.header = changed
        if (field, value) == ("producer", 10**6):
            return Mutant(f"header producer = {value}", edit.files())
        return Mutant(f"header {field} = {value}", edit.files(), must_fail=names | {"open"})
    if how == "unknown":
        raw = original.SerializeToString() + wire.join([wire.Field(42, wire.LENGTH, b"?")])
        return Mutant("header with an unknown field", edit.files(with_header=raw))
    raw = rng.randbytes(rng.choice((1, 3, 12)))
    return Mutant(
        "header replaced by random bytes", edit.files(with_header=raw), changed=frozenset({"*"})
    )


# -- keys ------------------------------------------------------------------------------------


def keys(rng: random.Random, edit: BundleEdit) -> Mutant | None:
    """Keys duplicated, swapped out of order, deleted or renamed."""
    if not edit.entries:
        return None
    i = rng.randrange(len(edit.entries))
    key, value = edit.entries[i]
    how = rng.choice(["duplicate", "swap", "delete", "rename"])
    if how == "duplicate":
        edit.entries.insert(i, (key, value))
        return Mutant(f"key {key!r} stored twice", edit.files(), must_fail=frozenset({"open"}))
    if how == "swap" and i + 1 < len(edit.entries):
        edit.entries[i], edit.entries[i + 1] = edit.entries[i + 1], edit.entries[i]
        return Mutant(
            f"keys {key!r} and the next swapped", edit.files(), must_fail=frozenset({"open"})
        )
    subjects = _subjects(edit, key)
    if how == "delete":
        del edit.entries[i]
        is_slice = edit.owner(key) != key.decode("utf-8", "surrogateescape")
        verdict = reference.tensor_verdict(edit, key) if is_slice else reference.CHANGED
        return _mutant(edit, verdict, subjects, f"entry {key!r} deleted")
    renamed = key + b"\x00renamed"
    if any(k == renamed for k, _ in edit.entries):
        return None
    edit.entries[i] = (renamed, value)
    edit.entries.sort(key=lambda kv: kv[0])
    return Mutant(f"key {key!r} renamed", edit.files(), changed=frozenset({"*"}))


# -- string tensors --------------------------------------------------------------------------


def _string_parts(edit: BundleEdit, key: bytes) -> tuple[list[int], bytes] | None:
    """The lengths and joined bytes of a string tensor as stored."""
    entry = edit.entry(key)
    data = edit.data_bytes(entry.shard_id)
    if data is None:
        return None
    raw = data[entry.offset : entry.offset + entry.size]
    count = math.prod(d.size for d in entry.shape.dim)
    try:
        strings, _ = decode_strings(raw, count, edit.header.endianness == 1)
    except ValueError:
        return None
    return [len(s) for s in strings], b"".join(strings)


def _hostile_encoding(
    rng: random.Random, lengths: list[int], body: bytes, big: bool
) -> tuple[str, bytes, int, str]:
    """(what, encoding, entry crc, verdict) of a string tensor's bytes."""
    how = rng.choice(
        [
            "beyond",
            "overflow",
            "long_varint",
            "endless",
            "padded",
            "cut",
            "trailing",
            "bad_lengths_crc",
        ]
    )
    if how == "padded":  # non-minimal varints: the same strings, the same checksums
        good, crc = string_encoding(lengths, body, big)
        padded = b"".join(wire.varint(n, 1) for n in lengths)
        head = len(b"".join(wire.varint(n) for n in lengths))
        return how, padded + good[head:], crc, reference.SAME
    if how == "beyond":
        lengths = [*lengths[:-1], lengths[-1] + len(body) + 1]
    elif how == "overflow" and len(lengths) >= 2:
        lengths = [2**64 - 1, 2 + len(body), *lengths[2:]]
    elif how in ("long_varint", "endless"):
        good, crc = string_encoding(lengths, body, big)
        head = (b"\x80" * 10 + b"\x01") if how == "long_varint" else b"\xff" * (10 * len(lengths))
        rest = good[len(b"".join(wire.varint(n) for n in lengths)) :]
        return how, head + rest, crc, reference.FAIL
    elif how == "cut" and body:
        body = body[:-1]
        encoding, crc = string_encoding(lengths, body, big)
        return how, encoding, crc, reference.FAIL
    elif how == "trailing":
        encoding, crc = string_encoding(lengths, body, big)
        return how, encoding + b"x", crc, reference.FAIL
    elif how == "bad_lengths_crc":
        encoding, crc = string_encoding(lengths, body, big)
        head = len(b"".join(wire.varint(n) for n in lengths))
        flipped = encoding[:head] + bytes([encoding[head] ^ 1]) + encoding[head + 1 :]
        return how, flipped, crc, reference.FAIL
    else:
        return "unchanged", *string_encoding(lengths, body, big), reference.SAME
    encoding, crc = string_encoding(lengths, body, big)
    return how, encoding, crc, reference.FAIL


def strings(rng: random.Random, edit: BundleEdit) -> Mutant | None:
    """A string tensor re-encoded with hostile lengths (beyond the data, overflowing,
    varints too long or never ending) or layout, every checksum recomputed."""
    key = edit.pick(
        rng,
        lambda k, e: e.dtype == 7 and not e.slices and bool(math.prod(d.size for d in e.shape.dim)),
    )
    if key is None:
        return None
    parts = _string_parts(edit, key)
    if parts is None:
        return None
    what, encoding, crc, verdict = _hostile_encoding(rng, *parts, edit.header.endianness == 1)
    if not edit.point_to(key, encoding, crc):
        return None
    return _mutant(edit, verdict, _subjects(edit, key), f"string tensor {key!r}: {what}")


# -- partitioned tensors ---------------------------------------------------------------------


def _rekey(edit: BundleEdit, old: bytes, new: bytes) -> None:
    edit.entries = sorted(
        [(new if k == old else k, v) for k, v in edit.entries], key=lambda kv: kv[0]
    )


def partition(rng: random.Random, edit: BundleEdit) -> Mutant | None:
    """A partitioned tensor's slices moved (overlapping and leaving a hole, or out of
    bounds) with their entries re-keyed to match, listed twice, dropped, or listing a
    slice that has no entry."""
    key = edit.pick(rng, lambda k, e: bool(e.slices))
    if key is None:
        return None
    name = key.decode("utf-8", "surrogateescape")
    full = edit.entry(key)
    pieces = [TensorSlice.from_proto(s) for s in full.slices]
    how = rng.choice(["shift", "shift", "twice", "drop", "missing"])
    if how in ("shift", "twice", "drop"):
        i = rng.randrange(len(pieces))
        piece = pieces[i]
        if how == "shift":
            dims = [d for d, n in enumerate(piece.lengths) if n != -1]
            if not dims:
                return None
            d = rng.choice(dims)
            step = -1 if piece.starts[d] > 0 else 1
            starts = list(piece.starts)
            starts[d] += step
            moved = TensorSlice(tuple(starts), piece.lengths)
            _rekey(edit, encode_slice_key(name, piece), encode_slice_key(name, moved))
            pieces[i] = moved
            what = f"slice {piece} moved to {moved}"
        elif how == "twice":
            pieces.append(piece)
            what = f"slice {piece} listed twice"
        else:
            del pieces[i]
            what = f"slice {piece} not listed"
    else:
        extra = TensorSlice.full(len(full.shape.dim))
        pieces.append(extra)
        what = f"slice {extra} listed without an entry"
    del full.slices[:]
    for piece in pieces:
        piece.to_proto(full.slices.add())
    edit.set_entry(key, full)
    verdict = reference.tensor_verdict(edit, key)
    return _mutant(edit, verdict, _subjects(edit, key), f"tensor {key!r}: {what}")


def _one_row_slices(count: int, overlap: bool) -> list[tuple[int, int]]:
    """(start, length) of ``count`` one-row slices; with ``overlap``, the middle one is two
    rows long over its predecessor and its successor is missing (same total volume)."""
    middle = count // 2
    pieces = [(i, 1) for i in range(count)]
    if overlap:
        pieces[middle] = (middle - 1, 2)
        del pieces[middle + 1]
    return pieces


def many_slices(rng: random.Random, edit: BundleEdit) -> Mutant | None:
    """A new tensor of thousands of one-row slices (valid, or with one overlapping its
    neighbour and a hole left), to show that checking how slices tile a tensor scales."""
    count = rng.choice((2000, 2000, 10000))
    overlap = rng.random() < 0.5
    name = "fuzz/many_slices"
    rows = np.arange(count, dtype=np.float32)
    pieces = _one_row_slices(count, overlap)
    payloads = [rows[start : start + length].tobytes() for start, length in pieces]
    base = edit.append_data(0, b"".join(payloads))
    if base is None or any(k == name.encode() for k, _ in edit.entries):
        return None
    full = Entry(dtype=1)
    full.shape.dim.add().size = count
    added = []
    offset = base
    for (start, length), payload in zip(pieces, payloads):
        piece = TensorSlice((start,), (length,))
        piece.to_proto(full.slices.add())
        part = Entry(dtype=1, shard_id=0, offset=offset, size=len(payload))
        part.shape.dim.add().size = length
        part.crc32c = checksum.mask(crc32c.crc32c(payload))
        added.append((encode_slice_key(name, piece), part.SerializeToString()))
        offset += len(payload)
    added.append((name.encode(), full.SerializeToString()))
    edit.entries = sorted(edit.entries + added, key=lambda kv: kv[0])
    verdict = reference.FAIL if overlap else reference.CHANGED
    what = f"{count} one-row slices" + (", one overlapping, a hole left" if overlap else "")
    return _mutant(edit, verdict, frozenset({name}), f"new tensor {name!r}: {what}")


MUTATIONS: tuple[tuple[Mutation, int], ...] = (
    (entry_field, 10),
    (entry_wire, 6),
    (header, 3),
    (keys, 3),
    (strings, 4),
    (partition, 4),
    (many_slices, 1),
)
