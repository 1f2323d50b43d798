"""Corrupt, truncated and hand-crafted checkpoints.

Every outcome must be a tfckpt.CheckpointError naming the file (and the tensor, where one is
concerned) -- never a bare struct.error/IndexError/ValueError/DecodeError/KeyError -- or,
where reading succeeds despite the damage, exactly the original values.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tracemalloc
from pathlib import Path

import crc32c
import ml_dtypes
import numpy as np
import pytest

import tfckpt
from tests.conftest import CORPUS
from tfckpt.bundle.reader import BundleReader
from tfckpt.errors import (
    CheckpointError,
    CheckpointNotFoundError,
    DataLossError,
    UnsupportedError,
)
from tfckpt.proto import tensor_bundle_pb2 as tb
from tfckpt.table.reader import TableReader
from tfckpt.table.writer import TableWriter
from tfckpt.tensor_slice import TensorSlice, encode_slice_key

T2T = CORPUS / "tensorflow-tensor2tensor/tensor2tensor/test_data/transformer_test_ckpt"


def _mask(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _data_path(prefix, shard=0, num_shards=1) -> str:
    return f"{prefix}.data-{shard:05d}-of-{num_shards:05d}"


def _read_all(prefix, *, verify_checksums=True) -> dict:
    with tfckpt.load_checkpoint(prefix, verify_checksums=verify_checksums) as reader:
        return dict(reader.items())


def _same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype == object or b.dtype == object:
        return a.shape == b.shape and a.tolist() == b.tolist()
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _all_same(got: dict, expected: dict) -> bool:
    return got.keys() == expected.keys() and all(_same(got[k], expected[k]) for k in expected)


# -- a small two-shard checkpoint ----------------------------------------------------------

SHARD_0 = {
    "f32": np.arange(6, dtype=np.float32).reshape(2, 3),
    "strings": np.array([b"ab", b"", b"xyz"], dtype=object),
    "i64": np.int64(-5),
}
SHARD_1 = {
    "bf16": np.array([1.5, -2.0], ml_dtypes.bfloat16),
    "c64": np.array([1 + 2j], np.complex64),
    "str0": b"hello",
    "u8": np.arange(5, dtype=np.uint8),
}


def _write_index(path, entries: dict, header: bytes | None) -> None:
    with open(path, "wb") as f:
        table = TableWriter(f)
        if header is not None:
            table.add(b"", header)
        for key in sorted(entries):
            value = entries[key]
            table.add(key, value if isinstance(value, bytes) else value.SerializeToString())
        table.finish()


def _header(num_shards=1, **version) -> bytes:
    header = tb.BundleHeaderProto(num_shards=num_shards)
    header.version.producer = version.pop("producer", 1)
    for field, value in version.items():
        if field == "bad_consumers":
            header.version.bad_consumers.extend(value)
        else:
            setattr(header.version, field, value)
    return header.SerializeToString()


@pytest.fixture
def two_shards(tmp_path):
    """A 2-shard checkpoint made by merging two bundles' index entries by hand.

    Returns (prefix, values, layout) with layout {name: (shard, offset, size)}.
    """
    parts = tmp_path / "parts"
    tfckpt.save_tensors(parts / "a", SHARD_0)
    tfckpt.save_tensors(parts / "b", SHARD_1)
    entries = {}
    layout = {}
    for part, shard in (("a", 0), ("b", 1)):
        for key, value in TableReader.open(parts / f"{part}.index").items():
            if key == b"":
                continue
            entry = tb.BundleEntryProto.FromString(value)
            entry.shard_id = shard
            entries[key] = entry
            layout[key.decode()] = (shard, entry.offset, entry.size)
    prefix = tmp_path / "ckpt" / "model"
    prefix.parent.mkdir()
    _write_index(f"{prefix}.index", entries, _header(num_shards=2))
    os.rename(_data_path(parts / "a"), _data_path(prefix, 0, 2))
    os.rename(_data_path(parts / "b"), _data_path(prefix, 1, 2))
    values = {**SHARD_0, **SHARD_1}
    return str(prefix), values, layout


def test_the_two_shard_checkpoint_reads(two_shards):
    prefix, values, layout = two_shards
    with BundleReader(prefix) as bundle:
        assert bundle.num_shards == 2
        assert {n: bundle.entry(n).shard_id for n in bundle.names()} == {
            n: s for n, (s, _, _) in layout.items()
        }
    assert _all_same(_read_all(prefix), values)
    assert os.path.getsize(f"{prefix}.index") < 400  # small enough to flip every byte


# -- truncation ----------------------------------------------------------------------------


def _assert_names(exc: BaseException, *paths) -> None:
    assert isinstance(exc, CheckpointError), repr(exc)
    assert any(str(p) in str(exc) for p in paths), (str(exc), paths)


def test_truncated_index_at_every_length(two_shards):
    prefix, _, _ = two_shards
    index = Path(f"{prefix}.index")
    original = index.read_bytes()
    for n in range(len(original)):
        index.write_bytes(original[:n])
        with pytest.raises(CheckpointError) as info:
            _read_all(prefix)
        assert isinstance(info.value, DataLossError), (n, info.value)
        _assert_names(info.value, index)


def test_truncated_corpus_index(tmp_path):
    original = (T2T / "model.ckpt-1.index").read_bytes()
    index = tmp_path / "model.ckpt-1.index"
    lengths = sorted({*range(0, len(original), 37), *range(len(original) - 60, len(original))})
    for n in lengths:
        index.write_bytes(original[:n])
        with pytest.raises(DataLossError) as info:
            tfckpt.load_checkpoint(tmp_path / "model.ckpt-1")
        _assert_names(info.value, index)


def test_truncated_data_files_at_every_length(two_shards):
    prefix, values, layout = two_shards
    for shard in (0, 1):
        path = Path(_data_path(prefix, shard, 2))
        original = path.read_bytes()
        for n in range(len(original)):
            path.write_bytes(original[:n])
            with tfckpt.load_checkpoint(prefix) as reader:
                for name, (s, offset, size) in layout.items():
                    if s == shard and offset + size > n:
                        with pytest.raises(DataLossError) as info:
                            reader.get_tensor(name)
                        assert info.value.tensor == name
                        _assert_names(info.value, path)
                        assert name in str(info.value)
                    else:
                        assert _same(reader.get_tensor(name), values[name])
        path.write_bytes(original)


# -- flipped bytes -------------------------------------------------------------------------


@pytest.mark.parametrize("flip", [0x01, 0x80, 0xFF])
def test_every_index_byte_flipped(two_shards, flip):
    prefix, values, _ = two_shards
    index = Path(f"{prefix}.index")
    original = index.read_bytes()
    harmless = 0
    for i in range(len(original)):
        damaged = bytearray(original)
        damaged[i] ^= flip
        index.write_bytes(bytes(damaged))
        try:
            got = _read_all(prefix)
        except CheckpointError as exc:
            _assert_names(exc, index, prefix)
        else:
            # e.g. the flip hit the unread metaindex block or the footer's padding
            assert _all_same(got, values), f"byte {i} flipped: different values"
            harmless += 1
    assert harmless < len(original) // 2


def test_every_index_byte_flipped_without_checksums(two_shards):
    # Without verification a flip may change values; it must still never escape as a
    # non-tfckpt exception.
    prefix, _, _ = two_shards
    index = Path(f"{prefix}.index")
    original = index.read_bytes()
    for i in range(len(original)):
        for flip in (0x01, 0xFF):
            damaged = bytearray(original)
            damaged[i] ^= flip
            index.write_bytes(bytes(damaged))
            try:
                _read_all(prefix, verify_checksums=False)
            except CheckpointError:
                pass


@pytest.mark.parametrize("flip", [0x01, 0x80, 0xFF])
def test_every_data_byte_flipped(two_shards, flip):
    prefix, values, layout = two_shards
    for shard in (0, 1):
        path = Path(_data_path(prefix, shard, 2))
        original = path.read_bytes()
        for i in range(len(original)):
            (hit,) = [
                n for n, (s, off, size) in layout.items() if s == shard and off <= i < off + size
            ]  # no padding: every byte belongs to exactly one tensor
            damaged = bytearray(original)
            damaged[i] ^= flip
            path.write_bytes(bytes(damaged))
            with tfckpt.load_checkpoint(prefix) as reader:
                for name in layout:
                    if name == hit:
                        with pytest.raises(DataLossError) as info:
                            reader.get_tensor(name)
                        assert info.value.tensor == name, (i, info.value)
                        assert name in str(info.value)
                        _assert_names(info.value, path)
                        with pytest.raises(DataLossError):
                            reader.get_tensor(name, copy=False)
                    else:
                        assert _same(reader.get_tensor(name), values[name])
        path.write_bytes(original)


def test_every_byte_flipped_in_a_corpus_data_shard(tmp_path):
    # The tensor2tensor checkpoint has 2 data shards; its first is 24 bytes.
    for name in ("model.ckpt-1.index", "model.ckpt-1.data-00000-of-00002"):
        shutil.copy(T2T / name, tmp_path / name)
    os.symlink(
        T2T / "model.ckpt-1.data-00001-of-00002", tmp_path / "model.ckpt-1.data-00001-of-00002"
    )
    prefix = tmp_path / "model.ckpt-1"
    with BundleReader(prefix) as bundle:
        layout = {
            n: (bundle.entry(n).offset, bundle.entry(n).size)
            for n in bundle.names()
            if bundle.entry(n).shard_id == 0 and not bundle.slices(n)
        }
        values = {n: bundle.read(n) for n in layout}
    assert layout and sum(size for _, size in layout.values()) == 24
    path = tmp_path / "model.ckpt-1.data-00000-of-00002"
    original = path.read_bytes()
    for i in range(len(original)):
        damaged = bytearray(original)
        damaged[i] ^= 0x10
        path.write_bytes(bytes(damaged))
        with tfckpt.load_checkpoint(prefix) as reader:
            for name, (offset, size) in layout.items():
                if offset <= i < offset + size:
                    with pytest.raises(DataLossError) as info:
                        reader.get_tensor(name)
                    assert info.value.tensor == name
                    _assert_names(info.value, path)
                else:
                    assert _same(reader.get_tensor(name), values[name])


# -- specific damage -----------------------------------------------------------------------


def test_bad_magic(two_shards):
    prefix, _, _ = two_shards
    index = Path(f"{prefix}.index")
    data = index.read_bytes()
    index.write_bytes(data[:-8] + b"NOTMAGIC")
    with pytest.raises(DataLossError, match="magic") as info:
        tfckpt.load_checkpoint(prefix)
    _assert_names(info.value, index)


def test_not_a_table_at_all(tmp_path):
    (tmp_path / "m.index").write_bytes(b"model_checkpoint_path: 'x'\n" * 4)
    with pytest.raises(DataLossError) as info:
        tfckpt.load_checkpoint(tmp_path / "m")
    _assert_names(info.value, tmp_path / "m.index")


@pytest.mark.parametrize(
    "damage",
    ["bad_magic", "truncated", "block_checksum", "empty_file"],
)
def test_table_level_errors_carry_the_path_attribute(two_shards, damage):
    # errors.py: "path is the file (or checkpoint prefix) concerned ... when known".
    prefix, _, _ = two_shards
    index = Path(f"{prefix}.index")
    data = bytearray(index.read_bytes())
    if damage == "bad_magic":
        data[-1] ^= 0xFF
    elif damage == "truncated":
        del data[-60:]
    elif damage == "block_checksum":
        data[3] ^= 0x01
    else:
        data = bytearray()
    index.write_bytes(bytes(data))
    with pytest.raises(DataLossError) as info:
        tfckpt.load_checkpoint(prefix)
    assert info.value.path == str(index)


def test_missing_data_shard(two_shards):
    prefix, values, layout = two_shards
    missing = _data_path(prefix, 1, 2)
    os.remove(missing)
    with tfckpt.load_checkpoint(prefix) as reader:
        for name, (shard, _, _) in layout.items():
            if shard == 0:
                assert _same(reader.get_tensor(name), values[name])
                continue
            with pytest.raises(CheckpointNotFoundError) as info:
                reader.get_tensor(name)
            exc = info.value
            assert isinstance(exc, FileNotFoundError)
            assert exc.tensor == name
            assert exc.path == missing
            assert missing in str(exc)
            assert repr(name) in str(exc)


def test_empty_data_file(two_shards):
    prefix, _, layout = two_shards
    path = _data_path(prefix, 0, 2)
    Path(path).write_bytes(b"")
    with tfckpt.load_checkpoint(prefix) as reader:
        for name, (shard, _, size) in layout.items():
            if shard == 0 and size:
                with pytest.raises(DataLossError) as info:
                    reader.get_tensor(name, copy=False)
                assert info.value.tensor == name and path in str(info.value)


# -- hand-crafted indexes -----------------------------------------------------------------


def _entry(dtype=1, shape=(2,), offset=0, size=8, crc=None, data=b"", shard_id=0):
    entry = tb.BundleEntryProto(dtype=dtype, shard_id=shard_id, offset=offset, size=size)
    entry.shape.SetInParent()
    for d in shape:
        entry.shape.dim.add().size = d
    entry.crc32c = _mask(crc32c.crc32c(data[offset : offset + size])) if crc is None else crc
    return entry


GOOD = np.array([1.0, 2.0], np.float32).tobytes()


def _craft(tmp_path, entries, *, header=None, data=GOOD, num_shards=1, name="c"):
    prefix = tmp_path / name
    if header is None:
        header = _header(num_shards=num_shards)
    _write_index(f"{prefix}.index", entries, header)
    for shard in range(num_shards):
        Path(_data_path(prefix, shard, num_shards)).write_bytes(data)
    return prefix


def test_crafted_baseline(tmp_path):
    prefix = _craft(tmp_path, {b"ok": _entry(data=GOOD)})
    assert tfckpt.load_checkpoint(prefix)["ok"].tolist() == [1.0, 2.0]


def test_unknown_dtype_enum(tmp_path):
    prefix = _craft(tmp_path, {b"ok": _entry(data=GOOD), b"future": _entry(dtype=99, data=GOOD)})
    reader = tfckpt.load_checkpoint(prefix)
    assert reader.keys() == ["future", "ok"]
    assert reader.get_variable_to_shape_map()["future"] == [2]
    assert reader["ok"].tolist() == [1.0, 2.0]
    with pytest.raises(UnsupportedError) as info:
        reader.get_tensor("future")
    assert info.value.tensor == "future"
    assert "'future'" in str(info.value) and "99" in str(info.value)
    with pytest.raises(UnsupportedError) as info:
        reader.get_variable_to_dtype_map()
    assert info.value.tensor == "future"


@pytest.mark.parametrize(("enum", "kind"), [(20, "resource"), (21, "variant")])
def test_resource_and_variant_entries(tmp_path, enum, kind):
    prefix = _craft(
        tmp_path, {b"ok": _entry(data=GOOD), b"handle": _entry(dtype=enum, shape=(), data=GOOD)}
    )
    reader = tfckpt.load_checkpoint(prefix)
    assert reader.get_variable_to_dtype_map()["handle"].name == kind
    with pytest.raises(UnsupportedError) as info:
        reader.get_tensor("handle")
    assert info.value.tensor == "handle"
    assert kind in str(info.value) and "'handle'" in str(info.value)
    assert isinstance(info.value, NotImplementedError)
    assert reader["ok"].tolist() == [1.0, 2.0]


@pytest.mark.parametrize(
    ("offset", "size", "shape"),
    [(0, 12, (3,)), (4, 8, (2,)), (100, 4, (1,)), (2**40, 8, (2,)), (2**63 - 1, 8, (2,))],
)
def test_entry_beyond_the_end_of_the_data_file(tmp_path, offset, size, shape):
    prefix = _craft(tmp_path, {b"x": _entry(shape=shape, offset=offset, size=size, crc=0)})
    with pytest.raises(DataLossError) as info:
        tfckpt.load_checkpoint(prefix)["x"]
    assert info.value.tensor == "x"
    _assert_names(info.value, _data_path(prefix))


def test_entry_size_does_not_match_shape(tmp_path):
    prefix = _craft(tmp_path, {b"x": _entry(shape=(3,), size=8, data=GOOD)})
    with pytest.raises(DataLossError, match="12") as info:
        tfckpt.load_checkpoint(prefix)["x"]
    assert info.value.tensor == "x"


def test_entry_checksum_mismatch_and_verify_off(tmp_path):
    prefix = _craft(tmp_path, {b"x": _entry(crc=_mask(12345), data=GOOD)})
    with pytest.raises(DataLossError, match="checksum") as info:
        tfckpt.load_checkpoint(prefix)["x"]
    assert info.value.tensor == "x"
    unverified = tfckpt.load_checkpoint(prefix, verify_checksums=False)
    assert unverified["x"].tolist() == [1.0, 2.0]


def test_entry_points_to_a_shard_that_does_not_exist(tmp_path):
    prefix = _craft(tmp_path, {b"x": _entry(shard_id=3, data=GOOD)})
    with pytest.raises(DataLossError) as info:
        tfckpt.load_checkpoint(prefix)["x"]
    assert info.value.tensor == "x" and "3" in str(info.value)


@pytest.mark.parametrize("raw", [b"\x0f", b"\x0a\xff\xff", b"\x12\x05\x0a\x01"])
def test_entry_is_not_a_proto(tmp_path, raw):
    prefix = _craft(tmp_path, {b"ok": _entry(data=GOOD), b"junk": raw})
    reader = tfckpt.load_checkpoint(prefix)
    assert reader["ok"].tolist() == [1.0, 2.0]
    with pytest.raises(DataLossError) as info:
        reader.get_tensor("junk")
    assert info.value.tensor == "junk"
    _assert_names(info.value, f"{prefix}.index")


def test_negative_dimension(tmp_path):
    entry = _entry(data=GOOD)
    entry.shape.dim[0].size = -2
    prefix = _craft(tmp_path, {b"x": entry})
    reader = tfckpt.load_checkpoint(prefix)
    with pytest.raises(DataLossError) as info:
        reader.get_tensor("x")
    assert info.value.tensor == "x"
    with pytest.raises(DataLossError):
        reader.get_variable_to_shape_map()


def test_unknown_rank(tmp_path):
    entry = _entry(data=GOOD)
    entry.shape.unknown_rank = True
    prefix = _craft(tmp_path, {b"x": entry})
    with pytest.raises(DataLossError):
        tfckpt.load_checkpoint(prefix)["x"]


@pytest.mark.parametrize("dtype", [1, 7])
def test_shape_whose_element_count_overflows(tmp_path, dtype):
    # 2**32 * 2**32 elements: int64 arithmetic wraps to 0, matching an empty entry.
    entry = _entry(dtype=dtype, shape=(2**32, 2**32), size=0, crc=_mask(0))
    prefix = _craft(tmp_path, {b"huge": entry})
    with pytest.raises(DataLossError) as info:
        tfckpt.load_checkpoint(prefix)["huge"]
    assert info.value.tensor == "huge"


def test_string_tensor_with_corrupt_layout(tmp_path):
    data = b"\x03\x00" + b"\x00\x00\x00\x00" + b"abc"  # bad lengths checksum
    prefix = _craft(tmp_path, {b"s": _entry(dtype=7, shape=(2,), size=len(data), crc=0)},
                    data=data)  # fmt: skip
    with pytest.raises(DataLossError) as info:
        tfckpt.load_checkpoint(prefix)["s"]
    assert info.value.tensor == "s"


# -- headers -------------------------------------------------------------------------------


def _ok_entries():
    return {b"ok": _entry(data=GOOD)}


@pytest.mark.parametrize(
    "version",
    [{"min_consumer": 2}, {"bad_consumers": [1]}, {"bad_consumers": [0, 1, 5]}, {"producer": -1}],
    ids=["min_consumer_2", "bad_consumer_1", "bad_consumers_list", "producer_negative"],
)
def test_header_versions_this_reader_must_refuse(tmp_path, version):
    prefix = _craft(tmp_path, _ok_entries(), header=_header(**version))
    with pytest.raises(UnsupportedError) as info:
        tfckpt.load_checkpoint(prefix)
    _assert_names(info.value, f"{prefix}.index")
    assert info.value.path == f"{prefix}.index"


@pytest.mark.parametrize(
    "version", [{"min_consumer": 1}, {"bad_consumers": [0, 2]}, {"producer": 7}]
)
def test_header_versions_this_reader_accepts(tmp_path, version):
    prefix = _craft(tmp_path, _ok_entries(), header=_header(**version))
    assert tfckpt.load_checkpoint(prefix)["ok"].tolist() == [1.0, 2.0]


def test_header_missing(tmp_path):
    prefix = _craft(tmp_path, _ok_entries())
    _write_index(f"{prefix}.index", _ok_entries(), None)  # the same entries, no header
    with pytest.raises(DataLossError, match="header") as info:
        tfckpt.load_checkpoint(prefix)
    _assert_names(info.value, f"{prefix}.index")


@pytest.mark.parametrize("raw", [b"\x0f", b"\x08"])
def test_header_is_not_a_proto(tmp_path, raw):
    prefix = _craft(tmp_path, _ok_entries(), header=raw)
    with pytest.raises(DataLossError, match="header") as info:
        tfckpt.load_checkpoint(prefix)
    _assert_names(info.value, f"{prefix}.index")


def test_header_unknown_endianness(tmp_path):
    header = tb.BundleHeaderProto(num_shards=1, endianness=7)
    header.version.producer = 1
    prefix = _craft(tmp_path, _ok_entries(), header=header.SerializeToString())
    with pytest.raises(DataLossError, match="endianness"):
        tfckpt.load_checkpoint(prefix)


def test_header_zero_shards_with_entries(tmp_path):
    prefix = _craft(tmp_path, _ok_entries(), header=_header(num_shards=0))
    with pytest.raises(DataLossError):
        tfckpt.load_checkpoint(prefix)


# -- partitioned tensors -------------------------------------------------------------------


def _partitioned(tmp_path, slices, *, full_shape=(4,), listed=None, name="p"):
    """A float64 tensor whose slices (text, values) are stored; ``listed`` overrides which
    slices the full entry lists."""
    data = bytearray()
    entries = {}
    full = tb.BundleEntryProto(dtype=2)
    for d in full_shape:
        full.shape.dim.add().size = d
    for text in listed if listed is not None else [t for t, _ in slices]:
        TensorSlice.parse(text).to_proto(full.slices.add())
    entries[b"x"] = full
    for text, values in slices:
        raw = np.asarray(values, np.float64).tobytes()
        entry = _entry(dtype=2, shape=np.shape(values), offset=len(data), size=len(raw),
                       crc=_mask(crc32c.crc32c(raw)))  # fmt: skip
        entries[encode_slice_key("x", TensorSlice.parse(text))] = entry
        data += raw
    return _craft(tmp_path, entries, data=bytes(data), name=name)


def test_crafted_partitioned_baseline(tmp_path):
    prefix = _partitioned(tmp_path, [("0,2", [1, 2]), ("2,2", [3, 4])])
    reader = tfckpt.load_checkpoint(prefix)
    assert reader.keys() == ["x"]
    assert reader["x"].tolist() == [1, 2, 3, 4]


def test_slice_entry_missing(tmp_path):
    prefix = _partitioned(tmp_path, [("0,2", [1, 2])], listed=["0,2", "2,2"])
    with pytest.raises(DataLossError, match="missing") as info:
        tfckpt.load_checkpoint(prefix)["x"]
    assert info.value.tensor == "x"


def test_slices_overlap(tmp_path):
    prefix = _partitioned(tmp_path, [("0,3", [1, 2, 3]), ("2,2", [3, 4])])
    with pytest.raises(DataLossError, match="overlap") as info:
        tfckpt.load_checkpoint(prefix)["x"]
    assert info.value.tensor == "x"


def test_slice_beyond_the_full_shape(tmp_path):
    prefix = _partitioned(tmp_path, [("0,2", [1, 2]), ("2,3", [3, 4, 5])])
    with pytest.raises(DataLossError) as info:
        tfckpt.load_checkpoint(prefix)["x"]
    assert info.value.tensor == "x"


def test_slice_stored_with_the_wrong_shape(tmp_path):
    prefix = _partitioned(tmp_path, [("0,2", [1, 2]), ("2,2", [[3, 4]])])
    with pytest.raises(DataLossError, match="shape") as info:
        tfckpt.load_checkpoint(prefix)["x"]
    assert info.value.tensor == "x"


def test_unlisted_slice_key_stays_visible(tmp_path):
    # As TensorFlow's CheckpointReader: only slices the full entry lists are hidden.
    prefix = _partitioned(tmp_path, [("0,2", [1, 2]), ("2,2", [3, 4])], listed=["0,2"])
    reader = tfckpt.load_checkpoint(prefix)
    stray = encode_slice_key("x", TensorSlice.parse("2,2")).decode("utf-8", "surrogateescape")
    assert reader.keys() == [stray, "x"]
    assert reader[stray].tolist() == [3, 4]
    with pytest.raises(DataLossError, match="cover"):
        reader["x"]


def test_slice_with_a_negative_extent_in_the_full_entry(tmp_path):
    prefix = _partitioned(tmp_path, [("0,2", [1, 2]), ("2,2", [3, 4])])
    entries = dict(TableReader.open(f"{prefix}.index").items())
    full = tb.BundleEntryProto.FromString(entries[b"x"])
    full.slices[1].extent[0].start = -2  # not a valid TensorSliceProto
    entries[b"x"] = full.SerializeToString()
    del entries[b""]
    _write_index(f"{prefix}.index", entries, _header())
    reader = tfckpt.load_checkpoint(prefix)
    with pytest.raises(DataLossError) as info:
        reader.get_tensor("x")
    assert info.value.tensor == "x"
    _assert_names(info.value, f"{prefix}.index")


# -- a crafted index cannot make tfckpt allocate what the data files do not hold -------------


def _huge_partitioned(tmp_path, *, dtype, full_shape, slice_size, name="huge"):
    """One tensor of ``full_shape`` listed as a single slice covering it all, whose slice
    entry claims the slice's shape but holds only ``slice_size`` bytes of the data file."""
    full = tb.BundleEntryProto(dtype=dtype)
    for d in full_shape:
        full.shape.dim.add().size = d
    whole = TensorSlice.full(len(full_shape))
    whole.to_proto(full.slices.add())
    part = _entry(dtype=dtype, shape=full_shape, offset=0, size=slice_size, data=GOOD)
    return _craft(tmp_path, {b"x": full, encode_slice_key("x", whole): part}, name=name)


