"""Big-endian bundles: ``BundleWriter(prefix, big_endian=True)`` and reading them back.

A big-endian bundle (what TensorFlow writes on s390x) says ``endianness: BIG`` in its header
and stores every numeric element in big-endian byte order (complex numbers component by
component, byte_swap_tensor.cc); the checksum of a string tensor's lengths runs over each
length as a big-endian uint32 and is stored big-endian (tensor_bundle.cc ReadStringTensor /
WriteStringTensor).  The expected bytes here are computed by the test itself (byte groups
reversed with NumPy, CRC32C from the ``crc32c`` package), not by tfckpt.
"""

from __future__ import annotations

import os
import struct

import crc32c
import numpy as np
import pytest

import tfckpt
from tests.bundle.test_partial_reads import same, values
from tfckpt import dtypes
from tfckpt.errors import DataLossError
from tfckpt.proto import tensor_bundle_pb2
from tfckpt.table.reader import TableReader
from tfckpt.table.writer import TableWriter

DATA = "{}.data-00000-of-00001"
INDEX = "{}.index"

QUANTIZED_BASE = {
    "qint8": "int8",
    "quint8": "uint8",
    "qint16": "int16",
    "quint16": "uint16",
    "qint32": "int32",
}
NUMERIC = [
    d.name
    for d in (dtypes.from_enum(e) for e in range(1, 64))
    if d is not None and d.is_numeric_storage
]
SHAPES = [(), (1,), (7,), (3, 5), (2, 1, 3, 2), (0,), (2, 0, 3)]


def test_the_dtype_list_is_complete():
    assert len(NUMERIC) == 30  # DataType 1..33 but string, resource and variant
    assert set(QUANTIZED_BASE) <= set(NUMERIC)
    for name in ("bfloat16", "float8_e4m3fn", "int4", "uint2", "float4_e2m1fn", "complex128"):
        assert name in NUMERIC


