"""Writing bundles (save_tensors, BundleWriter) and reading them back (load_checkpoint).

Also the reading API's conveniences, checkpoint paths (state files, SavedModel
directories) and the ``tfckpt inspect`` command.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import crc32c
import ml_dtypes
import numpy as np
import pytest

import tfckpt
from tests.conftest import CORPUS, FIXTURES, REPO, fixture_files
from tfckpt import cli, dtypes
from tfckpt.bundle.reader import BundleReader
from tfckpt.checkpoint_state import write_state
from tfckpt.errors import (
    CheckpointError,
    CheckpointNotFoundError,
    DataLossError,
    InvalidArgumentError,
    TensorNotFoundError,
)
from tfckpt.proto import tensor_bundle_pb2
from tfckpt.table.reader import TableReader
from tfckpt.table.writer import TableWriter
from tfckpt.tensor_slice import TensorSlice, decode_slice_key, encode_slice_key

DATA = "{}.data-00000-of-00001"


def _mask(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _bits(value) -> bytes:
    """The element bytes of a value, for exact (NaN-safe) comparison."""
    return np.ascontiguousarray(np.asarray(value)).tobytes()


def _same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype == object or b.dtype == object:
        return a.shape == b.shape and a.tolist() == b.tolist()
    return a.shape == b.shape and a.dtype == b.dtype and _bits(a) == _bits(b)


# -- every dtype ---------------------------------------------------------------------------

STORAGE_DTYPES = [
    d
    for d in (dtypes.from_enum(e) for e in range(1, 64))
    if d is not None and d.is_numeric_storage and not d.is_quantized
]
QUANTIZED_DTYPES = [
    d for d in (dtypes.from_enum(e) for e in range(1, 64)) if d is not None and d.is_quantized
]


def _sample(dtype: dtypes.DType) -> np.ndarray:
    storage = dtype.storage_dtype
    name = dtype.name
    if name == "bool":
        return np.array([[True, False, True], [False, False, True]])
    if name in ("int4", "uint4", "int2", "uint2"):
        info = ml_dtypes.iinfo(storage)
        return np.arange(int(info.min), int(info.max) + 1).astype(storage)
    if storage.kind in "iu":
        info = np.iinfo(storage)
        return np.array([[info.min, -1 if info.min else 0, 0], [1, 2, info.max]], storage)
    if storage.kind == "c":
        return np.array([1 + 2j, -3.5j, 0, np.inf - 1j], storage)
    if name in ("float16", "float32", "float64"):
        return np.array([0.0, -0.0, 1.5, -2.0, np.inf, -np.inf, np.nan, 1e-30], storage)
    return np.array([[0.0, 1.0, -2.0], [0.5, 1.5, -0.5]]).astype(storage)  # ml_dtypes floats


def test_the_dtype_lists_are_complete():
    names = {d.name for d in STORAGE_DTYPES}
    assert names == {
        "float16", "float32", "float64", "bfloat16", "int8", "int16", "int32", "int64",
        "uint8", "uint16", "uint32", "uint64", "bool", "complex64", "complex128",
        "float8_e5m2", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e4m3b11fnuz",
        "float8_e5m2fnuz", "int4", "uint4", "int2", "uint2", "float4_e2m1fn",
    }  # fmt: skip
    assert {d.name for d in QUANTIZED_DTYPES} == {"qint8", "quint8", "qint16", "quint16", "qint32"}


@pytest.mark.parametrize("dtype", STORAGE_DTYPES, ids=lambda d: d.name)
def test_every_dtype_round_trips(tmp_path, dtype):
    value = _sample(dtype)
    prefix = tfckpt.save_tensors(tmp_path / "m", {"t": value, "scalar": value.reshape(-1)[1]})
    data = (tmp_path / DATA.format("m")).read_bytes()
    assert data == value.tobytes() + value.reshape(-1)[1].tobytes()  # host bytes, C order
    with tfckpt.load_checkpoint(prefix) as reader:
        assert reader.get_variable_to_dtype_map()["t"].name == dtype.name
        assert reader.get_variable_to_dtype_map()["t"].as_datatype_enum == dtype.as_datatype_enum
        assert reader.get_variable_to_shape_map() == {"t": list(value.shape), "scalar": []}
        got = reader.get_tensor("t")
        assert isinstance(got, np.ndarray)
        assert got.dtype == dtype.storage_dtype
        assert _same(got, value)
        scalar = reader.get_tensor("scalar")
        assert isinstance(scalar, np.generic)
        assert type(scalar) is dtype.storage_dtype.type
        assert _bits(scalar) == _bits(value.reshape(-1)[1])


def test_low_bit_types_are_stored_one_byte_per_element(tmp_path):
    tfckpt.save_tensors(
        tmp_path / "m",
        {
            "i4": np.array([-8, -1, 0, 7], ml_dtypes.int4),
            "u4": np.array([0, 15], ml_dtypes.uint4),
            "i2": np.array([-2, -1, 0, 1], ml_dtypes.int2),
            "u2": np.array([3], ml_dtypes.uint2),
            "f4": np.array([-6.0, 0.5], ml_dtypes.float4_e2m1fn),
        },
    )
    data = (tmp_path / DATA.format("m")).read_bytes()
    assert data[:4] == b"\x08\x0f\x00\x07"  # int4 -8 is 0x08, -1 is 0x0f
    assert data[4:6] == b"\x00\x0f"
    assert data[6:10] == b"\x02\x03\x00\x01"
    assert data[10:11] == b"\x03"
    assert len(data) == 13


@pytest.mark.parametrize("dtype", QUANTIZED_DTYPES, ids=lambda d: d.name)
def test_quantized_dtypes_read_back_as_plain_integers(tmp_path, dtype):
    storage = dtype.storage_dtype
    info = np.iinfo(storage)
    value = np.array([info.min, 0, info.max], storage)
    with tfckpt.BundleWriter(tmp_path / "m") as writer:
        writer.add("by_name", value, dtype=dtype.name)
        writer.add("by_dtype", value, dtype=dtype)
        writer.add("by_enum", value, dtype=dtype.as_datatype_enum)
    reader = tfckpt.load_checkpoint(tmp_path / "m")
    for name in ("by_name", "by_dtype", "by_enum"):
        assert reader.get_variable_to_dtype_map()[name].name == dtype.name
        got = reader.get_tensor(name)
        assert got.dtype == storage  # a plain integer array, as TensorFlow's reader returns
        assert got.tolist() == value.tolist()


def test_quantized_from_tensorflows_structured_numpy_dtype(tmp_path):
    # tf.qint8.as_numpy_dtype (and tfckpt.dtypes.qint8.as_numpy_dtype) is the structured
    # dtype [('qint8', 'i1')]; from_numpy maps it to qint8, so such arrays must save as qint8.
    structured = dtypes.qint8.as_numpy_dtype
    assert dtypes.from_numpy(np.dtype(structured)) == dtypes.qint8
    value = np.array([-3, 4], np.int8).view(structured)
    tfckpt.save_tensors(tmp_path / "m", {"q": value})
    reader = tfckpt.load_checkpoint(tmp_path / "m")
    assert reader.get_variable_to_dtype_map()["q"].name == "qint8"
    assert reader.get_tensor("q").tolist() == [-3, 4]


# -- strings -------------------------------------------------------------------------------


def test_strings(tmp_path):
    tensors = {
        "objects": np.array([b"a", b"", b"\x00\xff\x80"], dtype=object),
        "unicode": np.array([["x", "y\u00e9"], ["", "\u4e2d"]]),
        "fixed_bytes": np.array([b"ab", b"c"], dtype="S2"),
        "list": [b"p", b"qq"],
        "scalar_bytes": b"hello",
        "scalar_str": "h\u00e9llo",
        "scalar_np": np.bytes_(b"np"),
        "empty_scalar": b"",
        "no_elements": np.array([], dtype=object),
        "no_rows": np.empty((2, 0), dtype=object),
        "big": np.array([b"z" * 20000, b"y" * 128]),
    }
    tfckpt.save_tensors(tmp_path / "s", tensors)
    reader = tfckpt.load_checkpoint(tmp_path / "s")
    for name in tensors:
        assert reader.get_variable_to_dtype_map()[name].name == "string"
    assert reader["objects"].dtype == object
    assert reader["objects"].tolist() == [b"a", b"", b"\x00\xff\x80"]
    assert reader["unicode"].tolist() == [[b"x", "y\u00e9".encode()], [b"", "\u4e2d".encode()]]
    assert reader["fixed_bytes"].tolist() == [b"ab", b"c"]
    assert reader["list"].tolist() == [b"p", b"qq"]
    assert reader["scalar_bytes"] == b"hello" and type(reader["scalar_bytes"]) is bytes
    assert reader["scalar_str"] == "h\u00e9llo".encode()
    assert reader["scalar_np"] == b"np" and type(reader["scalar_np"]) is bytes
    assert reader["empty_scalar"] == b""
    assert reader["no_elements"].shape == (0,) and reader["no_elements"].dtype == object
    assert reader["no_rows"].shape == (2, 0)
    assert reader["big"].tolist() == [b"z" * 20000, b"y" * 128]
    assert all(type(x) is bytes for x in reader["big"].tolist())
    assert reader.get_variable_to_shape_map()["unicode"] == [2, 2]
    assert reader.get_variable_to_shape_map()["scalar_bytes"] == []


# -- shapes, layouts, byte orders ----------------------------------------------------------


def test_scalars(tmp_path):
    tensors = {
        "f32": np.float32(1.5),
        "i64": np.array(-7, np.int64),
        "py_float": 2.5,
        "py_int": 3,
        "py_bool": True,
        "bf16": np.array(1.25, ml_dtypes.bfloat16),
        "c128": np.complex128(1 - 1j),
    }
    tfckpt.save_tensors(tmp_path / "m", tensors)
    reader = tfckpt.load_checkpoint(tmp_path / "m")
    expected_types = {
        "f32": np.float32,
        "i64": np.int64,
        "py_float": np.float64,
        "py_int": np.int64,
        "py_bool": np.bool_,
        "bf16": ml_dtypes.bfloat16,
        "c128": np.complex128,
    }
    for name, value in tensors.items():
        got = reader.get_tensor(name)
        assert type(got) is expected_types[name], name
        assert got == np.asarray(value), name
        assert reader.get_variable_to_shape_map()[name] == []


@pytest.mark.parametrize("shape", [(0,), (3, 0), (0, 0, 2), (2, 0, 5)])
def test_empty_shapes(tmp_path, shape):
    tensors = {
        "f": np.zeros(shape, np.float32),
        "i4": np.zeros(shape, ml_dtypes.int4),
        "s": np.empty(shape, dtype=object),
    }
    tfckpt.save_tensors(tmp_path / "m", tensors)
    reader = tfckpt.load_checkpoint(tmp_path / "m")
    for name, value in tensors.items():
        assert reader.get_variable_to_shape_map()[name] == list(shape)
        for copy in (True, False):
            got = reader.get_tensor(name, copy=copy)
            assert got.shape == shape
            assert got.dtype == value.dtype


def test_only_empty_tensors_make_an_empty_data_file(tmp_path):
    tfckpt.save_tensors(tmp_path / "m", {"e": np.zeros((0, 4), np.float64)})
    assert (tmp_path / DATA.format("m")).read_bytes() == b""
    reader = tfckpt.load_checkpoint(tmp_path / "m")
    assert reader.get_tensor("e", copy=False).shape == (0, 4)
    assert reader.get_tensor("e").shape == (0, 4)


def test_rank_6_and_more(tmp_path):
    six = np.arange(24, dtype=np.int32).reshape(1, 2, 1, 3, 1, 4)
    eight = np.arange(2**8, dtype=np.uint8).reshape((2,) * 8)
    tfckpt.save_tensors(tmp_path / "m", {"six": six, "eight": eight})
    reader = tfckpt.load_checkpoint(tmp_path / "m")
    assert reader.get_variable_to_shape_map() == {"six": [1, 2, 1, 3, 1, 4], "eight": [2] * 8}
    assert _same(reader["six"], six)
    assert _same(reader["eight"], eight)


def test_fortran_ordered_and_strided_inputs(tmp_path):
    base = np.arange(24, dtype=np.float64).reshape(4, 6)
    fortran = np.asfortranarray(base)
    strided = base[:, ::2]
    transposed = base.T
    tfckpt.save_tensors(tmp_path / "m", {"f": fortran, "s": strided, "t": transposed})
    data = (tmp_path / DATA.format("m")).read_bytes()
    assert (
        data == base.tobytes() + np.ascontiguousarray(strided).tobytes() + base.T.copy().tobytes()
    )
    reader = tfckpt.load_checkpoint(tmp_path / "m")
    assert _same(reader["f"], base)
    assert _same(reader["s"], np.ascontiguousarray(strided))
    assert _same(reader["t"], np.ascontiguousarray(transposed))
    assert fortran.flags.f_contiguous  # the input was not modified


NON_NATIVE = {
    ">f4": [[1.5, -2.0, 3.0], [0.0, 7.0, 100.0]],
    ">f2": [1.5, -2.0],
    ">i8": [[1, -2, 300], [0, 7, 2**40]],
    ">u2": [1, 2, 65535],
    ">c8": [1 + 2j, -3j],
    ">c16": [1 + 2j, -3j],
    "<f8": [0.5, 1e300],
}


@pytest.mark.parametrize("dtype", sorted(NON_NATIVE))
def test_non_native_byte_order_inputs(tmp_path, dtype):
    value = np.array(NON_NATIVE[dtype], dtype=dtype)
    tfckpt.save_tensors(tmp_path / "m", {"x": value})
    native = value.astype(np.dtype(dtype).newbyteorder("="))
    little = native.astype(native.dtype.newbyteorder("<"))
    assert (tmp_path / DATA.format("m")).read_bytes() == little.tobytes()
    reader = tfckpt.load_checkpoint(tmp_path / "m")
    assert reader.get_variable_to_dtype_map()["x"] == dtypes.from_numpy(native.dtype)
    got = reader["x"]
    assert got.dtype == native.dtype
    assert got.dtype.isnative
    assert np.array_equal(got, native)
    assert value.dtype == np.dtype(dtype)  # the input was not modified


def test_copy_false_gives_read_only_views_equal_to_copies(tmp_path):
    tensors = {
        "f": np.arange(12, dtype=np.float32).reshape(3, 4),
        "bf": np.arange(5).astype(ml_dtypes.bfloat16),
        "c": np.array([1 + 1j, 2], np.complex128),
        "b": np.array([True, False]),
    }
    tfckpt.save_tensors(tmp_path / "m", tensors)
    reader = tfckpt.load_checkpoint(tmp_path / "m")
    for name, value in tensors.items():
        view = reader.get_tensor(name, copy=False)
        owned = reader.get_tensor(name)
        assert _same(view, value) and _same(owned, value)
        assert not view.flags.writeable
        with pytest.raises(ValueError):
            view.reshape(-1)[0] = view.reshape(-1)[1]
        assert owned.flags.writeable and owned.flags.owndata
        owned.reshape(-1)[0] = owned.reshape(-1)[1]  # does not affect later reads
        assert _same(reader.get_tensor(name), value)
    view = reader.get_tensor("f", copy=False)
    reader.close()
    assert _same(view, tensors["f"])  # arrays already returned stay valid after close
    assert _same(reader.get_tensor("f"), tensors["f"])  # and the reader reopens its files


def test_data_is_in_add_order_without_padding(tmp_path):
    tfckpt.save_tensors(
        tmp_path / "m",
        {"z": np.int8(1), "a": np.arange(3, dtype=np.int16), "m": b"xy", "b": np.float64(2)},
    )
    with BundleReader(tmp_path / "m") as reader:
        offsets = {n: (reader.entry(n).offset, reader.entry(n).size) for n in reader.names()}
        assert reader.names() == ["a", "b", "m", "z"]  # key order
    assert offsets == {"z": (0, 1), "a": (1, 6), "m": (7, 7), "b": (14, 8)}  # add order


def test_index_header_and_entry_bytes(tmp_path):
    value = np.array([1.0, 2.0], np.float32)
    tfckpt.save_tensors(tmp_path / "m", {"w": value})
    table = dict(TableReader.open(tmp_path / "m.index").items())
    assert table[b""] == bytes.fromhex("08011a020801")  # num_shards 1, version {producer 1}
    entry = tensor_bundle_pb2.BundleEntryProto.FromString(table[b"w"])
    assert entry.dtype == 1
    assert [d.size for d in entry.shape.dim] == [2]
    assert (entry.shard_id, entry.offset, entry.size) == (0, 0, 8)
    assert entry.crc32c == _mask(crc32c.crc32c(value.tobytes()))
    assert not entry.slices


def test_save_tensors_paths(tmp_path):
    nested = tmp_path / "a" / "b" / "model.ckpt-7"
    returned = tfckpt.save_tensors(nested, {"x": np.ones(2)})
    assert returned == str(nested)
    assert sorted(os.listdir(nested.parent)) == [
        "model.ckpt-7.data-00000-of-00001",
        "model.ckpt-7.index",
    ]
    assert tfckpt.load_checkpoint(str(nested)).prefix == str(nested)


def test_overwriting_a_checkpoint(tmp_path):
    tfckpt.save_tensors(tmp_path / "m", {"x": np.ones(3)})
    tfckpt.save_tensors(tmp_path / "m", {"y": np.zeros(2, np.int32)})
    reader = tfckpt.load_checkpoint(tmp_path / "m")
    assert reader.keys() == ["y"]
    assert reader["y"].tolist() == [0, 0]


# -- partitioned tensors -------------------------------------------------------------------


def test_add_slice_partitioned_tensors(tmp_path):
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    y = np.arange(12, dtype=np.int64).reshape(2, 6)
    s = np.array([b"a", b"bb", b"ccc"], dtype=object)
    with tfckpt.BundleWriter(tmp_path / "m") as writer:
        writer.add_slice("x", [4, 3], "0,2:-", x[:2])
        writer.add_slice("x", [4, 3], "2,2:-", x[2:])
        writer.add_slice("y", (2, 6), [None, (0, 4)], y[:, :4])
        writer.add_slice("y", (2, 6), TensorSlice.parse("-:4,2"), y[:, 4:])
        writer.add_slice("whole", [3], "0,3", np.ones(3, np.float16))  # covers: stored whole
        writer.add_slice("s", [3], "1,2", s[1:])
        writer.add_slice("s", [3], "0,1", s[:1])
        writer.add("plain", np.int32(5))
    reader = tfckpt.load_checkpoint(tmp_path / "m")
    assert reader.keys() == ["plain", "s", "whole", "x", "y"]  # slice entries hidden
    assert len(reader) == 5
    assert reader.get_variable_to_shape_map() == {
        "plain": [], "s": [3], "whole": [3], "x": [4, 3], "y": [2, 6],
    }  # fmt: skip
    assert reader.get_variable_to_dtype_map()["x"].name == "float32"
    assert _same(reader["x"], x)
    assert _same(reader["y"], y)
    assert reader["s"].tolist() == s.tolist()
    assert _same(reader.get_tensor("x", copy=False), x)
    assert _same(reader["whole"], np.ones(3, np.float16))
    with BundleReader(tmp_path / "m") as bundle:
        assert bundle.slices("x") == [TensorSlice.parse("0,2:-"), TensorSlice.parse("2,2:-")]
        assert bundle.slices("whole") == []
        assert bundle.entry("x").size == 0  # the full entry holds no data
    raw = dict(TableReader.open(tmp_path / "m.index").items())
    slice_keys = sorted(k for k in raw if k[:1] == b"\x00")
    assert len(slice_keys) == 6
    assert encode_slice_key("x", TensorSlice.parse("2,2:-")) in slice_keys
    assert {decode_slice_key(k)[0] for k in slice_keys} == {"x", "y", "s"}
    hidden = encode_slice_key("x", TensorSlice.parse("0,2:-")).decode("utf-8", "surrogateescape")
    assert "x" in reader and hidden not in reader


def test_partitioned_tensor_missing_a_slice(tmp_path):
    with tfckpt.BundleWriter(tmp_path / "m") as writer:
        writer.add_slice("x", [4], "0,2", np.ones(2))
    with pytest.raises(DataLossError, match="cover") as info:
        tfckpt.load_checkpoint(tmp_path / "m")["x"]
    assert info.value.tensor == "x"


def test_add_slice_rejects_bad_slices(tmp_path):
    with tfckpt.BundleWriter(tmp_path / "m") as writer:
        with pytest.raises(InvalidArgumentError):
            writer.add_slice("x", [4], "0,3", np.ones(2))  # value shape does not match
        with pytest.raises(InvalidArgumentError):
            writer.add_slice("x", [4], "3,2", np.ones(2))  # beyond the full shape
        with pytest.raises(InvalidArgumentError):
            writer.add_slice("x", [4, 2], "0,2", np.ones(2))  # rank mismatch
        writer.add_slice("x", [4], "0,2", np.ones(2))
        with pytest.raises(InvalidArgumentError):
            writer.add_slice("x", [4], "2,2", np.ones(2, np.int32))  # other dtype
        with pytest.raises(InvalidArgumentError):
            writer.add_slice("x", [5], "2,2", np.ones(2))  # other full shape
        with pytest.raises(InvalidArgumentError):
            writer.add("x", np.ones(4))  # already added as slices
        writer.add("w", np.ones(4))
        with pytest.raises(InvalidArgumentError):
            writer.add_slice("w", [8], "0,4", np.ones(4))  # already added whole
        writer.add_slice("x", [4], "2,2", np.full(2, 2.0))
    assert tfckpt.load_checkpoint(tmp_path / "m")["x"].tolist() == [1, 1, 2, 2]


def test_add_slice_bad_slice_spec_is_invalid_argument(tmp_path):
    with tfckpt.BundleWriter(tmp_path / "m") as writer:
        with pytest.raises(InvalidArgumentError):
            writer.add_slice("x", [4], "abc", np.ones(2))
        with pytest.raises(InvalidArgumentError):
            writer.add_slice("x", [4], [(-1, 2)], np.ones(2))
        writer.add("ok", np.ones(1))


def test_rejected_duplicate_slice_leaves_the_checkpoint_intact(tmp_path):
    with tfckpt.BundleWriter(tmp_path / "m") as writer:
        writer.add_slice("x", [4], "0,2", np.array([1.0, 2.0]))
        with pytest.raises(InvalidArgumentError):
            writer.add_slice("x", [4], "0,2", np.array([1.0, 2.0]))
        writer.add_slice("x", [4], "2,2", np.array([3.0, 4.0]))
    with BundleReader(tmp_path / "m") as bundle:
        assert bundle.slices("x") == [TensorSlice.parse("0,2"), TensorSlice.parse("2,2")]
    assert tfckpt.load_checkpoint(tmp_path / "m")["x"].tolist() == [1, 2, 3, 4]


def test_rejected_first_slice_leaves_no_tensor_behind(tmp_path):
    with tfckpt.BundleWriter(tmp_path / "m") as writer:
        with pytest.raises(InvalidArgumentError):
            writer.add_slice("s", [4], "0,2", np.array([1, 2], dtype=object))  # ints
        writer.add("t", np.ones(1))
    reader = tfckpt.load_checkpoint(tmp_path / "m")
    assert reader.keys() == ["t"]


def test_add_slice_empty_name_is_invalid_argument(tmp_path):
    with tfckpt.BundleWriter(tmp_path / "m") as writer:
        with pytest.raises(InvalidArgumentError):
            writer.add_slice("", [4], "0,2", np.ones(2))
        writer.add("ok", np.ones(1))
    assert tfckpt.load_checkpoint(tmp_path / "m").keys() == ["ok"]


def test_add_slice_after_finish_is_invalid_argument(tmp_path):
    writer = tfckpt.BundleWriter(tmp_path / "m")
    writer.add("a", np.ones(2))
    writer.finish()
    with pytest.raises(InvalidArgumentError):
        writer.add("b", np.ones(2))
    with pytest.raises(InvalidArgumentError):
        writer.add_slice("c", [4], "0,2", np.ones(2))
    with pytest.raises(InvalidArgumentError):
        writer.finish()
    writer.abort()  # no-op once finished
    assert tfckpt.load_checkpoint(tmp_path / "m").keys() == ["a"]


# -- atomicity -----------------------------------------------------------------------------


def _files(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def test_nothing_under_the_final_names_until_finish(tmp_path):
    writer = tfckpt.BundleWriter(tmp_path / "m")
    writer.add("a", np.ones(1000))
    writer.add("b", b"text")
    files = _files(tmp_path)
    assert files and all(".tempstate" in f for f in files)
    assert not (tmp_path / "m.index").exists()
    assert not (tmp_path / DATA.format("m")).exists()
    with pytest.raises(CheckpointNotFoundError):
        tfckpt.load_checkpoint(tmp_path / "m")
    assert writer.finish() == str(tmp_path / "m")
    assert _files(tmp_path) == ["m.data-00000-of-00001", "m.index"]
    assert tfckpt.load_checkpoint(tmp_path / "m")["b"] == b"text"


def test_abort_leaves_nothing(tmp_path):
    writer = tfckpt.BundleWriter(tmp_path / "m")
    writer.add("a", np.ones(1000))
    writer.abort()
    assert _files(tmp_path) == []
    writer.abort()  # twice is fine
    with pytest.raises(InvalidArgumentError):
        writer.add("b", np.ones(1))


def test_exception_inside_with_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError, match="boom"), tfckpt.BundleWriter(tmp_path / "m") as w:
        w.add("a", np.ones(1000))
        raise RuntimeError("boom")
    assert _files(tmp_path) == []


def test_writer_error_inside_with_leaves_nothing(tmp_path):
    with pytest.raises(InvalidArgumentError), tfckpt.BundleWriter(tmp_path / "m") as writer:
        writer.add("a", np.ones(3))
        writer.add("a", np.ones(3))
    assert _files(tmp_path) == []


def test_failed_index_write_leaves_no_temporary_files_and_no_index(tmp_path, monkeypatch):
    from tfckpt.bundle import output as output_module

    class FailingTable(TableWriter):
        def finish(self) -> int:
            raise OSError("disk full")

    monkeypatch.setattr(output_module, "TableWriter", FailingTable)
    writer = tfckpt.BundleWriter(tmp_path / "m")
    writer.add("a", np.ones(3))
    with pytest.raises(OSError, match="disk full"):
        writer.finish()
    assert not any(".tempstate" in f for f in _files(tmp_path))
    assert not (tmp_path / "m.index").exists()
    with pytest.raises(CheckpointNotFoundError):
        tfckpt.load_checkpoint(tmp_path / "m")


# -- bad input to the writer ---------------------------------------------------------------


def test_duplicate_names(tmp_path):
    with tfckpt.BundleWriter(tmp_path / "m") as writer:
        writer.add("a", np.ones(1))
        with pytest.raises(InvalidArgumentError, match="'a'") as info:
            writer.add("a", np.zeros(1))
        assert info.value.tensor == "a"
        writer.add_slice("p", [2], "0,1", np.ones(1))
        with pytest.raises(InvalidArgumentError):
            writer.add("p", np.ones(2))
    assert tfckpt.load_checkpoint(tmp_path / "m")["a"].tolist() == [1.0]


BAD_VALUES = {
    "object_array_of_ints": (np.array([1, 2], dtype=object), None),
    "object_array_mixed": (np.array([b"a", 3], dtype=object), None),
    "python_object": (object(), None),
    "0d_object_array": (np.array(object()), None),
    "ragged_list": ([[1, 2], [3]], None),
    "float64_as_float32": (np.zeros(2, np.float64), "float32"),
    "int16_as_qint8": (np.zeros(2, np.int16), "qint8"),
    "bytes_as_int32": (np.array([b"x"]), "int32"),
    "numbers_as_string": (np.zeros(2), "string"),
    "resource": (np.zeros(2, np.int64), "resource"),
    "variant": (np.zeros(2, np.int64), "variant"),
    "unknown_dtype_name": (np.zeros(2), "no_such_dtype"),
    "unknown_dtype_enum": (np.zeros(2), 99),
    "datetime64": (np.zeros(2, "datetime64[s]"), None),
}


@pytest.mark.parametrize(("value", "dtype"), list(BAD_VALUES.values()), ids=list(BAD_VALUES))
def test_bad_values_raise_invalid_argument(tmp_path, value, dtype):
    with tfckpt.BundleWriter(tmp_path / "m") as writer:
        with pytest.raises(InvalidArgumentError) as info:
            writer.add("bad", value, dtype=dtype)
        assert info.value.tensor == "bad"
        assert "'bad'" in str(info.value)
        writer.add("good", np.ones(2))
    assert tfckpt.load_checkpoint(tmp_path / "m").keys() == ["good"]


@pytest.mark.parametrize("name", ["", None, 3, b"bytes"])
def test_bad_names(tmp_path, name):
    with tfckpt.BundleWriter(tmp_path / "m") as writer:
        with pytest.raises(InvalidArgumentError):
            writer.add(name, np.ones(1))  # type: ignore[arg-type]
        writer.add("good", np.ones(1))


# -- big-endian bundles --------------------------------------------------------------------


def test_hand_built_big_endian_bundle(tmp_path):
    values = {
        "f32": np.array([1.5, -2.0, 3.25], ">f4"),
        "i16": np.array([[1, -2], [300, 4]], ">i2"),
        "c64": np.array([1 + 2j, -3j], ">c8"),
        "u8": np.array([1, 2, 255], np.uint8),
        "scalar": np.array(7, ">i8"),
    }
    strings = [b"abc", b"", b"de"]
    data = bytearray()
    entries = {}
    for name, value in values.items():
        raw = value.tobytes()
        entry = tensor_bundle_pb2.BundleEntryProto(
            dtype=dtypes.from_numpy(value.dtype).as_datatype_enum,
            offset=len(data),
            size=len(raw),
            crc32c=_mask(crc32c.crc32c(raw)),  # over the bytes as stored
        )
        entry.shape.SetInParent()
        for d in value.shape:
            entry.shape.dim.add().size = d
        entries[name.encode()] = entry
        data += raw
    lengths = struct.pack(">III", *(len(s) for s in strings))
    lcrc = crc32c.crc32c(lengths)
    stored = struct.pack(">I", _mask(lcrc))
    raw = bytes([3, 0, 2]) + stored + b"".join(strings)
    entry = tensor_bundle_pb2.BundleEntryProto(
        dtype=7,
        offset=len(data),
        size=len(raw),
        crc32c=_mask(crc32c.crc32c(b"abcde", crc32c.crc32c(stored, lcrc))),
    )
    entry.shape.dim.add().size = 3
    entries[b"str"] = entry
    data += raw
    header = tensor_bundle_pb2.BundleHeaderProto(num_shards=1, endianness=1)
    header.version.producer = 1
    with open(tmp_path / "be.index", "wb") as f:
        table = TableWriter(f)
        table.add(b"", header.SerializeToString())
        for key in sorted(entries):
            table.add(key, entries[key].SerializeToString())
        table.finish()
    (tmp_path / DATA.format("be")).write_bytes(bytes(data))
    reader = tfckpt.load_checkpoint(tmp_path / "be")
    for name, value in values.items():
        native = value.astype(value.dtype.newbyteorder("="))
        for copy in (True, False):
            got = reader.get_tensor(name, copy=copy)
            assert np.asarray(got).dtype.isnative
            assert np.array_equal(got, native), name
    assert reader["str"].tolist() == strings


# -- byte-identical to TensorFlow ----------------------------------------------------------


def _rewritable(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    out = []
    for index in fixture_files(root, "*.index"):
        prefix = Path(str(index)[: -len(".index")])
        if not Path(DATA.format(prefix)).is_file():
            continue
        try:
            with BundleReader(prefix) as reader:
                names = reader.names()
                if reader.num_shards != 1 or any(reader.slices(n) for n in names):
                    continue
                if any(reader.dtype(n).name in ("resource", "variant") for n in names):
                    continue
        except CheckpointError:  # e.g. a fixture being regenerated right now
            continue
        out.append(prefix)
    return out


REWRITABLE = _rewritable(CORPUS) + _rewritable(FIXTURES)


def _short(prefix: Path) -> str:
    for root in (CORPUS, FIXTURES):
        if prefix.is_relative_to(root):
            return f"{root.name}/{prefix.relative_to(root)}"
    return str(prefix)


@pytest.mark.parametrize("prefix", REWRITABLE, ids=_short)
def test_rewriting_tensorflow_checkpoints_is_byte_identical(tmp_path, prefix):
    with BundleReader(prefix) as reader:
        names = sorted(reader.names(), key=lambda n: reader.entry(n).offset)
        tensors = [(n, reader.read(n), reader.dtype(n)) for n in names]
    with tfckpt.BundleWriter(tmp_path / "copy") as writer:
        for name, value, dtype in tensors:
            writer.add(name, value, dtype=dtype)
    original = Path(DATA.format(prefix)).read_bytes()
    assert (tmp_path / DATA.format("copy")).read_bytes() == original
    index = Path(f"{prefix}.index").read_bytes()
    blocks = TableReader(index, str(prefix))
    compressed = any(index[h.offset + h.size] != 0 for h in blocks._handles)
    if not compressed:  # old releases wrote Snappy indexes; TensorFlow now writes none
        assert (tmp_path / "copy.index").read_bytes() == index
    else:
        assert list(TableReader.open(tmp_path / "copy.index").items()) == list(blocks.items())


def test_rewrite_covers_enough():
    assert len(REWRITABLE) >= 20


@pytest.mark.skipif(
    not (FIXTURES / "partitioned" / "ckpt.index").is_file(), reason="fixtures not generated"
)
def test_rewriting_tensorflows_partitioned_checkpoint_is_byte_identical(tmp_path):
    prefix = FIXTURES / "partitioned" / "ckpt"
    order = []
    with BundleReader(prefix) as reader:
        for name in reader.entries.keys:
            key = name.encode("utf-8", "surrogateescape")
            if key[:1] == b"\x00":
                full, s = decode_slice_key(key)
                entry = reader.entry(name)
                value = reader.read(name)  # a slice's entry read by its own key
                order.append((entry.offset, full, s, value, reader.dtype(full), reader.shape(full)))
            elif not reader.slices(name):
                order.append(
                    (reader.entry(name).offset, name, None, reader.read(name), reader.dtype(name),
                     None)
                )  # fmt: skip
    order.sort(key=lambda t: t[0])
    with tfckpt.BundleWriter(tmp_path / "copy") as writer:
        for _, name, s, value, dtype, shape in order:
            if s is None:
                writer.add(name, value, dtype=dtype)
            else:
                writer.add_slice(name, shape, s, value, dtype=dtype)
    assert (tmp_path / "copy.index").read_bytes() == Path(f"{prefix}.index").read_bytes()
    assert (tmp_path / DATA.format("copy")).read_bytes() == Path(DATA.format(prefix)).read_bytes()


# -- the reading API -----------------------------------------------------------------------


@pytest.fixture
def small(tmp_path):
    tensors = {
        "layer/kernel": np.arange(6, dtype=np.float32).reshape(2, 3),
        "layer/bias": np.zeros(3, np.float32),
        "global_step": np.int64(42),
        "vocab": np.array([b"a", b"b"], dtype=object),
        "Z_upper": np.ones(1, np.int8),
    }
    prefix = tfckpt.save_tensors(tmp_path / "ckpt" / "model.ckpt-42", tensors)
    return prefix, tensors


def test_reader_conveniences(small):
    prefix, tensors = small
    with tfckpt.load_checkpoint(prefix) as reader:
        assert isinstance(reader, tfckpt.CheckpointReader)
        assert reader.prefix == prefix
        assert reader.format == "v2"
        assert reader.keys() == sorted(tensors)  # bytewise: "Z_upper" first
        assert list(reader) == reader.keys()
        assert len(reader) == 5
        assert "layer/kernel" in reader and "nope" not in reader and 3 not in reader
        assert reader.has_tensor("vocab") and not reader.has_tensor("vocab:0")
        assert _same(reader["layer/kernel"], tensors["layer/kernel"])
        assert reader["global_step"] == 42
        items = dict(reader.items())
        assert sorted(items) == sorted(tensors)
        assert items["vocab"].tolist() == [b"a", b"b"]
        shapes = reader.get_variable_to_shape_map()
        assert shapes == {
            "layer/kernel": [2, 3], "layer/bias": [3], "global_step": [], "vocab": [2],
            "Z_upper": [1],
        }  # fmt: skip
        assert all(type(d) is int for s in shapes.values() for d in s)
        dtype_map = reader.get_variable_to_dtype_map()
        assert {n: d.name for n, d in dtype_map.items()} == {
            "layer/kernel": "float32", "layer/bias": "float32", "global_step": "int64",
            "vocab": "string", "Z_upper": "int8",
        }  # fmt: skip
        assert dtype_map["layer/kernel"].as_numpy_dtype is np.float32
        debug = reader.debug_string()
        assert isinstance(debug, bytes)
        assert b"layer/kernel (DT_FLOAT) [2,3]\n" in debug  # TensorFlow's format
        assert "model.ckpt-42" in repr(reader) and "5 tensors" in repr(reader)
        with pytest.raises(TensorNotFoundError) as info:
            reader["missing"]
        assert isinstance(info.value, KeyError)
        assert info.value.tensor == "missing"
        expected = f"{reader.prefix!r}, tensor 'missing': not found in the checkpoint"
        assert str(info.value) == expected
        with pytest.raises(TensorNotFoundError):
            reader.get_tensor("layer")  # a prefix of names is not a name


def test_list_variables_and_load_variable(small):
    prefix, tensors = small
    assert tfckpt.list_variables(prefix) == [
        ("Z_upper", [1]),
        ("global_step", []),
        ("layer/bias", [3]),
        ("layer/kernel", [2, 3]),
        ("vocab", [2]),
    ]
    assert tfckpt.load_variable(prefix, "global_step") == 42
    assert tfckpt.load_variable(prefix, "global_step:0") == 42
    assert _same(tfckpt.load_variable(prefix, "layer/kernel:0"), tensors["layer/kernel"])
    with pytest.raises(TensorNotFoundError):
        tfckpt.load_variable(prefix, "nope:0")


def test_latest_checkpoint_and_state_files(tmp_path):
    directory = tmp_path / "train"
    directory.mkdir()
    assert tfckpt.latest_checkpoint(directory) is None  # no state file
    with pytest.raises(CheckpointNotFoundError):
        tfckpt.load_checkpoint(directory)
    tfckpt.save_tensors(directory / "ckpt-1", {"step": np.int64(1)})
    tfckpt.save_tensors(directory / "ckpt-2", {"step": np.int64(2)})
    assert tfckpt.latest_checkpoint(directory) is None  # still no state file
    write_state(directory, "ckpt-2", ["ckpt-1", "ckpt-2"])  # relative, as CheckpointManager
    assert tfckpt.latest_checkpoint(directory) == os.path.join(directory, "ckpt-2")
    assert tfckpt.latest_checkpoint(str(directory)) == os.path.join(directory, "ckpt-2")
    reader = tfckpt.load_checkpoint(directory)
    assert reader.prefix == os.path.join(directory, "ckpt-2")
    assert reader["step"] == 2
    assert tfckpt.load_variable(directory, "step") == 2
    write_state(directory, str(directory / "ckpt-1"))  # absolute, as the TF1 Saver
    assert tfckpt.latest_checkpoint(directory) == str(directory / "ckpt-1")
    assert tfckpt.load_checkpoint(directory)["step"] == 1
    write_state(directory, "ckpt-9")  # names a checkpoint that is gone
    assert tfckpt.latest_checkpoint(directory) is None
    with pytest.raises(CheckpointNotFoundError, match="ckpt-9"):
        tfckpt.load_checkpoint(directory)


def test_load_checkpoint_on_a_saved_model_directory(tmp_path):
    saved_model = tmp_path / "export" / "1"
    tfckpt.save_tensors(saved_model / "variables" / "variables", {"w": np.ones(2)})
    (saved_model / "saved_model.pb").write_bytes(b"")
    reader = tfckpt.load_checkpoint(saved_model)
    assert reader.prefix == str(saved_model / "variables" / "variables")
    assert reader["w"].tolist() == [1.0, 1.0]
    assert tfckpt.load_checkpoint(saved_model / "variables")["w"].tolist() == [1.0, 1.0]
    assert tfckpt.list_variables(saved_model) == [("w", [2])]


def test_load_checkpoint_on_the_corpus_saved_model():
    saved_model = (
        CORPUS / "tensorflow-serving/tensorflow_serving/servables/tensorflow/testdata"
        "/saved_model_half_plus_two_cpu/00000123"
    )
    reader = tfckpt.load_checkpoint(saved_model)
    assert reader.keys() == ["a", "a2", "b", "c", "c2"]
    assert reader["a"] == np.float32(0.5) and reader["b"] == np.float32(2.0)


@pytest.mark.parametrize("suffix", ["", ".index", ".data-00000-of-00001"])
def test_missing_checkpoint(tmp_path, suffix):
    with pytest.raises(CheckpointNotFoundError) as info:
        tfckpt.load_checkpoint(str(tmp_path / "nothing") + suffix)
    assert isinstance(info.value, FileNotFoundError)
    assert "nothing" in str(info.value)


# -- the command line ----------------------------------------------------------------------


def test_cli_inspect(small, capsys):
    prefix, _ = small
    assert cli.main(["inspect", prefix]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"# {prefix} (v2, 5 tensors)"
    # TensorFlow's debug_string lines, then each tensor's bytes in an aligned column.
    assert out[1:] == [
        "Z_upper (int8) [1]              1 B",
        "global_step (int64) []          8 B",
        "layer/bias (float32) [3]       12 B",
        "layer/kernel (float32) [2, 3]  24 B",
        "vocab (string) [2]              8 B",
        "# total: 5 tensors, 53 B",
    ]


def test_cli_inspect_values(small, capsys):
    prefix, _ = small
    assert cli.main(["inspect", "--values", prefix]) == 0
    out = capsys.readouterr().out
    assert "global_step (int64) []\n42\n" in out
    assert "[b'a' b'b']" in out


def test_cli_missing_path(tmp_path, capsys):
    missing = str(tmp_path / "no" / "such" / "model.ckpt")
    assert cli.main(["inspect", missing]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("tfckpt: error: ")
    assert missing in captured.err
    assert "Traceback" not in captured.err


def test_cli_corrupt_checkpoint(small, capsys):
    prefix, _ = small
    index = Path(prefix + ".index")
    index.write_bytes(index.read_bytes()[:-3])
    assert cli.main(["inspect", prefix]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tfckpt: error: ") and str(index) in err


def test_cli_usage_errors(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main([])
    assert info.value.code == 2
    with pytest.raises(SystemExit):
        cli.main(["frobnicate"])


def _run_module(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "src")
    return subprocess.run(
        [sys.executable, "-m", "tfckpt", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_python_dash_m_tfckpt(small, tmp_path):
    prefix, _ = small
    done = _run_module("inspect", prefix)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == f"# {prefix} (v2, 5 tensors)"
    assert "layer/kernel (float32) [2, 3]" in done.stdout
    missing = str(tmp_path / "missing")
    done = _run_module("inspect", missing)
    assert done.returncode == 1
    assert done.stderr.startswith("tfckpt: error: ") and missing in done.stderr
    assert "Traceback" not in done.stderr


def test_errors_are_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError):
        tfckpt.load_checkpoint(tmp_path / "x")