@contextlib.contextmanager
def _traced_peak():
    """Yields a list that holds, after the block, the peak memory traced while it ran
    (NumPy reports its buffers to tracemalloc)."""
    peak: list[int] = []
    tracemalloc.start()
    try:
        yield peak
    finally:
        peak.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()


@pytest.mark.parametrize("read", ["get_tensor", "load_tensors", "get_slice", "copy=False"])
def test_slice_entry_smaller_than_its_shape_is_refused_before_allocating(tmp_path, read):
    """Pins the slice-size check of the entry table's layout: a 16 TiB float64 tensor whose
    only slice entry holds 8 bytes is a DataLossError naming the tensor, raised before the
    tensor (or the slice) is allocated, on every reading path."""
    prefix = _huge_partitioned(tmp_path, dtype=2, full_shape=(1 << 21, 1 << 20), slice_size=8)
    reader = tfckpt.load_checkpoint(prefix)
    calls = {
        "get_tensor": lambda: reader.get_tensor("x"),
        "load_tensors": lambda: tfckpt.load_tensors(prefix),
        "get_slice": lambda: reader.get_slice("x")[0, :4],
        "copy=False": lambda: reader.get_tensor("x", copy=False),
    }
    with _traced_peak() as peak, pytest.raises(DataLossError) as info:
        calls[read]()
    assert info.value.tensor == "x"
    assert "needs" in str(info.value) and "8 bytes" in str(info.value)
    assert peak[0] < 16 << 20, peak