def _mask(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _expected_values(name: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return values(QUANTIZED_BASE.get(name, name), shape, seed)


def _big_endian_bytes(array: np.ndarray) -> bytes:
    """The elements' bytes with every byte group reversed (complex: per component)."""
    unit = array.dtype.itemsize // 2 if array.dtype.kind == "c" else array.dtype.itemsize
    raw = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    return raw.reshape(-1, unit)[:, ::-1].tobytes() if raw.size else b""


def _index_records(prefix: str) -> dict[bytes, bytes]:
    return dict(TableReader.open(INDEX.format(prefix)).items())


def _entry(prefix: str, name: str):
    entry = tensor_bundle_pb2.BundleEntryProto()
    entry.ParseFromString(_index_records(prefix)[name.encode()])
    return entry


def _string_bytes(strings: list[bytes]) -> tuple[bytes, int]:
    """WriteStringTensor on a big-endian host: (bytes, unmasked entry CRC)."""
    varints = bytearray()
    for s in strings:
        n = len(s)
        while n >= 0x80:
            varints.append((n & 0x7F) | 0x80)
            n >>= 7
        varints.append(n)
    lengths_be = b"".join(struct.pack(">I", len(s)) for s in strings)
    stored = struct.pack(">I", _mask(crc32c.crc32c(lengths_be)))
    payload = b"".join(strings)
    return bytes(varints) + stored + payload, crc32c.crc32c(lengths_be + stored + payload)


# -- round trips ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def every_dtype(tmp_path_factory):
    """One big-endian checkpoint with every numeric dtype in every shape, and strings."""
    prefix = str(tmp_path_factory.mktemp("be") / "ckpt")
    expected = {}
    with tfckpt.BundleWriter(prefix, big_endian=True) as writer:
        for seed, name in enumerate(NUMERIC):
            for shape in SHAPES:
                key = f"{name}/{shape}"
                expected[key] = _expected_values(name, shape, seed)
                writer.add(key, expected[key], dtype=name)
        for key, value in STRINGS.items():
            expected[key] = value
            writer.add(key, value)
    return prefix, expected


def _obj(items, shape=None):
    out = np.empty(len(items), object)
    out[:] = items
    return out.reshape(shape) if shape is not None else out


STRINGS = {
    "str/scalar": np.array(b"hello\x00world\xff", dtype=object),
    "str/empty_scalar": np.array(b"", dtype=object),
    "str/vector": _obj(
        [b"", b"a", b"\x00\xff", "ünï".encode(), b"x" * 127, b"y" * 128, b"z" * 20000]
    ),
    "str/matrix": _obj([b"ab", b"", b"cde", b"f", b"gh", b"ijk"], (2, 3)),
    "str/empty": _obj([], (0,)),
    "str/empty_3d": _obj([], (2, 0, 3)),
}


@pytest.mark.parametrize("name", NUMERIC)
def test_every_numeric_dtype_round_trips(every_dtype, name):
    prefix, expected = every_dtype
    with tfckpt.load_checkpoint(prefix) as reader:
        for shape in SHAPES:
            key = f"{name}/{shape}"
            want = expected[key]
            whole = want[()] if want.ndim == 0 else want
            assert reader.get_variable_to_dtype_map()[key].name == name
            assert reader.get_variable_to_shape_map()[key] == list(shape)
            for copy in (True, False):
                got = reader.get_tensor(key, copy=copy)
                same(got, whole, f"{key} copy={copy}")
                assert np.asarray(got).dtype.isnative
            view = reader.get_slice(key)
            same(np.asarray(view), want, f"asarray(get_slice({key}))")
            if want.ndim:
                same(view[::-1], want[::-1], f"{key}[::-1]")
                if want.size:
                    same(view[-1], want[-1], f"{key}[-1]")
                    same(view[(0,) * want.ndim], want[(0,) * want.ndim], f"{key}[0...]")
            else:
                same(view[()], want[()], f"{key}[()]")


def test_string_tensors_round_trip(every_dtype):
    prefix, expected = every_dtype
    with tfckpt.load_checkpoint(prefix) as reader:
        for key in STRINGS:
            want = expected[key]
            for copy in (True, False):
                got = reader.get_tensor(key, copy=copy)
                if want.ndim == 0:
                    assert type(got) is bytes and got == want[()]
                else:
                    assert got.dtype == object and got.shape == want.shape
                    assert got.tolist() == want.tolist()
                    assert all(type(x) is bytes for x in got.reshape(-1))
            view = reader.get_slice(key)
            assert view.dtype.name == "string" and view.shape == want.shape
            if want.ndim and want.size:
                assert view[..., ::-1].tolist() == want[..., ::-1].tolist()


def test_partitioned_tensors_round_trip(tmp_path):
    prefix = str(tmp_path / "ckpt")
    grid = values("float64", (6, 7), 3)
    cplx = values("complex64", (4, 3), 4)
    half = values("bfloat16", (5,), 5)
    with tfckpt.BundleWriter(prefix, big_endian=True) as writer:
        writer.add_slice("grid", (6, 7), [(4, 2), None], grid[4:])
        writer.add_slice("grid", (6, 7), [(0, 4), (0, 3)], grid[:4, :3])
        writer.add_slice("grid", (6, 7), "0,4:3,4", grid[:4, 3:])
        writer.add_slice("cplx", (4, 3), [(0, 1), None], cplx[:1])
        writer.add_slice("cplx", (4, 3), [(1, 3), None], cplx[1:])
        writer.add_slice("half", (5,), [(0, 2)], half[:2])
        writer.add_slice("half", (5,), [(2, 3)], half[2:])
    with tfckpt.load_checkpoint(prefix) as reader:
        for key, want in (("grid", grid), ("cplx", cplx), ("half", half)):
            same(reader.get_tensor(key), want, key)
            same(reader.get_tensor(key, copy=False), want, key)
            same(reader.get_slice(key)[1:, ...][::-2], want[1:, ...][::-2], key)
            assert len(reader.get_tensor_slices(key)) in (2, 3)
        same(reader.get_slice("grid")[3:5, 2:4], grid[3:5, 2:4], "across four slices")


def test_big_and_little_endian_files_differ_only_in_byte_order(every_dtype, tmp_path):
    prefix, expected = every_dtype
    little = str(tmp_path / "little")
    with tfckpt.BundleWriter(little) as writer:
        for key, value in expected.items():
            name = key.split("/")[0]
            writer.add(key, value, dtype=None if name == "str" else name)
    le_records, be_records = _index_records(little), _index_records(prefix)
    assert sorted(le_records) == sorted(be_records)
    with open(DATA.format(prefix), "rb") as f:
        be_data = f.read()
    with open(DATA.format(little), "rb") as f:
        le_data = f.read()
    assert len(be_data) == len(le_data)
    for key, value in expected.items():
        if key.startswith("str/"):
            continue
        entry = _entry(prefix, key)
        le_entry = _entry(little, key)
        assert (entry.offset, entry.size, entry.shard_id) == (
            le_entry.offset,
            le_entry.size,
            le_entry.shard_id,
        )
        stored = be_data[entry.offset : entry.offset + entry.size]
        assert stored == _big_endian_bytes(value), key
        assert le_data[entry.offset : entry.offset + entry.size] == value.tobytes(), key
        assert entry.crc32c == _mask(crc32c.crc32c(stored)), key


# -- bytes on disk ------------------------------------------------------------------------------


def test_header_says_big_endian(tmp_path):
    prefix = str(tmp_path / "ckpt")
    with tfckpt.BundleWriter(prefix, big_endian=True) as writer:
        writer.add("x", np.float32(1.0))
    header = _index_records(prefix)[b""]
    # num_shards=1, endianness=BIG (1), version {producer: 1}
    assert header == bytes.fromhex("08 01 10 01 1a 02 08 01")
    little = str(tmp_path / "little")
    tfckpt.save_tensors(little, {"x": np.float32(1.0)})
    assert _index_records(little)[b""] == bytes.fromhex("08 01 1a 02 08 01")


@pytest.mark.parametrize(
    "value, dtype, stored_hex",
    [
        (np.float32(1.0), None, "3f800000"),
        (np.array([1.0, -2.0], np.float64), None, "3ff0000000000000 c000000000000000"),
        (np.array([1.0, -0.0], np.float16), None, "3c00 8000"),
        (np.array([1.0, 3.0], "bfloat16"), None, "3f80 4040"),
        (np.array([0x01020304, -2], np.int32), None, "01020304 fffffffe"),
        (np.array([0x0102030405060708], np.int64), None, "0102030405060708"),
        (np.array([0x0102, 0xFFFE], np.uint16), None, "0102 fffe"),
        (np.array([-2], np.int16), None, "fffe"),
        (np.array([1 + 2j], np.complex64), None, "3f800000 40000000"),
        (np.array([-1 + 0.5j], np.complex128), None, "bff0000000000000 3fe0000000000000"),
        (np.array([0x01020304], np.uint32), None, "01020304"),
        (np.array([1], np.uint64), None, "0000000000000001"),
        (np.array([True, False]), None, "01 00"),
        (np.array([-128, 127], np.int8), None, "80 7f"),
        (np.array([-8, -1, 7], "int4"), None, "08 0f 07"),
        (np.array([0x0102], np.int16), "qint16", "0102"),
        (np.array([0x01020304], np.int32), "qint32", "01020304"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_stored_bytes(tmp_path, value, dtype, stored_hex):
    prefix = str(tmp_path / "ckpt")
    value = np.asarray(value)
    with tfckpt.BundleWriter(prefix, big_endian=True) as writer:
        writer.add("t", value, dtype=dtype)
    with open(DATA.format(prefix), "rb") as f:
        data = f.read()
    assert data == bytes.fromhex(stored_hex)
    entry = _entry(prefix, "t")
    assert (entry.offset, entry.size) == (0, len(data))
    assert entry.crc32c == _mask(crc32c.crc32c(data))
    with tfckpt.load_checkpoint(prefix) as reader:
        got = reader.get_tensor("t")
        assert np.asarray(got).tobytes() == value.tobytes()


@pytest.mark.parametrize(
    "strings",
    [
        [b"ab", b"", b"xyz" * 50],
        [b""],
        [],
        [b"q" * 16384, b"\x00"],
    ],
    ids=["mixed", "one_empty", "none", "varint_3_bytes"],
)
def test_string_bytes_and_checksums(tmp_path, strings):
    prefix = str(tmp_path / "ckpt")
    with tfckpt.BundleWriter(prefix, big_endian=True) as writer:
        writer.add("s", _obj(strings))
    with open(DATA.format(prefix), "rb") as f:
        data = f.read()
    want, crc = _string_bytes(strings)
    assert data == want
    entry = _entry(prefix, "s")
    assert entry.size == len(want)
    assert entry.crc32c == _mask(crc)
    # The lengths' checksum really is over big-endian uint32s: not the little-endian one.
    if any(strings):
        lengths_le = b"".join(struct.pack("<I", len(s)) for s in strings)
        assert struct.pack(">I", _mask(crc32c.crc32c(lengths_le))) not in data
    with tfckpt.load_checkpoint(prefix) as reader:
        assert reader.get_tensor("s").tolist() == strings


def test_string_scalar_bytes(tmp_path):
    prefix = str(tmp_path / "ckpt")
    with tfckpt.BundleWriter(prefix, big_endian=True) as writer:
        writer.add("s", b"\x01\x02\x03")
    with open(DATA.format(prefix), "rb") as f:
        assert f.read() == _string_bytes([b"\x01\x02\x03"])[0]
    with tfckpt.load_checkpoint(prefix) as reader:
        assert reader.get_tensor("s") == b"\x01\x02\x03"


def test_hand_built_big_endian_bundle_is_read(tmp_path):
    """A big-endian bundle assembled byte by byte (not by tfckpt's writer) reads correctly."""
    prefix = str(tmp_path / "ckpt")
    floats = np.array([[1.5, -2.0], [0.25, np.inf]], np.float32)
    words = [b"big", b"", b"endian"]
    f_bytes = _big_endian_bytes(floats)
    s_bytes, s_crc = _string_bytes(words)
    with open(DATA.format(prefix), "wb") as f:
        f.write(f_bytes + s_bytes)
    header = tensor_bundle_pb2.BundleHeaderProto(num_shards=1, endianness=1)
    header.version.producer = 1
    entries = {}
    for name, shape, dtype, offset, data, crc in (
        ("f", (2, 2), 1, 0, f_bytes, crc32c.crc32c(f_bytes)),
        ("s", (3,), 7, len(f_bytes), s_bytes, s_crc),
    ):
        entry = tensor_bundle_pb2.BundleEntryProto(dtype=dtype, offset=offset, size=len(data))
        entry.crc32c = _mask(crc)
        for d in shape:
            entry.shape.dim.add().size = d
        entries[name.encode()] = entry.SerializeToString()
    with open(INDEX.format(prefix), "wb") as f:
        table = TableWriter(f)
        table.add(b"", header.SerializeToString())
        for key in sorted(entries):
            table.add(key, entries[key])
        table.finish()
    with tfckpt.load_checkpoint(prefix) as reader:
        same(reader.get_tensor("f"), floats)
        same(reader.get_tensor("f", copy=False), floats)
        same(reader.get_slice("f")[1], floats[1])
        assert reader.get_tensor("s").tolist() == words


# -- corruption ------------------------------------------------------------------------------


def _flip(path: str, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x01]))


@pytest.mark.parametrize("copy", [True, False])
def test_corrupt_numeric_data_is_data_loss(tmp_path, copy):
    prefix = str(tmp_path / "ckpt")
    with tfckpt.BundleWriter(prefix, big_endian=True) as writer:
        writer.add("ok", np.arange(4, dtype=np.int64))
        writer.add("bad", np.arange(6, dtype=np.float32).reshape(2, 3))
    _flip(DATA.format(prefix), 32 + 5)
    with tfckpt.load_checkpoint(prefix) as reader:
        same(reader.get_tensor("ok", copy=copy), np.arange(4, dtype=np.int64))
        with pytest.raises(DataLossError) as info:
            reader.get_tensor("bad", copy=copy)
        assert info.value.tensor == "bad"
        assert "checksum" in str(info.value) and "bad" in str(info.value)
        assert info.value.path == DATA.format(prefix)


@pytest.mark.parametrize("where", ["lengths", "lengths_checksum", "payload"], ids=lambda w: w)
def test_corrupt_string_data_is_data_loss(tmp_path, where):
    prefix = str(tmp_path / "ckpt")
    words = [b"alpha", b"beta", b"gamma"]
    with tfckpt.BundleWriter(prefix, big_endian=True) as writer:
        writer.add("s", _obj(words))
    offset = {"lengths": 1, "lengths_checksum": 3 + 2, "payload": 3 + 4 + 6}[where]
    _flip(DATA.format(prefix), offset)
    with tfckpt.load_checkpoint(prefix) as reader:
        with pytest.raises(DataLossError) as info:
            reader.get_tensor("s")
        assert info.value.tensor == "s"


def test_string_checksum_stored_little_endian_is_rejected(tmp_path):
    # A big-endian header over string bytes whose lengths' checksum is little-endian (as a
    # little-endian writer stores it) does not verify.
    prefix = str(tmp_path / "ckpt")
    tfckpt.save_tensors(prefix, {"s": _obj([b"abc", b"de"])})
    records = _index_records(prefix)
    header = tensor_bundle_pb2.BundleHeaderProto()
    header.ParseFromString(records[b""])
    header.endianness = tensor_bundle_pb2.BundleHeaderProto.BIG
    records[b""] = header.SerializeToString()
    with open(INDEX.format(prefix), "wb") as f:
        table = TableWriter(f)
        for key in sorted(records):
            table.add(key, records[key])
        table.finish()
    with tfckpt.load_checkpoint(prefix) as reader, pytest.raises(DataLossError):
        reader.get_tensor("s")


def test_unknown_endianness_is_data_loss(tmp_path):
    prefix = str(tmp_path / "ckpt")
    with open(INDEX.format(prefix), "wb") as f:
        table = TableWriter(f)
        table.add(b"", bytes.fromhex("08 01 10 02 1a 02 08 01"))  # endianness = 2
        table.finish()
    open(DATA.format(prefix), "wb").close()
    with pytest.raises(DataLossError) as info:
        tfckpt.load_checkpoint(prefix)
    assert "endianness" in str(info.value)
    assert os.fspath(info.value.path) == INDEX.format(prefix)
