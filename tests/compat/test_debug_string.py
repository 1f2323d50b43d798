"""CheckpointReader.debug_string() is TensorFlow's output byte for byte
(src/tfckpt/compat/debug_string.py).

The expected bytes below were printed by TensorFlow 2.21's
``tf.compat.v1.train.NewCheckpointReader(path).debug_string()`` for these fixtures;
tests/tf/test_compat_interop.py compares every fixture and corpus checkpoint live.
"""

from __future__ import annotations

import numpy as np

import tfckpt
from tests.conftest import FIXTURES

TF_V1_FORMAT = (
    b"uint16 (DT_UINT16) [3]\nstring (DT_STRING) [3]\nbool (DT_BOOL) [3]\n"
    b"complex64 (DT_COMPLEX64) [2]\nfloat32 (DT_FLOAT) [8]\ncomplex128 (DT_COMPLEX128) [1]\n"
    b"float16 (DT_HALF) [6]\nscalar_int64 (DT_INT64) []\nfloat64 (DT_DOUBLE) [2,2]\n"
    b"int16 (DT_INT16) [3]\nint64 (DT_INT64) [3]\nuint8 (DT_UINT8) [3]\nint8 (DT_INT8) [3]\n"
    b"int32 (DT_INT32) [4]\npartitioned (DT_FLOAT) [6,4], 3 slices\n"
    b"partitioned_string (DT_STRING) [5], 2 slices\n"
)
TF_V1_SHARDED = (
    b"dev1_labels (DT_STRING) [2]\nweights (DT_FLOAT) [2,3]\ntable (DT_INT32) [8,2], 2 slices\n"
    b"dev1_mask (DT_BOOL) [3]\nstep (DT_INT64) []\n"
)
TF_PARTITIONED = (
    b"\x00model/cube\x00\x01\x01\x03\x80\x82\x80\x83\x80\x83 (DT_INT64) [2,3,3]\n"
    b"\x00model/cube\x00\x01\x01\x03\x80\x82\x80\x83\x83\x82 (DT_INT64) [2,3,2]\n"
    b"\x00model/embedding\x00\x01\x01\x02\x80\x84\x80\x84 (DT_FLOAT) [4,4]\n"
    b"\x00model/embedding\x00\x01\x01\x02\x84\x83\x80\x84 (DT_FLOAT) [3,4]\n"
    b"\x00model/embedding\x00\x01\x01\x02\x87\x83\x80\x84 (DT_FLOAT) [3,4]\n"
    b"\x00model/vocab\x00\x01\x01\x01\x80\x84 (DT_STRING) [4]\n"
    b"\x00model/vocab\x00\x01\x01\x01\x84\x83 (DT_STRING) [3]\n"
    b"\x00model/wide\x00\x01\x01\x02\x80\x83\x80\x84 (DT_FLOAT) [3,4]\n"
    b"\x00model/wide\x00\x01\x01\x02\x80\x83\x84\x83 (DT_FLOAT) [3,3]\n"
    b"model/bias (DT_FLOAT) [2,3]\n"
)

# TensorFlow's DataType names (tensorflow/core/framework/types.proto) for tfckpt's names.
DT_NAMES = {
    "float32": "DT_FLOAT", "float64": "DT_DOUBLE", "float16": "DT_HALF",
    "bfloat16": "DT_BFLOAT16", "int8": "DT_INT8", "int16": "DT_INT16", "int32": "DT_INT32",
    "int64": "DT_INT64", "uint8": "DT_UINT8", "uint16": "DT_UINT16", "uint32": "DT_UINT32",
    "uint64": "DT_UINT64", "bool": "DT_BOOL", "string": "DT_STRING",
    "complex64": "DT_COMPLEX64", "complex128": "DT_COMPLEX128", "qint8": "DT_QINT8",
    "quint8": "DT_QUINT8", "qint16": "DT_QINT16", "quint16": "DT_QUINT16",
    "qint32": "DT_QINT32", "float8_e5m2": "DT_FLOAT8_E5M2",
    "float8_e4m3fn": "DT_FLOAT8_E4M3FN", "float8_e4m3fnuz": "DT_FLOAT8_E4M3FNUZ",
    "float8_e4m3b11fnuz": "DT_FLOAT8_E4M3B11FNUZ", "float8_e5m2fnuz": "DT_FLOAT8_E5M2FNUZ",
    "float4_e2m1fn": "DT_FLOAT4_E2M1FN", "int4": "DT_INT4", "uint4": "DT_UINT4",
    "int2": "DT_INT2", "uint2": "DT_UINT2",
}  # fmt: skip


def test_v1_checkpoints_list_in_tensorflows_hash_map_order():
    """V1 checkpoints (one file; two files with a tensor split across them) print in the
    order TensorFlow's reader iterates its std::unordered_map, with ", N slices"."""
    assert tfckpt.load_checkpoint(FIXTURES / "v1_format/model.ckpt").debug_string() == TF_V1_FORMAT
    sharded = FIXTURES / "v1_sharded/model.ckpt-?????-of-00002"
    assert tfckpt.load_checkpoint(sharded).debug_string() == TF_V1_SHARDED


def test_partitioned_v2_lists_slice_entries_under_their_keys():
    """A partitioned V2 checkpoint prints its slice entries under their binary keys and
    hides the full entries, as TensorFlow does."""
    assert tfckpt.load_checkpoint(FIXTURES / "partitioned/ckpt").debug_string() == TF_PARTITIONED


def test_every_dtype_is_named_as_tensorflow_names_it():
    """Each dtype is printed as its DataType enum name (DT_FLOAT, DT_HALF, DT_QINT8, ...);
    shapes as ``[d0,d1]`` without spaces."""
    text = tfckpt.load_checkpoint(FIXTURES / "dtypes/ckpt").debug_string().decode()
    lines = dict(line.split(" ", 1) for line in text.splitlines())
    assert set(lines) == set(DT_NAMES)
    for name, dt_name in DT_NAMES.items():
        assert lines[name].startswith(f"({dt_name}) ["), name
        assert " " not in lines[name].split(") ", 1)[1], name


def test_written_slices_and_scalars(tmp_path):
    """For a checkpoint tfckpt writes: scalars print ``[]``, a partitioned tensor's slices
    print under their keys (sorted before plain names) and its full entry is hidden."""
    with tfckpt.BundleWriter(tmp_path / "m") as writer:
        writer.add("step", np.array(3, np.int64))
        writer.add("w", np.zeros((2, 3), np.float32))
        writer.add_slice("emb", [4, 2], "0,2:-", np.zeros((2, 2), np.float32))
        writer.add_slice("emb", [4, 2], "2,2:-", np.ones((2, 2), np.float32))
    text = tfckpt.load_checkpoint(tmp_path / "m").debug_string()
    lines = text.split(b"\n")
    assert lines[-3:] == [b"step (DT_INT64) []", b"w (DT_FLOAT) [2,3]", b""]
    assert [line.split(b" (")[1] for line in lines[:2]] == [b"DT_FLOAT) [2,2]"] * 2
    assert all(line.startswith(b"\x00emb\x00") for line in lines[:2])
    assert b"\nemb (" not in text and not text.startswith(b"emb (")


def test_empty_checkpoint_prints_nothing(tmp_path):
    """A checkpoint without tensors prints the empty string."""
    prefix = tfckpt.save_tensors(tmp_path / "empty", {})
    assert tfckpt.load_checkpoint(prefix).debug_string() == b""