def test_partitioned_strings_longer_than_their_entry_are_refused_before_allocating(tmp_path):
    """A billion-element string tensor whose one slice entry holds 8 bytes: every string
    takes at least one byte, so the entry cannot hold it; refused without allocating the
    object array."""
    prefix = _huge_partitioned(tmp_path, dtype=7, full_shape=(10**9,), slice_size=8)
    reader = tfckpt.load_checkpoint(prefix)
    with _traced_peak() as peak, pytest.raises(DataLossError) as info:
        reader.get_tensor("x")
    assert info.value.tensor == "x" and "too small" in str(info.value)
    assert peak[0] < 16 << 20, peak


# -- shapes TensorFlow accepts but NumPy cannot hold ------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "shape", "size"),
    [(1, (1,) * 65, 4), (7, (1,) * 65, 8), (1, (0, 2**62, 2**62), 0), (7, (0, 2**62, 2**62), 0)],
    ids=["rank65", "rank65_strings", "zero_elements_huge_dims", "zero_strings_huge_dims"],
)
@pytest.mark.parametrize("read", ["get_tensor", "copy=False", "load_tensors", "get_slice"])
def test_shapes_numpy_cannot_hold_are_unsupported(tmp_path, dtype, shape, size, read):
    """More than 64 dimensions, or a zero dimension beside dimensions whose product
    overflows: an UnsupportedError naming the tensor on every read path, not NumPy's
    ValueError; listing the checkpoint still works."""
    prefix = _craft(tmp_path, {b"x": _entry(dtype=dtype, shape=shape, size=size, data=GOOD)})
    reader = tfckpt.load_checkpoint(prefix)
    assert reader.get_variable_to_shape_map() == {"x": list(shape)}
    calls = {
        "get_tensor": lambda: reader.get_tensor("x"),
        "copy=False": lambda: reader.get_tensor("x", copy=False),
        "load_tensors": lambda: reader.get_tensors(),
        "get_slice": lambda: reader.get_slice("x")[...],
    }
    with pytest.raises(UnsupportedError) as info:
        calls[read]()
    assert info.value.tensor == "x"


