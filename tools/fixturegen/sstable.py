"""A minimal SSTable (LevelDB table) walker, copied from the corpus' make_manifest.py
(fixtures/corpus/make_manifest.py): only for container facts TF's public API does not expose.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

TABLE_MAGIC = 0xDB4775248B80FB57


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, pos


def _snappy_uncompress(buf: bytes) -> bytes:
    expected, pos = _varint(buf, 0)
    out = bytearray()
    while pos < len(buf):
        tag = buf[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # literal
            length = tag >> 2
            if length >= 60:
                extra = length - 59
                length = int.from_bytes(buf[pos : pos + extra], "little")
                pos += extra
            length += 1
            out += buf[pos : pos + length]
            pos += length
            continue
        if kind == 1:
            length = ((tag >> 2) & 7) + 4
            offset = ((tag >> 5) << 8) | buf[pos]
            pos += 1
        elif kind == 2:
            length = (tag >> 2) + 1
            offset = int.from_bytes(buf[pos : pos + 2], "little")
            pos += 2
        else:
            length = (tag >> 2) + 1
            offset = int.from_bytes(buf[pos : pos + 4], "little")
            pos += 4
        for _ in range(length):
            out.append(out[-offset])
    if len(out) != expected:
        raise ValueError("snappy: length mismatch")
    return bytes(out)


def _block_records(block: bytes) -> Iterator[tuple[bytes, bytes]]:
    num_restarts = struct.unpack("<I", block[-4:])[0]
    limit = len(block) - 4 - 4 * num_restarts
    pos, key = 0, b""
    while pos < limit:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        vlen, pos = _varint(block, pos)
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        yield key, block[pos : pos + vlen]
        pos += vlen


def sstable_info(path: str) -> dict[str, Any]:
    """Returns block count, block compression and all records of a table."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 48:
        raise ValueError("too short to be an SSTable")
    footer = data[-48:]
    if struct.unpack("<Q", footer[-8:])[0] != TABLE_MAGIC:
        raise ValueError("bad SSTable magic")
    pos = 0
    _, pos = _varint(footer, pos)  # metaindex offset
    _, pos = _varint(footer, pos)  # metaindex size
    idx_off, pos = _varint(footer, pos)
    idx_size, pos = _varint(footer, pos)

    def read_block(off, size, kinds):
        raw, ctype = data[off : off + size], data[off + size]
        kinds.add({0: "none", 1: "snappy"}.get(ctype, f"type{ctype}"))
        return _snappy_uncompress(raw) if ctype == 1 else raw

    index_kinds: set[str] = set()
    data_kinds: set[str] = set()
    records: list[tuple[bytes, bytes]] = []
    blocks = 0
    for _, handle in _block_records(read_block(idx_off, idx_size, index_kinds)):
        off, p = _varint(handle, 0)
        size, _ = _varint(handle, p)
        blocks += 1
        records.extend(_block_records(read_block(off, size, data_kinds)))
    return {
        "blocks": blocks,
        "index_block_compression": sorted(index_kinds),
        "data_block_compression": sorted(data_kinds),
        "records": records,
    }


def is_sstable(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            if f.tell() < 48:
                return False
            f.seek(-8, 2)
            return struct.unpack("<Q", f.read(8))[0] == TABLE_MAGIC
    except OSError:
        return False
