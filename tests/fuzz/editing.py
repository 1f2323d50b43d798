"""Editing a bundle seed's files while keeping every checksum valid.

:class:`BundleEdit` holds a seed's index as a list of (key, value) entries, its header and
the data files, lets a mutation change entries (as BundleEntryProtos or raw bytes), append
bytes to a data file, or replace a string tensor's encoding, and encodes the result back
into files, the index with valid block checksums and the entries with valid tensor
checksums unless the mutation says otherwise.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import crc32c
import numpy as np

from tests.fuzz import tables
from tests.fuzz.seeds import Seed
from tfckpt import checksum
from tfckpt.bundle.naming import data_filename
from tfckpt.bundle.strings import encode_string_head
from tfckpt.proto import tensor_bundle_pb2 as tb
from tfckpt.tensor_slice import decode_slice_key

Entry = tb.BundleEntryProto


@dataclass
class BundleEdit:
    """A seed's bundle, decoded for editing (see the module)."""

    seed: Seed
    index_name: str
    header: tb.BundleHeaderProto
    entries: list[tuple[bytes, bytes]]  # the index without its header, in stored order
    data: dict[int, bytearray] = field(default_factory=dict)  # edited data files by shard
    layout: tables.Layout = field(default_factory=tables.Layout)

    @classmethod
    def of(cls, seed: Seed) -> BundleEdit | None:
        """The seed's bundle, or None when it has none (or its header does not parse)."""
        index = seed.index_file()
        if index is None:
            return None
        entries = tables.decode_table(seed.files[index])
        if not entries or entries[0][0] != b"":
            return None
        header = tb.BundleHeaderProto.FromString(entries[0][1])
        return cls(seed, index, header, entries[1:])

    # -- reading -------------------------------------------------------------------------

    def key_list(self) -> list[bytes]:
        return [key for key, _ in self.entries]

    def position(self, key: bytes) -> int:
        return self.key_list().index(key)

    def entry(self, key: bytes) -> Entry:
        return Entry.FromString(self.entries[self.position(key)][1])

    def parsed(self) -> list[tuple[bytes, Entry]]:
        """The entries that parse as BundleEntryProtos (all of them, in a valid seed)."""
        out = []
        for key, value in self.entries:
            try:
                out.append((key, Entry.FromString(value)))
            except Exception:  # protobuf's DecodeError
                continue
        return out

    def data_name(self, shard: int) -> str:
        return data_filename(self.seed.prefix, shard, self.header.num_shards)

    def data_bytes(self, shard: int) -> bytes | None:
        if shard in self.data:
            return bytes(self.data[shard])
        return self.seed.files.get(self.data_name(shard))

    @staticmethod
    def owner(key: bytes) -> str:
        """The tensor an entry belongs to: its own name, or a slice's full tensor."""
        try:
            name, _ = decode_slice_key(key)
        except ValueError:
            return key.decode("utf-8", "surrogateescape")
        return name

    def pick(
        self, rng: random.Random, where: Callable[[bytes, Entry], bool] = lambda k, e: True
    ) -> bytes | None:
        """A random key whose entry satisfies ``where(key, entry)``, or None."""
        candidates = [key for key, entry in self.parsed() if where(key, entry)]
        return rng.choice(candidates) if candidates else None

    # -- writing -------------------------------------------------------------------------

    def set_entry(self, key: bytes, entry: Entry | bytes) -> None:
        value = entry if isinstance(entry, bytes) else entry.SerializeToString()
        self.entries[self.position(key)] = (key, value)

    def append_data(self, shard: int, payload: bytes) -> int | None:
        """Appends ``payload`` to a data file; returns its offset (None: no such file)."""
        current = self.data_bytes(shard)
        if current is None:
            return None
        buffer = self.data.setdefault(shard, bytearray(current))
        offset = len(buffer)
        buffer += payload
        return offset

    def point_to(self, key: bytes, payload: bytes, crc: int | None = None) -> bool:
        """Makes ``key``'s entry hold ``payload``, appended to its data file, with the
        unmasked ``crc`` (default: the CRC32C of the payload)."""
        entry = self.entry(key)
        offset = self.append_data(entry.shard_id, payload)
        if offset is None:
            return False
        entry.offset, entry.size = offset, len(payload)
        entry.crc32c = checksum.mask(crc32c.crc32c(payload) if crc is None else crc)
        self.set_entry(key, entry)
        return True

    def files(self, *, with_header: bytes | None = None) -> dict[str, bytes | None]:
        """The edited files: the index (with the header, or ``with_header`` raw bytes) and
        every data file changed."""
        header = self.header.SerializeToString() if with_header is None else with_header
        index = tables.encode_table([(b"", header), *self.entries], self.layout)
        out: dict[str, bytes | None] = {self.index_name: index}
        for shard, data in self.data.items():
            out[self.data_name(shard)] = bytes(data)
        return out


def string_encoding(lengths: list[int], body: bytes, big_endian: bool = False) -> tuple[bytes, int]:
    """A string tensor's bytes for these (declared) lengths and body, with the lengths'
    checksum TensorFlow would store, and the entry CRC TensorFlow would compute."""
    pieces, crc = encode_string_head(np.array(lengths, np.uint64), big_endian)
    return b"".join(pieces) + body, crc32c.crc32c(body, crc)


def is_scalar_string(entry: Entry) -> bool:
    return entry.dtype == 7 and not entry.shape.dim and not entry.slices