def test_debug_string_keeps_keys_that_are_not_utf8(tmp_path):
    """A key that is not valid UTF-8 is printed as its bytes, not a UnicodeEncodeError."""
    prefix = _craft(tmp_path, {b"\xff\xfe": _entry(data=GOOD)})
    assert tfckpt.load_checkpoint(prefix).debug_string() == b"\xff\xfe (DT_FLOAT) [2]\n"


# -- found by the fuzzer (tests/fuzz) ---------------------------------------------------------


def _every_read(reader, prefix, name):
    """Each read path of one tensor, by name."""
    return {
        "get_tensor": lambda: reader.get_tensor(name),
        "copy=False": lambda: reader.get_tensor(name, copy=False),
        "load_tensors": lambda: tfckpt.load_tensors(prefix),
        "get_slice": lambda: reader.get_slice(name)[...],
    }


@pytest.mark.parametrize(
    ("offset", "size", "shape"), [(-1, 8, (2,)), (-(2**62), 8, (2,)), (-5, 0, (0,))]
)
@pytest.mark.parametrize("read", ["get_tensor", "copy=False", "load_tensors", "get_slice"])
def test_negative_offset_is_data_loss_on_every_read_path(tmp_path, offset, size, shape, read):
    """An entry whose int64 offset is negative (a 10-byte varint) is a DataLossError naming
    the tensor; it used to reach os.preadv (OSError: Invalid argument) or NumPy (ValueError:
    cannot reshape) depending on the read path."""
    prefix = _craft(tmp_path, {b"x": _entry(shape=shape, offset=offset, size=size, crc=0)})
    reader = tfckpt.load_checkpoint(prefix)
    with pytest.raises(DataLossError, match="negative") as info:
        _every_read(reader, prefix, "x")[read]()
    assert info.value.tensor == "x"


@pytest.mark.parametrize("read", ["get_tensor", "copy=False", "load_tensors", "get_slice"])
def test_slices_overlapping_and_leaving_a_hole_are_refused_on_every_read_path(tmp_path, read):
    """Slices [0, 2) and [1, 3) of a 4-element tensor hold 4 elements, as many as the tensor,
    but overlap and leave [3, 4) unstored: a DataLossError naming both slices on every read
    path.  Partial reads used to return the hole's uninitialised memory as values."""
    prefix = _partitioned(tmp_path, [("0,2", [1, 2]), ("1,2", [7, 8])])
    reader = tfckpt.load_checkpoint(prefix)
    with pytest.raises(DataLossError, match="overlaps") as info:
        _every_read(reader, prefix, "x")[read]()
    assert info.value.tensor == "x"
    assert "1,2" in str(info.value) and "0,2" in str(info.value)


def test_a_grid_of_slices_reads_and_an_overlap_in_it_is_refused(tmp_path):
    """Slices cut along two axes (checked by the general sweep, not the one-axis sort): a
    2 x 2 grid assembles; moving one block over its neighbour is refused."""
    full = np.arange(16, dtype=np.float64).reshape(4, 4)
    grid = [("0,2:0,2", full[:2, :2]), ("0,2:2,2", full[:2, 2:]),
            ("2,2:0,2", full[2:, :2]), ("2,2:2,2", full[2:, 2:])]  # fmt: skip
    good = _partitioned(tmp_path, grid, full_shape=(4, 4), name="good")
    np.testing.assert_array_equal(tfckpt.load_checkpoint(good)["x"], full)
    moved = [*grid[:3], ("2,2:1,2", full[2:, 1:3])]
    bad = _partitioned(tmp_path, moved, full_shape=(4, 4), name="bad")
    with pytest.raises(DataLossError, match="overlaps"):
        tfckpt.load_checkpoint(bad).get_slice("x")[3, 3]


def _many_row_slices(tmp_path, count, *, overlap=False):
    """A float32 [count] tensor stored as ``count`` one-element slices (the middle one two
    elements long over its predecessor, its successor missing, with ``overlap``)."""
    pieces = [(i, 1) for i in range(count)]
    if overlap:
        middle = count // 2
        pieces[middle] = (middle - 1, 2)
        del pieces[middle + 1]
    rows = np.arange(count, dtype=np.float32)
    full = tb.BundleEntryProto(dtype=1)
    full.shape.dim.add().size = count
    entries = {b"x": full}
    for start, length in pieces:
        piece = TensorSlice((start,), (length,))
        piece.to_proto(full.slices.add())
        raw = rows[start : start + length].tobytes()
        entries[encode_slice_key("x", piece)] = _entry(
            shape=(length,), offset=4 * start, size=len(raw), crc=_mask(crc32c.crc32c(raw))
        )
    tmp_path.mkdir()
    return _craft(tmp_path, entries, data=rows.tobytes())


def test_a_tensor_of_5000_slices_lists_and_reads_in_linear_time(tmp_path):
    """Listing a checkpoint looked each slice key up in a freshly built list of its tensor's
    slices (5000 slices: 25 million slices built, minutes); now a set made once.  Reading
    checks that the slices tile the tensor in O(k log k), and finds one overlap among them."""
    import time

    prefix = _many_row_slices(tmp_path / "good", 5000)
    started = time.perf_counter()
    reader = tfckpt.load_checkpoint(prefix)
    assert reader.keys() == ["x"]
    np.testing.assert_array_equal(reader["x"], np.arange(5000, dtype=np.float32))
    assert time.perf_counter() - started < 10
    bad = _many_row_slices(tmp_path / "bad", 5000, overlap=True)
    with pytest.raises(DataLossError, match="overlaps"):
        tfckpt.load_checkpoint(bad).get_slice("x")[:5]


def test_a_slice_entry_of_another_dtype_than_its_tensor_is_data_loss(tmp_path):
    """A float64 tensor whose slice entry says int64 (same size, valid checksum): its bytes
    were read as float64 regardless; a DataLossError now names the slice and both types."""
    prefix = _partitioned(tmp_path, [("0,2", [1, 2]), ("2,2", [3, 4])])
    entries = dict(TableReader.open(f"{prefix}.index").items())
    key = encode_slice_key("x", TensorSlice.parse("2,2"))
    part = tb.BundleEntryProto.FromString(entries[key])
    part.dtype = 9  # int64
    entries[key] = part.SerializeToString()
    del entries[b""]
    _write_index(f"{prefix}.index", entries, _header())
    reader = tfckpt.load_checkpoint(prefix)
    for read in _every_read(reader, prefix, "x").values():
        with pytest.raises(DataLossError, match="DataType 9") as info:
            read()
        assert info.value.tensor == "x" and "2,2" in str(info.value)


def _boxes_overlap(one, two) -> bool:
    """Whether two boxes share an element (an empty box holds none)."""
    nonempty = all(b > a for a, b in (*one, *two))
    return nonempty and all(a1 < b2 and a2 < b1 for (a1, b1), (a2, b2) in zip(one, two))


def test_find_overlap_agrees_with_comparing_every_pair():
    """The slice overlap check (one-axis sort or general sweep) finds an overlapping pair
    exactly when comparing every pair of boxes finds one, on random boxes of rank 0-3
    (empty ones included)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from tfckpt.bundle.entries import find_overlap

    interval = st.tuples(st.integers(0, 6), st.integers(0, 3)).map(lambda p: (p[0], p[0] + p[1]))

    @settings(max_examples=300, derandomize=True, database=None, deadline=None)
    @given(st.integers(0, 3).flatmap(lambda rank: st.lists(
        st.tuples(*[interval] * rank), max_size=8)))  # fmt: skip
    def check(boxes):
        found = find_overlap(boxes)
        pairs = [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes))
                 if _boxes_overlap(boxes[i], boxes[j])]  # fmt: skip
        if found is None:
            assert not pairs
        else:
            assert _boxes_overlap(boxes[found[0]], boxes[found[1]]) and found[0] != found[1]

    check()
