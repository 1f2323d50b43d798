#!/usr/bin/env python3
"""Write the TensorFlow checkpoint fixtures in fixtures/ with real TensorFlow.

Run with a Python that has TensorFlow 2.21 installed, e.g.

    /tmp/tfenv/bin/python tools/make_fixtures.py            # rewrite fixtures/
    /tmp/tfenv/bin/python tools/make_fixtures.py --check    # regenerate into a
                                                            # temp dir and compare

Every fixture is written by TensorFlow itself (each in a fresh subprocess, so
that name counters, device configuration and graph/eager state never leak
between fixtures), then read back with ``tf.train.load_checkpoint``.
``fixtures/MANIFEST.json`` records TensorFlow's own view of every fixture,
using exactly the schema and value-description rules of the corpus manifest
(``/work/shared/corpus/make_manifest.py``: ``describe_value`` and
``describe_checkpoint``; the SSTable walker and those helpers are copied
below).  Per entry, ``source`` is replaced by ``description`` and ``writer``.
One tensor-level addition: where ``tf.train.load_checkpoint(...).get_tensor``
fails (``tf_error``), ``tf_restore_v2`` records what TF's ``RestoreV2`` op
returns for the same name (``sha256``/``sample`` or its own ``tf_error``).

``fixtures/README.md`` is generated too; its notes on what TensorFlow cannot
save come from probes run during generation.
"""

import argparse
import glob
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_OUT = os.path.join(REPO, "fixtures")
TABLE_MAGIC = 0xDB4775248B80FB57
SAMPLE_N = 8

ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "TF_ENABLE_ONEDNN_OPTS": "0",  # bit-reproducible CPU math (object_based)
    "CUDA_VISIBLE_DEVICES": "",
    "PYTHONHASHSEED": "0",
    "TF_DETERMINISTIC_OPS": "1",
}


# --------------------------------------------------------------------------
# Minimal SSTable (LevelDB table) walker, copied from the corpus'
# make_manifest.py: only for container facts TF's public API does not expose.
# --------------------------------------------------------------------------


def _varint(buf, pos):
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, pos


def _snappy_uncompress(buf):
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


def _block_records(block):
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


def sstable_info(path):
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

    index_kinds, data_kinds = set(), set()
    records, blocks = [], 0
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


def bundle_header(index_path):
    """num_shards and slice usage from a V2 .index (via TF's own protos)."""
    from tensorflow.core.protobuf import tensor_bundle_pb2

    info = sstable_info(index_path)
    header = tensor_bundle_pb2.BundleHeaderProto()
    sliced = []
    for key, value in info["records"]:
        if key == b"":
            header.ParseFromString(value)
            continue
        entry = tensor_bundle_pb2.BundleEntryProto()
        entry.ParseFromString(value)
        if entry.slices:
            sliced.append(key.decode("latin-1"))
    return {
        "num_shards": header.num_shards,
        "endianness": tensor_bundle_pb2.BundleHeaderProto.Endianness.Name(header.endianness),
        "sstable_data_blocks": info["blocks"],
        "sstable_index_block_compression": info["index_block_compression"],
        "sstable_data_block_compression": info["data_block_compression"],
        "sliced_tensors": sliced,
    }


def v1_info(path):
    """Block facts plus per-tensor slice counts of a V1 (SavedTensorSlices) file."""
    from tensorflow.core.util import saved_tensor_slice_pb2

    info = sstable_info(path)
    partitioned = []
    for key, value in info["records"]:
        if key != b"":
            continue
        sts = saved_tensor_slice_pb2.SavedTensorSlices()
        sts.ParseFromString(value)
        for t in sts.meta.tensor:
            full = all(not e.HasField("length") for s in t.slice for e in s.extent)
            if len(t.slice) != 1 or not full:
                partitioned.append(t.name)
    return {
        "sstable_data_blocks": info["blocks"],
        "sstable_index_block_compression": info["index_block_compression"],
        "sstable_data_block_compression": info["data_block_compression"],
        "sstable_records": len(info["records"]),
        "partitioned_tensors": partitioned,
    }


# --------------------------------------------------------------------------
# Values (copied from the corpus' make_manifest.py, unchanged).
# --------------------------------------------------------------------------


def _json_scalar(v):
    import numpy as np

    if isinstance(v, (bytes, np.bytes_)):
        return bytes(v).decode("latin-1")
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (complex, np.complexfloating)):
        return [_json_scalar(v.real), _json_scalar(v.imag)]
    f = float(v)
    if f != f:
        return "nan"
    if f in (float("inf"), float("-inf")):
        return "inf" if f > 0 else "-inf"
    return f


def describe_value(value, dtype_name):
    import numpy as np

    if dtype_name == "string":
        arr = np.asarray(value, dtype=object)
        h = hashlib.sha256()
        flat = [bytes(x) for x in arr.reshape(-1)]
        for x in flat:
            h.update(struct.pack("<Q", len(x)))
            h.update(x)
        return h.hexdigest(), [_json_scalar(x) for x in flat[:SAMPLE_N]]
    arr = np.ascontiguousarray(np.asarray(value))
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    digest = hashlib.sha256(arr.tobytes()).hexdigest()
    sample = [_json_scalar(x) for x in arr.reshape(-1)[:SAMPLE_N]]
    return digest, sample


# --------------------------------------------------------------------------
# Fixture catalogue.  Each writer runs in its own subprocess with the current
# directory set to the fixture's directory.
# --------------------------------------------------------------------------

FIXTURES = [
    # name (directory), [(prefix relative to fixtures/, format)], writer, description
    (
        "dtypes",
        [("dtypes/ckpt", "v2")],
        "tf.raw_ops.SaveV2 (one call, eager)",
        "one tensor per dtype TF 2.21 can save, named by the dtype: the 16 classic "
        "dtypes, 5 float8 + float4_e2m1fn (every bit pattern), int4/uint4/int2/uint2 "
        "(full range), 5 quantized dtypes; nan/-nan/signalling nan, +-inf, -0.0, "
        "subnormals, extreme ints",
    ),
    (
        "strings",
        [("strings/ckpt", "v2")],
        "tf.raw_ops.SaveV2 (one call, eager)",
        "string tensors: 0-d, empty string, embedded NULs, non-UTF-8 bytes, UTF-8, "
        "lengths at varint boundaries (127/128/16383/16384), 300- and 20000-byte 0-d "
        "strings, shapes [0], [2,0], [3,4], [2,2,2] and [2000]",
    ),
    (
        "shapes",
        [("shapes/ckpt", "v2")],
        "tf.raw_ops.SaveV2 (one call, eager)",
        "0-d tensors of several dtypes, empty tensors ([0], [3,0,2], [0,5]), [1], "
        "[1,1], rank 6 and rank 8, a 100 KiB 1-D float32 tensor",
    ),
    (
        "partitioned",
        [("partitioned/ckpt", "v2")],
        "tf.compat.v1.train.Saver (graph mode, V2, not sharded)",
        "partitioned variables (fixed_size_partitioner): [10,4] float32 in 3 parts on "
        "axis 0, [3,7] float32 in 2 parts on axis 1, [2,3,5] int64 in 2 parts on "
        "axis 2, a string variable in 2 parts (TF cannot read string slices); full "
        "entries with slices + per-slice entries under encoded keys; one "
        "unpartitioned variable; state file",
    ),
    (
        "sharded",
        [("sharded/ckpt", "v2")],
        "tf.compat.v1.train.Saver(sharded=True) (graph mode, V2, 2 logical CPUs)",
        "2 data shards (one per device) merged into one .index; a partitioned "
        "variable (3 parts) whose parts live in different shards; float32/int64/bool "
        "variables on /cpu:0, float16/bfloat16/string/int32 on /cpu:1; state file",
    ),
    (
        "max_shard_size",
        [("max_shard_size/ckpt", "v2")],
        "tf.train.Checkpoint.write + CheckpointOptions(experimental_sharding_callback="
        "MaxShardSizePolicy(max_shard_size=10000))",
        "TF2 size-based sharding: 7 data shards of <= ~10 KB; tensors larger than "
        "the room left in a shard are split into irregular slices spread over "
        "several shards (sliced full entries carrying a non-zero shard_id), "
        "including a 1200-element string variable, which TF then cannot read or "
        "restore (string slices)",
    ),
    (
        "many_keys",
        [("many_keys/ckpt", "v2")],
        "tf.raw_ops.SaveV2 (one call, eager)",
        "1100 one-element float32 tensors with 558-byte names (model/layer_NNNN/...): "
        "the .index spans 3 SSTable data blocks (prefix compression, restart "
        "points, a multi-entry index block); names are long rather than numerous "
        "to keep MANIFEST.json small",
    ),
    (
        "object_based",
        [("object_based/ckpt-1", "v2")],
        "tf.train.Checkpoint.save",
        "TF2 object-based names: tf.Module with variables, a dict and a list of "
        "variables, Keras 3 Dense + Keras 3 Adam (optimizer/_variables/N), "
        "tf.compat.v1.train.AdamOptimizer slot variables (.OPTIMIZER_SLOT), "
        "save_counter, _CHECKPOINTABLE_OBJECT_GRAPH; state file",
    ),
    (
        "saved_model",
        [("saved_model/variables/variables", "v2")],
        "tf.saved_model.save",
        "SavedModel of a small tf.Module (3 variables + a tf.function); the "
        "variables/ bundle is what matters",
    ),
    (
        "v1_format",
        [("v1_format/model.ckpt", "v1")],
        "tf.compat.v1.train.Saver(write_version=SaverDef.V1) (graph mode)",
        "legacy V1 (SavedTensorSlices SSTable): float32/float64/int32/int64/bool/"
        "string/float16/complex64/complex128/int8/uint8/int16/uint16 variables, "
        "special float values, partitioned float32 and string variables (TF's "
        "reader can only read some of these: see tf_error/tf_restore_v2); state file",
    ),
    (
        "v1_sharded",
        [("v1_sharded/model.ckpt-?????-of-00002", "v1")],
        "tf.compat.v1.train.Saver(write_version=SaverDef.V1, sharded=True) "
        "(graph mode, 2 logical CPUs)",
        "legacy V1 in 2 files model.ckpt-0000N-of-00002; the prefix is the glob "
        "pattern Saver returns and records in the state file; a partitioned "
        "variable whose slices are in different files",
    ),
    (
        "variant",
        [("variant/ckpt", "v2")],
        "tf.raw_ops.SaveV2 (one call, eager)",
        "a DT_VARIANT tensor (a TensorList) next to a float32 one: TF writes it "
        "(VariantTensorDataProto bytes) but its reader cannot return it",
    ),
    (
        "numpy_state",
        [("numpy_state/ckpt-1", "v2")],
        "tf.train.Checkpoint.save of tf.train.experimental.PythonState objects "
        "(TF-Agents NumpyState style)",
        "NumPy arrays serialized with numpy.save(allow_pickle=False) into 0-d string "
        "tensors under <attr>/.ATTRIBUTES/py_state: float64 3x4, int32 0-d, bool, "
        "Fortran-ordered float32, big-endian >i4, structured dtype; state file",
    ),
]


def _observe(key, value):
    """Reports a fact from a writer subprocess to the generator."""
    print("@@OBS " + json.dumps([key, value]), flush=True)


def _two_cpus():
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)


def _bits(np_dtype, uint_dtype, patterns):
    import numpy as np

    return np.array(patterns, dtype=uint_dtype).view(np_dtype)


def _save_v2(items):
    """One SaveV2 call; verifies TF reads every value back bit-exactly."""
    import numpy as np
    import tensorflow as tf

    names = [n for n, _ in items]
    tensors = [t for _, t in items]
    tf.raw_ops.SaveV2(
        prefix="ckpt", tensor_names=names, shape_and_slices=[""] * len(names), tensors=tensors
    )
    reader = tf.train.load_checkpoint("ckpt")
    for name, t in items:
        if t.dtype == tf.variant:
            continue
        got = reader.get_tensor(name)
        want = t.numpy()
        if t.dtype == tf.string:
            got, want = np.asarray(got, dtype=object), np.asarray(want, dtype=object)
            ok = got.shape == want.shape and got.tolist() == want.tolist()
        else:
            ok = (
                np.asarray(got).shape == want.shape
                and np.ascontiguousarray(got).tobytes() == want.tobytes()
            )
        if not ok:
            raise AssertionError(f"TF read back {name!r} differently")


def write_dtypes():
    import ml_dtypes
    import numpy as np
    import tensorflow as tf

    items = []
    f16 = [
        0x0000,
        0x8000,
        0x3C00,
        0xBC00,
        0x7BFF,
        0xFBFF,
        0x0400,
        0x0001,
        0x03FF,
        0x8001,
        0x7C00,
        0xFC00,
        0x7E00,
        0xFE00,
        0x7C01,
        0x4248,
    ]
    items.append(("float16", tf.constant(_bits(np.float16, np.uint16, f16))))
    bf16 = [
        0x0000,
        0x8000,
        0x3F80,
        0xBF80,
        0x7F7F,
        0xFF7F,
        0x0080,
        0x0001,
        0x007F,
        0x8001,
        0x7F80,
        0xFF80,
        0x7FC0,
        0xFFC0,
        0x7F81,
        0x4049,
    ]
    items.append(("bfloat16", tf.constant(_bits(ml_dtypes.bfloat16, np.uint16, bf16))))
    f32 = [
        0x00000000,
        0x80000000,
        0x3F800000,
        0xBF800000,
        0x7F7FFFFF,
        0xFF7FFFFF,
        0x00800000,
        0x00000001,
        0x007FFFFF,
        0x80000001,
        0x7F800000,
        0xFF800000,
        0x7FC00000,
        0xFFC00000,
        0x7F800001,
        0x40490FDB,
        0x3DCCCCCD,
    ]
    items.append(("float32", tf.constant(_bits(np.float32, np.uint32, f32))))
    f64 = [
        0x0000000000000000,
        0x8000000000000000,
        0x3FF0000000000000,
        0xBFF0000000000000,
        0x7FEFFFFFFFFFFFFF,
        0xFFEFFFFFFFFFFFFF,
        0x0010000000000000,
        0x0000000000000001,
        0x000FFFFFFFFFFFFF,
        0x8000000000000001,
        0x7FF0000000000000,
        0xFFF0000000000000,
        0x7FF8000000000000,
        0xFFF8000000000000,
        0x7FF0000000000001,
        0x400921FB54442D18,
        0x3FB999999999999A,
    ]
    items.append(("float64", tf.constant(_bits(np.float64, np.uint64, f64))))
    items.append(("int8", tf.constant(np.array([-128, -1, 0, 1, 127], np.int8))))
    items.append(("int16", tf.constant(np.array([-32768, -1, 0, 1, 32767], np.int16))))
    items.append(
        ("int32", tf.constant(np.array([[-2147483648, -1, 0], [1, 2147483647, 42]], np.int32)))
    )
    items.append(
        ("int64", tf.constant(np.array([-(2**63), -1, 0, 1, 2**63 - 1, 2**53 + 1], np.int64)))
    )
    items.append(("uint8", tf.constant(np.array([0, 1, 127, 128, 255], np.uint8))))
    items.append(("uint16", tf.constant(np.array([0, 1, 32768, 65535], np.uint16))))
    items.append(("uint32", tf.constant(np.array([0, 1, 2**31, 2**32 - 1], np.uint32))))
    items.append(("uint64", tf.constant(np.array([0, 1, 2**63, 2**64 - 1], np.uint64))))
    items.append(("bool", tf.constant(np.array([[True, False, True], [False, False, True]]))))
    c = np.array(
        [1, 2, -0.0, -0.0, np.inf, -np.inf, np.nan, 1, 3.4028235e38, 1e-45, 0.5, -0.25], np.float32
    ).view(np.complex64)
    items.append(("complex64", tf.constant(c)))
    c = np.array(
        [1, 2, -0.0, -0.0, np.inf, -np.inf, np.nan, 1, 1.7976931348623157e308, 5e-324, 0.5, -0.25],
        np.float64,
    ).view(np.complex128)
    items.append(("complex128", tf.constant(c)))
    items.append(
        (
            "string",
            tf.constant(np.array([b"", b"a", b"\x00\xff", "h\u00e9llo".encode()], dtype=object)),
        )
    )
    for name in (
        "float8_e5m2",
        "float8_e4m3fn",
        "float8_e4m3fnuz",
        "float8_e4m3b11fnuz",
        "float8_e5m2fnuz",
    ):
        arr = np.arange(256, dtype=np.uint8).view(getattr(ml_dtypes, name))
        items.append((name, tf.constant(arr.reshape(16, 16))))
    items.append(
        ("float4_e2m1fn", tf.constant(np.arange(16, dtype=np.uint8).view(ml_dtypes.float4_e2m1fn)))
    )
    items.append(("int4", tf.constant(np.arange(-8, 8).astype(ml_dtypes.int4))))
    items.append(("uint4", tf.constant(np.arange(0, 16).astype(ml_dtypes.uint4))))
    items.append(("int2", tf.constant(np.arange(-2, 2).astype(ml_dtypes.int2))))
    items.append(("uint2", tf.constant(np.arange(0, 4).astype(ml_dtypes.uint2))))
    items.append(("qint8", tf.constant(np.array([-128, -1, 0, 1, 127]), dtype=tf.qint8)))
    items.append(("quint8", tf.constant(np.array([0, 1, 128, 255]), dtype=tf.quint8)))
    items.append(("qint16", tf.constant(np.array([-32768, -1, 0, 32767]), dtype=tf.qint16)))
    items.append(("quint16", tf.constant(np.array([0, 1, 65535]), dtype=tf.quint16)))
    items.append(("qint32", tf.constant(np.array([-(2**31), -1, 0, 2**31 - 1]), dtype=tf.qint32)))
    for name, t in items:
        assert t.dtype.name == name, (name, t.dtype.name)
    _save_v2(items)


def _pattern_bytes(n, seed):
    """n printable ASCII bytes (keeps MANIFEST.json samples short)."""
    return bytes(0x21 + (seed + 7 * i) % 94 for i in range(n))


def write_strings():
    import numpy as np
    import tensorflow as tf

    def s(values, shape=None):
        arr = np.array(values, dtype=object)
        if shape is not None:
            arr = arr.reshape(shape)
        return tf.constant(arr, dtype=tf.string)

    items = [
        ("scalar", s(b"hello, world")),
        ("empty_scalar", s(b"")),
        (
            "nul_bytes",
            s([b"\x00", b"a\x00b", b"\x00\x00\x00\x00", b"trailing\x00", b"\x00leading"]),
        ),
        ("binary", s([bytes(range(256)), b"\xff\xfe\xfd", b"\x80"])),
        (
            "utf8",
            s(
                [
                    x.encode("utf-8")
                    for x in (
                        "h\u00e9llo w\u00f6rld",
                        "\u65e5\u672c\u8a9e\u30c6\u30ad\u30b9\u30c8",
                        "emoji \U0001f600\U0001f389",
                        "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac",
                        "",
                    )
                ]
            ),
        ),
        (
            "varint_boundaries",
            s(
                [
                    _pattern_bytes(n, n)
                    for n in (0, 1, 127, 128, 129, 200, 255, 256, 16383, 16384, 16385)
                ]
            ),
        ),
        ("long_300", s(_pattern_bytes(300, 3))),
        ("long_20000", s(_pattern_bytes(20000, 5))),
        ("empty_vector", s([], shape=(0,))),
        ("empty_2x0", s([], shape=(2, 0))),
        ("matrix", s([b"r%dc%d" % (r, c) for r in range(3) for c in range(4)], (3, 4))),
        ("rank3", s([b"", b"x", b"yy", b"\x00", b"zzz", b"w", b"", b"end"], (2, 2, 2))),
        ("many", s([b"item-%05d-" % i + b"x" * (i % 37) for i in range(2000)])),
    ]
    _save_v2(items)


def write_shapes():
    import numpy as np
    import tensorflow as tf

    items = [
        ("scalar_float32", tf.constant(np.float32(3.5))),
        ("scalar_int64", tf.constant(np.int64(-7))),
        ("scalar_bool", tf.constant(True)),
        ("scalar_complex128", tf.constant(np.complex128(1.5 - 2j))),
        ("scalar_uint8", tf.constant(np.uint8(200))),
        ("empty_1d", tf.constant(np.zeros([0], np.float32))),
        ("empty_3x0x2", tf.constant(np.zeros([3, 0, 2], np.float32))),
        ("empty_0x5_int64", tf.constant(np.zeros([0, 5], np.int64))),
        ("one", tf.constant(np.array([42.0], np.float64))),
        ("one_by_one", tf.constant(np.array([[-1]], np.int32))),
        ("rank6", tf.constant(np.arange(24, dtype=np.float64).reshape(2, 1, 3, 1, 2, 2))),
        ("rank8", tf.constant(np.arange(16, dtype=np.int16).reshape(1, 2, 1, 2, 1, 2, 1, 2))),
        (
            "vector_100k",
            tf.constant(np.arange(25600, dtype=np.float32) * np.float32(0.25) - np.float32(1000)),
        ),
    ]
    _save_v2(items)


def _slice_init(full):
    """A get_variable initializer that returns the partition's slice of full."""
    import tensorflow as tf

    def init(shape, dtype=None, partition_info=None):
        off = partition_info.var_offset if partition_info is not None else [0] * len(shape)
        part = full[tuple(slice(o, o + n) for o, n in zip(off, shape, strict=False))]
        return tf.constant(part, dtype=dtype)

    return init


def _graph_saver(build, save_path, **saver_kwargs):
    """Builds variables in a fresh graph and saves them with a v1 Saver."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        build(graph)
        saver = tf.compat.v1.train.Saver(**saver_kwargs)
        config = tf.compat.v1.ConfigProto(device_count={"CPU": 2})
        with tf.compat.v1.Session(graph=graph, config=config) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            return saver.save(sess, save_path, write_meta_graph=False)


def _get_var(name, value, dtype=None, partitioner=None):
    import numpy as np
    import tensorflow as tf

    value = np.asarray(value)
    if partitioner is None:
        return tf.compat.v1.get_variable(name, initializer=tf.constant(value, dtype=dtype))
    return tf.compat.v1.get_variable(
        name,
        shape=value.shape,
        dtype=dtype,
        initializer=_slice_init(value),
        partitioner=partitioner,
    )


def write_partitioned():
    import numpy as np
    import tensorflow as tf

    fsp = tf.compat.v1.fixed_size_partitioner

    def build(_):
        with tf.compat.v1.variable_scope("model"):
            _get_var(
                "embedding", np.arange(40, dtype=np.float32).reshape(10, 4) / 4, tf.float32, fsp(3)
            )
            _get_var(
                "wide",
                np.arange(21, dtype=np.float32).reshape(3, 7) - 10.5,
                tf.float32,
                fsp(2, axis=1),
            )
            _get_var(
                "cube",
                np.arange(30, dtype=np.int64).reshape(2, 3, 5) * -3,
                tf.int64,
                fsp(2, axis=2),
            )
            _get_var(
                "vocab", np.array([b"w%d" % i for i in range(7)], dtype=object), tf.string, fsp(2)
            )
            _get_var("bias", np.array([[0.5, -0.5, 1.0], [2.0, -2.0, 0.0]], np.float32), tf.float32)

    path = _graph_saver(build, "ckpt")
    assert path == "ckpt", path


def _two_device_fn(op):
    """Places partition 1 (and variables named dev1_*) on /cpu:1."""
    name = op.name
    return "/cpu:1" if ("/part_1" in name or "dev1_" in name) else "/cpu:0"


def write_sharded():
    import ml_dtypes
    import numpy as np
    import tensorflow as tf

    def build(graph):
        with graph.device(_two_device_fn):
            _get_var("global_step", np.int64(1234))
            _get_var("dense/kernel", np.arange(12, dtype=np.float32).reshape(4, 3) / 8)
            _get_var("dense/bias", np.array([0.25, -0.25, 1.0], np.float32))
            _get_var("flags", np.array([True, False, False, True]))
            # part_0 and part_2 on /cpu:0 (shard 0), part_1 on /cpu:1 (shard 1)
            _get_var(
                "emb",
                np.arange(12, dtype=np.float32).reshape(6, 2) - 6,
                tf.float32,
                tf.compat.v1.fixed_size_partitioner(3),
            )
            _get_var("dev1_names", np.array([b"alpha", b"", b"gamma\x00"], dtype=object), tf.string)
            _get_var("dev1_counts", np.array([[1, -2], [3, -4]], np.int32))
            _get_var("dev1_half", np.array([1.5, -0.0, 65504.0, np.inf], np.float16))
            _get_var("dev1_bf16", np.array([1.5, -2.0, 3.0], ml_dtypes.bfloat16), tf.bfloat16)

    path = _graph_saver(build, "ckpt", sharded=True)
    assert path == "ckpt", path


def write_max_shard_size():
    import numpy as np
    import tensorflow as tf

    m = tf.Module()
    m.big = tf.Variable(np.arange(6400, dtype=np.float32).reshape(64, 100) / 16)
    m.big3 = tf.Variable(np.arange(3000, dtype=np.float64).reshape(2, 3, 500) - 1500)
    m.counts = tf.Variable(np.arange(1000, dtype=np.int64) * 3)
    m.small = tf.Variable([1.0, 2.0, 3.0])
    m.words = tf.Variable(np.array([b"word-%04d" % i for i in range(1200)], dtype=object))
    m.step = tf.Variable(np.int64(5))
    ckpt = tf.train.Checkpoint(model=m)
    options = tf.train.CheckpointOptions(
        experimental_sharding_callback=tf.train.experimental.MaxShardSizePolicy(
            max_shard_size=10000
        )
    )
    path = ckpt.write("ckpt", options=options)
    assert path == "ckpt", path
    # Can TF restore what it wrote?  (Reported in README.md.)
    fresh = tf.Module()
    for name in ("big", "big3", "counts", "small", "words", "step"):
        old = getattr(m, name)
        setattr(fresh, name, tf.Variable(tf.zeros_like(old)))
    try:
        tf.train.Checkpoint(model=fresh).read("ckpt").assert_consumed()
        ok = all(
            np.array_equal(getattr(fresh, n).numpy(), getattr(m, n).numpy())
            for n in ("big", "big3", "counts", "small", "words", "step")
        )
        _observe("checkpoint_read", "ok" if ok else "restored different values")
    except Exception as e:
        _observe("checkpoint_read", _first_error_line(e))


MANY_KEYS_SCOPES = (
    "transformer_encoder_stack",
    "residual_block_with_pre_layer_normalization",
    "multi_head_self_attention_with_relative_position_bias",
    "query_key_value_fused_projection_for_all_attention_heads",
    "kernel_partitioned_along_output_axis_for_tensor_model_parallelism",
    "exponential_moving_average_shadow_copy_of_the_trainable_weights",
    "optimizer_state_for_the_adaptive_moment_estimation_update_rule",
    "first_moment_running_average_accumulator_kept_in_full_precision",
    "checkpoint_compatibility_alias_created_by_the_variable_name_mapper",
)


def many_keys_name(i):
    """~600-character names: few entries fill 3 SSTable blocks (the manifest,
    which repeats every name, stays small)."""
    scopes = "/".join(MANY_KEYS_SCOPES)
    return f"model/layer_{i:04d}/{scopes}/replica_{i % 7}/.ATTRIBUTES/VARIABLE_VALUE"


def write_many_keys():
    import numpy as np
    import tensorflow as tf

    items = [
        (many_keys_name(i), tf.constant(np.array([i * 0.5], np.float32)))
        for i in range(MANY_KEYS_N)
    ]
    _save_v2(items)


def write_object_based():
    import numpy as np
    import tensorflow as tf

    tf.keras.utils.set_random_seed(1234)

    class Net(tf.Module):
        def __init__(self):
            super().__init__(name="net")
            self.w = tf.Variable([[1.0, 2.0], [3.0, 4.0]], name="w")
            self.b = tf.Variable([0.5, -0.5], name="b")
            self.d = {
                "alpha": tf.Variable(1.5, name="alpha"),
                "beta": tf.Variable([1, 2, 3], dtype=tf.int32, name="beta"),
            }
            self.l = [
                tf.Variable(np.float64(2.0), name="l0"),
                tf.Variable([True, False], name="l1"),
            ]

    net = Net()
    dense = tf.keras.layers.Dense(
        3,
        kernel_initializer=tf.keras.initializers.Constant(0.1),
        bias_initializer="zeros",
        name="dense",
    )
    dense.build((None, 2))
    keras_adam = tf.keras.optimizers.Adam(learning_rate=0.01)
    v1_adam = tf.compat.v1.train.AdamOptimizer(learning_rate=0.01)

    x = tf.constant([[1.0, 2.0], [-1.0, 0.5]])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(dense(tf.matmul(x, net.w) + net.b) ** 2)
    grads = tape.gradient(loss, [*dense.trainable_variables, net.w, net.b])
    keras_adam.apply_gradients(zip(grads[:2], dense.trainable_variables, strict=False))
    v1_adam.apply_gradients(zip(grads[2:], [net.w, net.b], strict=False))

    ckpt = tf.train.Checkpoint(net=net, dense=dense, optimizer=keras_adam, v1_optimizer=v1_adam)
    path = ckpt.save("ckpt")
    assert path == "ckpt-1", path


def write_saved_model():
    import tensorflow as tf

    class Model(tf.Module):
        def __init__(self):
            super().__init__(name="model")
            self.scale = tf.Variable(2.0, name="scale")
            self.bias = tf.Variable([1.0, 2.0, 3.0], name="bias")
            self.table = tf.Variable([[1, 2], [3, 4]], dtype=tf.int64, name="table")

        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
        def __call__(self, x):
            return x * self.scale + self.bias

    tf.saved_model.save(Model(), ".")


def _v1_values():
    import numpy as np

    return [
        (
            "float32",
            np.array([0.0, -0.0, 1.5, np.inf, -np.inf, np.nan, 1e-45, 3.4028235e38], np.float32),
        ),
        ("float64", np.array([[1.0, -2.5], [np.pi, 5e-324]], np.float64)),
        ("int32", np.array([-2147483648, -1, 0, 2147483647], np.int32)),
        ("int64", np.array([-(2**63), 0, 2**63 - 1], np.int64)),
        ("bool", np.array([True, False, True])),
        ("string", np.array([b"", b"v1 \x00 bytes", "\u00fc".encode()], dtype=object)),
        ("float16", np.array([1.0, -0.0, 65504.0, np.inf, np.nan, 6e-8], np.float16)),
        ("complex64", np.array([1 + 2j, -0.5 - 0.25j], np.complex64)),
        ("complex128", np.array([3 - 4j], np.complex128)),
        ("int8", np.array([-128, 0, 127], np.int8)),
        ("uint8", np.array([0, 128, 255], np.uint8)),
        ("int16", np.array([-32768, 0, 32767], np.int16)),
        ("uint16", np.array([0, 1, 65535], np.uint16)),
        ("scalar_int64", np.int64(42)),
    ]


def write_v1_format():
    import numpy as np
    import tensorflow as tf

    fsp = tf.compat.v1.fixed_size_partitioner

    def build(_):
        for name, value in _v1_values():
            _get_var(name, value)
        _get_var(
            "partitioned", np.arange(24, dtype=np.float32).reshape(6, 4) * 0.5, tf.float32, fsp(3)
        )
        _get_var(
            "partitioned_string",
            np.array([b"p%d" % i for i in range(5)], dtype=object),
            tf.string,
            fsp(2),
        )

    path = _graph_saver(build, "model.ckpt", write_version=tf.compat.v1.train.SaverDef.V1)
    assert path == "model.ckpt", path


def write_v1_sharded():
    import numpy as np
    import tensorflow as tf

    def build(graph):
        with graph.device(_two_device_fn):
            _get_var("weights", np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5)
            _get_var("step", np.int64(77))
            _get_var("dev1_labels", np.array([b"cat", b"dog"], dtype=object))
            _get_var("dev1_mask", np.array([False, True, True]))
            _get_var(
                "table",
                np.arange(16, dtype=np.int32).reshape(8, 2),
                tf.int32,
                tf.compat.v1.fixed_size_partitioner(2),
            )

    path = _graph_saver(
        build, "model.ckpt", sharded=True, write_version=tf.compat.v1.train.SaverDef.V1
    )
    assert path == "model.ckpt-?????-of-00002", path


def write_variant():
    import tensorflow as tf

    tensor_list = tf.raw_ops.TensorListFromTensor(
        tensor=tf.constant([1.0, 2.0, 3.0]), element_shape=tf.constant([], dtype=tf.int32)
    )
    _save_v2([("tensor_list", tensor_list), ("plain", tf.constant([4.0, 5.0]))])


def write_numpy_state():
    import numpy as np
    import tensorflow as tf

    class NumpyWrapper(tf.train.experimental.PythonState):
        """Like tf_agents.utils.numpy_storage._NumpyWrapper."""

        def __init__(self, array):
            self.array = array

        def serialize(self):
            string_file = io.BytesIO()
            try:
                np.save(string_file, self.array, allow_pickle=False)
                serialized = string_file.getvalue()
            finally:
                string_file.close()
            return serialized

        def deserialize(self, string_value):
            string_file = io.BytesIO(string_value)
            try:
                self.array = np.load(string_file, allow_pickle=False)
            finally:
                string_file.close()

    class NumpyState(tf.Module):
        """Wraps NumPy array attributes, like tf_agents' NumpyState."""

        def __setattr__(self, name, value):
            if isinstance(value, (np.ndarray, np.generic)):
                value = NumpyWrapper(value)
            super().__setattr__(name, value)

    arrays = NumpyState()
    x = np.zeros([3, 4])
    x[1, 2] = 4.0
    arrays.x = x
    arrays.count = np.array(7, dtype=np.int32)
    arrays.mask = np.array([True, False, True, True])
    arrays.fortran = np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    arrays.big_endian = np.arange(-2, 3, dtype=">i4")
    arrays.records = np.array(
        [(1, 2.5, b"ab"), (-3, -1.0, b"xyz")], dtype=[("a", "<i2"), ("b", "<f8"), ("c", "S3")]
    )
    ckpt = tf.train.Checkpoint(numpy_arrays=arrays)
    path = ckpt.save("ckpt")
    assert path == "ckpt-1", path
    # TF's reader gives back exactly what serialize() produced.
    reader = tf.train.load_checkpoint(path)
    for name in ("x", "count", "mask", "fortran", "big_endian", "records"):
        value = reader.get_tensor(f"numpy_arrays/{name}/.ATTRIBUTES/py_state")
        assert value == getattr(arrays, name).serialize(), name


WRITERS = {
    "dtypes": write_dtypes,
    "strings": write_strings,
    "shapes": write_shapes,
    "partitioned": write_partitioned,
    "sharded": write_sharded,
    "max_shard_size": write_max_shard_size,
    "many_keys": write_many_keys,
    "object_based": write_object_based,
    "saved_model": write_saved_model,
    "v1_format": write_v1_format,
    "v1_sharded": write_v1_sharded,
    "variant": write_variant,
    "numpy_state": write_numpy_state,
}
MANY_KEYS_N = 1100
NEEDS_TWO_CPUS = {"sharded", "v1_sharded"}


def _child_write(name, root):
    if name in NEEDS_TWO_CPUS:
        _two_cpus()
    directory = os.path.join(root, name)
    os.makedirs(directory, exist_ok=True)
    os.chdir(directory)
    WRITERS[name]()


# --------------------------------------------------------------------------
# Probes: what TF 2.21 cannot save (results go into README.md).
# --------------------------------------------------------------------------


def _first_error_line(e):
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
    # Graph-mode errors start with "Graph execution error:" and name the real
    # problem a few lines later; keep the informative line.
    for ln in lines:
        if not ln.startswith(
            ("Graph execution error", "Detected at node", "Node:", "File ", "Original stack", "[[")
        ):
            return f"{type(e).__name__}: {ln}"
    return f"{type(e).__name__}: {lines[0] if lines else ''}"


def _probe_tensor(dtype):
    import ml_dtypes
    import numpy as np
    import tensorflow as tf

    if dtype == tf.string:
        return tf.constant([b"a", b"b"])
    if dtype == tf.variant:
        return tf.raw_ops.TensorListFromTensor(
            tensor=tf.constant([1.0]), element_shape=tf.constant([], dtype=tf.int32)
        )
    if dtype == tf.resource:
        return tf.Variable(1.0).handle
    if dtype.is_quantized:
        return tf.constant(np.array([1, 0]), dtype=dtype)
    np_dtype = getattr(ml_dtypes, dtype.name, None) or dtype.as_numpy_dtype
    return tf.constant(np.array([1, 0]).astype(np_dtype))


def _all_dtypes():
    import tensorflow as tf
    from tensorflow.core.framework import types_pb2

    out = []
    for name, num in types_pb2.DataType.items():
        if name.endswith("_REF") or num == 0:
            continue
        out.append(tf.as_dtype(num))
    return out


def _child_probe(kind, work):
    """Prints a JSON report; kind 'resource' is run alone (it aborts)."""
    import numpy as np
    import tensorflow as tf

    E = tf.dtypes.experimental
    os.chdir(work)
    result = {}
    if kind == "resource":
        sys.stdout.write("RESOURCE_START\n")
        sys.stdout.flush()
        tf.raw_ops.SaveV2(
            prefix="r",
            tensor_names=["r"],
            shape_and_slices=[""],
            tensors=[_probe_tensor(tf.resource)],
        )
        result["resource"] = "saved"
        print(json.dumps(result))
        return
    savev2 = {}
    v1 = {}
    for dtype in _all_dtypes():
        if dtype == tf.resource:
            continue
        name = dtype.name
        try:
            t = _probe_tensor(dtype)
        except Exception as e:
            savev2[name] = {"create": _first_error_line(e)}
            continue
        rec = {}
        try:
            tf.raw_ops.SaveV2(
                prefix="v2_" + name, tensor_names=["t"], shape_and_slices=[""], tensors=[t]
            )
            rec["save"] = "ok"
            try:
                tf.train.load_checkpoint("v2_" + name).get_tensor("t")
                rec["read"] = "ok"
            except Exception as e:
                rec["read"] = _first_error_line(e)
        except Exception as e:
            rec["save"] = _first_error_line(e)
        savev2[name] = rec
        # V1 (SaveSlices, what Saver(write_version=V1) runs), graph mode.
        rec = {}
        graph = tf.Graph()
        with graph.as_default():
            value = t.numpy() if dtype not in (tf.variant,) else None
            if value is None:
                rec["save"] = "skipped (variant)"
                v1[name] = rec
                continue
            const = tf.constant(value, dtype=dtype)
            op = tf.raw_ops.SaveSlices(
                filename="v1_" + name, tensor_names=["t"], shapes_and_slices=[""], data=[const]
            )
            try:
                with tf.compat.v1.Session(graph=graph) as sess:
                    sess.run(op)
                rec["save"] = "ok"
            except Exception as e:
                rec["save"] = _first_error_line(e)
        if rec["save"] == "ok":
            try:
                tf.train.load_checkpoint("v1_" + name).get_tensor("t")
                rec["read"] = "ok"
            except Exception as e:
                rec["read"] = _first_error_line(e)
            try:
                tf.raw_ops.RestoreV2(
                    prefix="v1_" + name, tensor_names=["t"], shape_and_slices=[""], dtypes=[dtype]
                )
                rec["restore_v2"] = "ok"
            except Exception as e:
                rec["restore_v2"] = _first_error_line(e)
        v1[name] = rec
    result["savev2"] = savev2
    result["v1"] = v1
    # Other ways of making the narrow dtypes (tf.constant from ml_dtypes works).
    other = {}
    for dt in (
        E.int4,
        E.uint4,
        E.int2,
        E.uint2,
        E.float4_e2m1fn,
        E.float8_e5m2,
        E.float8_e4m3fn,
        E.float8_e4m3fnuz,
        E.float8_e4m3b11fnuz,
        E.float8_e5m2fnuz,
    ):
        for how in ("cast", "bitcast"):
            try:
                if how == "cast":
                    tf.cast(tf.constant([1.0, 2.0]), dt)
                else:
                    tf.bitcast(tf.constant([1, 2], dtype=tf.uint8), dt)
                other[f"tf.{how}(..., {dt.name})"] = "ok"
            except Exception as e:
                other[f"tf.{how}(..., {dt.name})"] = _first_error_line(e)
    result["create"] = other
    result["versions"] = {"tensorflow": tf.__version__, "numpy": np.__version__}
    import ml_dtypes

    result["versions"]["ml_dtypes"] = ml_dtypes.__version__
    print(json.dumps(result))


def run_probes(work):
    """Runs the probes in subprocesses, in the scratch directory work."""
    out = {}
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--_probe", "all", "--_root", work],
        capture_output=True,
        text=True,
        env=_child_env(),
        check=True,
    )
    out.update(json.loads(proc.stdout.strip().splitlines()[-1]))
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--_probe", "resource", "--_root", work],
        capture_output=True,
        text=True,
        env=_child_env(),
    )
    if proc.returncode == 0:
        out["resource"] = "saved"
    else:
        fatal = [ln for ln in proc.stderr.splitlines() if "Check failed" in ln]
        msg = fatal[0] if fatal else proc.stderr.strip().splitlines()[-1:]
        if isinstance(msg, str) and "] " in msg:
            msg = msg.split("] ", 1)[1]
        out["resource"] = f"process aborted (exit code {proc.returncode}): {msg}"
    return out


# --------------------------------------------------------------------------
# Manifest.
# --------------------------------------------------------------------------


def is_sstable(path):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            if f.tell() < 48:
                return False
            f.seek(-8, 2)
            return struct.unpack("<Q", f.read(8))[0] == TABLE_MAGIC
    except OSError:
        return False


def state_file_for(prefix):
    from google.protobuf import text_format
    from tensorflow.python.training import checkpoint_state_pb2

    path = os.path.dirname(prefix) + "/checkpoint"
    if not os.path.isfile(path) or is_sstable(path):
        return None
    state = checkpoint_state_pb2.CheckpointState()
    with open(path, encoding="utf-8") as f:
        text_format.Parse(f.read(), state)
    out = {
        "path": path,
        "model_checkpoint_path": state.model_checkpoint_path,
        "all_model_checkpoint_paths": list(state.all_model_checkpoint_paths),
    }
    if state.all_model_checkpoint_timestamps:
        out["all_model_checkpoint_timestamps"] = list(state.all_model_checkpoint_timestamps)
    if state.last_preserved_timestamp:
        out["last_preserved_timestamp"] = state.last_preserved_timestamp
    return out


def files_of(prefix, fmt):
    """Files of a prefix (cwd = fixtures root); V1 prefixes may be globs."""
    if fmt == "v1":
        names = sorted(glob.glob(prefix))
    else:
        names = sorted([prefix + ".index", *glob.glob(glob.escape(prefix) + ".data-*")])
    out = []
    for name in names:
        with open(name, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        out.append(
            {
                "path": name.replace(os.sep, "/"),
                "size": os.path.getsize(name),
                "sha256": digest,
            }
        )
    return out


def _restore_v2(prefix, name, dtype_name):
    import tensorflow as tf

    try:
        value = tf.raw_ops.RestoreV2(
            prefix=prefix,
            tensor_names=[name],
            shape_and_slices=[""],
            dtypes=[tf.as_dtype(dtype_name)],
        )[0]
        sha, sample = describe_value(value.numpy(), dtype_name)
        return {"sha256": sha, "sample": sample}
    except Exception as e:
        result = {"tf_error": f"{type(e).__name__}: {str(e).strip().splitlines()[0]}"}
    by_slices = _restore_v2_by_slices(prefix, name, dtype_name)
    if by_slices is not None:
        result.update(by_slices)
    return result


def _restore_v2_by_slices(prefix, name, dtype_name):
    """TF cannot assemble some partitioned tensors (string slices) but its RestoreV2 op
    returns each stored slice when asked for exactly that slice, as Saver does when it
    restores a partitioned variable.  Assembles those into the full tensor."""
    import numpy as np
    import tensorflow as tf
    from tensorflow.core.protobuf import tensor_bundle_pb2

    index = prefix + ".index"
    if not os.path.exists(index):
        return None
    entry = None
    for key, value in sstable_info(index)["records"]:
        if key == name.encode():
            entry = tensor_bundle_pb2.BundleEntryProto()
            entry.ParseFromString(value)
    if entry is None or not entry.slices:
        return None
    full_shape = [d.size for d in entry.shape.dim]
    out = np.empty(full_shape, dtype=object if dtype_name == "string" else None)
    for proto in entry.slices:
        spec, region = [], []
        for extent, dim in zip(proto.extent, full_shape):
            if extent.HasField("length"):
                spec.append(f"{extent.start},{extent.length}")
                region.append(slice(extent.start, extent.start + extent.length))
            else:
                spec.append("-")
                region.append(slice(0, dim))
        shape_and_slice = " ".join(str(d) for d in full_shape) + " " + ":".join(spec)
        part = tf.raw_ops.RestoreV2(
            prefix=prefix,
            tensor_names=[name],
            shape_and_slices=[shape_and_slice],
            dtypes=[tf.as_dtype(dtype_name)],
        )[0].numpy()
        out[tuple(region)] = part
    sha, sample = describe_value(out, dtype_name)
    return {"sha256": sha, "sample": sample, "oracle": "RestoreV2 per stored slice"}


def describe_checkpoint(prefix, fmt, writer, description):
    import tensorflow as tf

    entry = {"path": prefix, "format": fmt, "writer": writer, "description": description}
    files = files_of(prefix, fmt)
    entry["files"] = files

    container = {}
    try:
        if fmt == "v2":
            container = bundle_header(prefix + ".index")
            present = {f["path"] for f in files}
            n = container["num_shards"]
            expected = [f"{prefix}.data-{i:05d}-of-{n:05d}" for i in range(n)]
            container["missing_data_files"] = [p for p in expected if p not in present]
        elif len(files) == 1 and files[0]["path"] == prefix:
            container = v1_info(prefix)
        else:  # sharded V1: the prefix is a glob pattern over several files
            container = {"v1_files": [dict(path=f["path"], **v1_info(f["path"])) for f in files]}
    except Exception as e:  # container facts are informational only
        container = {"container_error": f"{type(e).__name__}: {e}"}
    entry["container"] = container

    state = state_file_for(prefix)
    if state:
        entry["state_file"] = state

    try:
        reader = tf.train.load_checkpoint(prefix)
        dtypes = reader.get_variable_to_dtype_map()
        shapes = reader.get_variable_to_shape_map()
    except Exception as e:
        entry["tf_error"] = f"{type(e).__name__}: {str(e).strip()}"
        return entry

    tensors = {}
    for name in sorted(dtypes):
        info = {"dtype": dtypes[name].name, "shape": [int(d) for d in shapes[name]]}
        try:
            value = reader.get_tensor(name)
            info["sha256"], info["sample"] = describe_value(value, info["dtype"])
        except Exception as e:
            info["tf_error"] = f"{type(e).__name__}: {str(e).strip().splitlines()[0]}"
            info["tf_restore_v2"] = _restore_v2(prefix, name, info["dtype"])
        tensors[name] = info
    entry["tensors"] = tensors
    return entry


def build_manifest(root):
    if sys.byteorder != "little":
        raise SystemExit("sha256 values are defined over little-endian bytes")
    cwd = os.getcwd()
    os.chdir(root)  # so paths and TF error messages are fixtures-relative
    try:
        entries = []
        for _, prefixes, writer, description in FIXTURES:
            for prefix, fmt in prefixes:
                entries.append(describe_checkpoint(prefix, fmt, writer, description))
        return sorted(entries, key=lambda e: e["path"])
    finally:
        os.chdir(cwd)


def sanity_check(manifest):
    """Asserts the structural facts each fixture exists to exercise."""
    by_path = {e["path"]: e for e in manifest}
    problems = []

    def need(cond, what):
        if not cond:
            problems.append(what)

    for e in manifest:
        need("tf_error" not in e, f"{e['path']}: TF cannot open it: {e.get('tf_error')}")
        need(e["files"], f"{e['path']}: no files")
    c = by_path["many_keys/ckpt"]["container"]
    need(c.get("sstable_data_blocks", 0) >= 3, "many_keys: < 3 data blocks")
    c = by_path["sharded/ckpt"]["container"]
    need(c.get("num_shards", 0) >= 2, "sharded: < 2 shards")
    need(c.get("sliced_tensors"), "sharded: no sliced tensor")
    c = by_path["max_shard_size/ckpt"]["container"]
    need(c.get("num_shards", 0) >= 2, "max_shard_size: < 2 shards")
    need(c.get("sliced_tensors"), "max_shard_size: nothing was split")
    c = by_path["partitioned/ckpt"]["container"]
    need(len(c.get("sliced_tensors", [])) >= 4, "partitioned: missing slices")
    c = by_path["v1_format/model.ckpt"]["container"]
    need(c.get("partitioned_tensors"), "v1_format: no partitioned tensor")
    c = by_path["v1_sharded/model.ckpt-?????-of-00002"]["container"]
    need(len(c.get("v1_files", [])) == 2, "v1_sharded: not 2 files")
    need("state_file" in by_path["object_based/ckpt-1"], "object_based: no state file")
    for e in manifest:
        for name, t in e.get("tensors", {}).items():
            if "tf_error" in t and e["path"] not in (
                "partitioned/ckpt",
                "v1_format/model.ckpt",
                "variant/ckpt",
                "max_shard_size/ckpt",
                "v1_sharded/model.ckpt-?????-of-00002",
            ):
                problems.append(f"{e['path']}: {name} unreadable: {t['tf_error']}")
    if problems:
        raise SystemExit("fixture sanity check failed:\n  " + "\n  ".join(problems))


def tf_view(manifest):
    """The part of the manifest that is TensorFlow's view of the fixtures."""
    keep = ("path", "format", "tensors", "tf_error")
    return [{k: e[k] for k in keep if k in e} for e in manifest]


# --------------------------------------------------------------------------
# README.
# --------------------------------------------------------------------------


def _fmt_size(n):
    return f"{n / 1000.0:.1f} KB" if n < 1000000 else f"{n / 1e6:.2f} MB"


def _dir_size(path):
    total = 0
    for base, _, files in os.walk(path):
        for name in files:
            total += os.path.getsize(os.path.join(base, name))
    return total


def write_readme(root, manifest, probes):
    by_path = {e["path"]: e for e in manifest}
    lines = []
    add = lines.append
    versions = probes.get("versions", {})
    add("# TensorFlow checkpoint fixtures")
    add("")
    tf_v, np_v, ml_v = (versions.get(k, "?") for k in ("tensorflow", "numpy", "ml_dtypes"))
    add(
        f"Small checkpoints written by **real TensorFlow {tf_v}** (numpy {np_v}, "
        f"ml_dtypes {ml_v}) with `tools/make_fixtures.py`, for testing the TF-free reader/writer. "
        "`MANIFEST.json` records TensorFlow's own view of every fixture "
        "(`tf.train.load_checkpoint`: dtype, shape, sha256 and sample of every "
        "tensor), in the same schema and with the same value rules as "
        "`/work/shared/corpus/MANIFEST.json`."
    )
    add("")
    add("Regenerate (rewrites `fixtures/` from scratch, about a minute):")
    add("")
    add("    TF_CPP_MIN_LOG_LEVEL=3 /tmp/tfenv/bin/python tools/make_fixtures.py")
    add("")
    add(
        "Check that TensorFlow still sees the same thing (regenerates into a temp "
        "dir and compares the TF view, i.e. every entry's `path`, `format`, "
        "`tensors`; file-level differences are reported but do not fail):"
    )
    add("")
    add("    TF_CPP_MIN_LOG_LEVEL=3 /tmp/tfenv/bin/python tools/make_fixtures.py --check")
    add("")
    add("| path (prefix) | format | writer | tensors | files (bytes) | what it exercises |")
    add("| --- | --- | --- | --- | --- | --- |")
    for e in manifest:
        n_files = len(e["files"])
        size = sum(f["size"] for f in e["files"])
        tensors = e.get("tensors", {})
        dtypes = sorted({t["dtype"] for t in tensors.values()})
        unreadable = sum(1 for t in tensors.values() if "tf_error" in t)
        if len(dtypes) <= 6:
            tcell = f"{len(tensors)} ({', '.join(dtypes)})"
        else:
            tcell = f"{len(tensors)} ({len(dtypes)} dtypes)"
        if unreadable:
            tcell += f"; **{unreadable} unreadable by TF**"
        writer = e["writer"].replace("|", "\\|")
        add(
            f"| `{e['path']}` | {e['format']} | {writer} | {tcell} | {n_files} ({size}) "
            f"| {e['description']} |"
        )
    add("")
    total = _dir_size(root)
    add(f"Total size of `fixtures/` apart from this README: {_fmt_size(total)}.")
    add("")
    add("## Manifest schema")
    add("")
    add(
        "A JSON list, one entry per prefix, sorted by `path`; all paths are relative "
        "to `fixtures/` with forward slashes. Same keys and rules as the corpus "
        "manifest (`path`, `format`, `files`, `container`, `state_file`, `tensors` "
        "with `dtype` = TF dtype name, `shape`, `sha256`, `sample` = first 8 "
        "flattened values; or `tf_error` where TF's reader fails). Differences:"
    )
    add("")
    add("- `source` is replaced by `writer` (the TF API that wrote it) and `description`.")
    add(
        "- `tf_restore_v2` (tensor level, only next to a `tf_error`): what TF's "
        "`RestoreV2` op returns for that name with `shape_and_slices=['']` "
        "(`sha256`/`sample`, or its own `tf_error`). The op assembles V1 "
        "partitions and reads V1 dtypes that `load_checkpoint` refuses, so it is "
        "TF's answer for those tensors."
    )
    add(
        "- `container.v1_files` (sharded V1 only): the corpus' V1 container facts "
        "per file, because the prefix is the glob `model.ckpt-?????-of-00002`."
    )
    add(
        "- Value rules are unchanged, so `int4`/`uint4`/`int2`/`uint2` samples "
        "come out as floats (`-8.0`): `ml_dtypes` integer scalars are not "
        "`np.integer`. Hashes are over the bytes TF returns, which for these "
        "dtypes is one byte per element (see below)."
    )
    add("")

    add(f"## What TensorFlow {tf_v} cannot save")
    add("")
    sv = probes.get("savev2", {})
    bad = {k: v for k, v in sv.items() if v.get("save") != "ok" or v.get("read") != "ok"}
    add(
        "Probed during generation: one `tf.raw_ops.SaveV2` per `DataType` enum value "
        "(non-`_REF`), then `tf.train.load_checkpoint(...).get_tensor`."
    )
    add("")
    good = ", ".join(f"`{k}`" for k in sorted(sv) if k not in bad)
    add(f"- Every dtype of the brief saves and reads back with V2 (`SaveV2`): {good}.")
    add(f"- `resource`: {probes.get('resource', '?')}. (So there is no `resource` fixture.)")
    for k, v in sorted(bad.items()):
        add(f"- `{k}`: save: {v.get('save', v.get('create'))}; read: {v.get('read', '-')}")
    add(
        "- The fixtures create the narrow dtypes with `tf.constant` from `ml_dtypes` "
        "arrays (`tf.constant(np.arange(-8, 8).astype(ml_dtypes.int4))`), which "
        "works for all of them. Other routes (`tf.cast` from float32, `tf.bitcast` "
        "from uint8):"
    )
    for k, v in sorted(probes.get("create", {}).items()):
        add(f"  - `{k}`: {v}")
    add("")
    add(
        "Legacy V1 (`SaveSlices`, which `Saver(write_version=SaverDef.V1)` runs), "
        "probed the same way; `read` is `tf.train.load_checkpoint(...).get_tensor`, "
        "`restore_v2` the `RestoreV2` op:"
    )
    add("")
    add("| dtype | V1 save | load_checkpoint read | RestoreV2 |")
    add("| --- | --- | --- | --- |")
    for k, v in sorted(probes.get("v1", {}).items()):
        add(
            "| `{}` | {} | {} | {} |".format(
                k, v.get("save", "-"), v.get("read", "-"), v.get("restore_v2", "-")
            )
        )
    add("")

    add("## On-disk observations")
    add("")
    for para in _observations(by_path):
        add("- " + para)
    add("")
    add("## Notes")
    add("")
    for para in NOTES:
        add("- " + para)
    add("")
    with open(os.path.join(root, "README.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def _observations(by_path):
    from tensorflow.core.protobuf import tensor_bundle_pb2

    obs = []
    ms = by_path["max_shard_size/ckpt"]
    info = sstable_info(os.path.join(_ROOT[0], "max_shard_size/ckpt.index"))
    parts = {}
    full_shard = {}
    for key, value in info["records"]:
        if not key:
            continue
        entry = tensor_bundle_pb2.BundleEntryProto()
        entry.ParseFromString(value)
        if key.startswith(b"\x00"):
            name = key[1:].split(b"\x00", 1)[0].decode()
            parts.setdefault(name, []).append((entry.shard_id, [d.size for d in entry.shape.dim]))
        elif entry.slices:
            full_shard[key.decode()] = entry.shard_id
    sizes = [f["size"] for f in ms["files"] if ".data-" in f["path"]]
    inner, inner_cuts = "none", 0
    for key, value in info["records"]:
        if key and not key.startswith(b"\x00"):
            entry = tensor_bundle_pb2.BundleEntryProto()
            entry.ParseFromString(value)
            dims = [d.size for d in entry.shape.dim]
            for sl in entry.slices:
                ext = [
                    (e.start, e.length if e.HasField("length") else dims[i])
                    for i, e in enumerate(sl.extent)
                ]
                cut = [i for i, (st, ln) in enumerate(ext) if (st, ln) != (0, dims[i])]
                if len(dims) > 1 and cut and cut[-1] > 0 and len(cut) > inner_cuts:
                    inner_cuts = len(cut)
                    extents = ", ".join(f"{st}:{st + ln}" for st, ln in ext)
                    inner = f"`{key.decode().split('/')[1]}` extents `[{extents}]`"
    desc = []
    for name in sorted(parts):
        shape = by_path["max_shard_size/ckpt"]["tensors"][name]["shape"]
        where = ", ".join(f"{s}@shard{sid}" for sid, s in parts[name])
        desc.append(f"`{name.split('/')[1]}` {shape} -> {len(parts[name])} slices {where}")
    shard_sizes = "/".join(str(s) for s in sizes)
    full_ids = ", ".join(f"`{k.split('/')[1]}`={v}" for k, v in sorted(full_shard.items()))
    words_error = ms["tensors"]["model/words/.ATTRIBUTES/VARIABLE_VALUE"].get("tf_error", "-")
    read_result = OBSERVED.get("max_shard_size.checkpoint_read", "?")
    obs.append(
        f"**MaxShardSizePolicy** (`max_shard_size/`, limit 10000 bytes) wrote {len(sizes)} "
        f"data files of {shard_sizes} bytes. It keeps the normal "
        "`<prefix>.data-NNNNN-of-MMMMM` names and one merged `.index`, but *splits* "
        "tensors larger than the room left in a shard into slices, stored exactly like "
        "a partitioned variable (full entry with `slices` + per-slice entries under "
        f"`\\0name\\0...` keys): {'; '.join(desc)}. Slices are irregular (cut to fill "
        "each shard; several slices of one tensor may share a shard, and for rank > 1 "
        f"the cut can run along an inner axis, e.g. {inner}). The sliced full entries "
        f"carry a non-zero `shard_id` ({full_ids}) although they hold no data. The "
        "1200-element string variable `words` is split too (string slices, cut by an "
        f"estimated element size; one shard ends up at {max(sizes)} bytes, over the "
        "limit). TF cannot read it back: `load_checkpoint(...).get_tensor` fails with "
        f"`{words_error}`, and restoring the whole checkpoint with "
        "`tf.train.Checkpoint(...).read(prefix)` into fresh variables gives: "
        f"`{read_result}`."
    )
    info = sstable_info(os.path.join(_ROOT[0], "sharded/ckpt.index"))
    emb_order = []
    for key, value in info["records"]:
        if key == b"emb":
            entry = tensor_bundle_pb2.BundleEntryProto()
            entry.ParseFromString(value)
            emb_order = [sl.extent[0].start for sl in entry.slices]
    obs.append(
        "**Sharded V2 Saver** (`sharded/`): one data file per device "
        "(`ckpt.data-00000-of-00002` = /cpu:0, `-00001-` = /cpu:1), each written "
        "as its own bundle and then merged into one `.index` by MergeV2Checkpoints "
        "(per-entry `shard_id` + `offset` within that shard). The partitioned `emb` "
        "has part_0 and part_2 on /cpu:0 and part_1 on /cpu:1; its full entry lists "
        "the slices with row starts {}, i.e. {}.".format(
            emb_order,
            "in offset order"
            if emb_order == sorted(emb_order)
            else "in shard-merge order, not offset order (readers must not assume sorted slices)",
        )
    )
    obs.append(
        "**Partitioned variables** (`partitioned/`, `sharded/`): the full-name entry "
        "has dtype, full shape and `slices` (one TensorSliceProto per part; TF writes an "
        "explicit `length` even for full dimensions, and `start` 0 is omitted) but no "
        "data (offset/size/crc32c all 0). Each part is an ordinary entry under an "
        "OrderedCode key: `\\x00` (number 0), the name as an OrderedCode string "
        "(terminated by `\\x00\\x01`), the rank, then signed start/length per "
        "dimension, e.g. `\\x00model/embedding\\x00\\x01\\x01\\x02\\x84\\x83\\x80\\x84` "
        "= `model/embedding`, rank 2, `[4:7, 0:4]`. In a sharded checkpoint the full entry keeps "
        "`shard_id` 0 (Saver) or a non-zero one (MaxShardSizePolicy). "
        "`tf.train.load_checkpoint` assembles numeric slices but fails on "
        "string slices (`Dtype string not supported.`), and so does `RestoreV2`."
    )
    obs.append(
        "**Sub-byte dtypes** (`int4`, `uint4`, `int2`, `uint2`, `float4_e2m1fn`) are "
        "stored one element per byte, exactly the `ml_dtypes` in-memory byte (int4 "
        "-8 is `0x08`, not sign-extended `0xf8`); the float8 types are 1 byte as "
        "expected. NaN payloads, -nan and signalling NaNs survive SaveV2/"
        "load_checkpoint bit-exactly (checked by the generator)."
    )
    obs.append(
        "**V1 writing still works** in TF 2.21 (`Saver(write_version=SaverDef.V1)`, "
        "with a deprecation warning), including sharded V1 (`model.ckpt-00000-of-"
        '00002`, state file `model_checkpoint_path: "model.ckpt-?????-of-00002"`). '
        "But `tf.train.load_checkpoint` cannot return partitioned V1 tensors "
        "(`Sliced checkpoints are not supported`) nor V1 float16/uint16/complex "
        "values (`Data type not supported`); `RestoreV2` reads all of them "
        "(`tf_restore_v2` in the manifest)."
    )
    obs.append(
        "**DT_VARIANT** (`variant/`): SaveV2 writes a TensorList as a serialized "
        "VariantTensorDataProto; `load_checkpoint` lists it (dtype `variant`) but "
        "cannot return it."
    )
    obs.append(
        "**PythonState** (`numpy_state/`): each array is one 0-d DT_STRING tensor "
        "`numpy_arrays/<attr>/.ATTRIBUTES/py_state` holding the exact `numpy.save` "
        "bytes (.npy v1.0 header; big-endian, Fortran order and structured dtypes are "
        "described in the header, not converted)."
    )
    obs.append(
        "**Determinism**: every checkpoint file is byte-identical across runs. "
        "The only file that changes is `saved_model/fingerprint.pb`, which holds a "
        "random `uuid` (not part of the manifest)."
    )
    return obs


NOTES = (
    "Each fixture is written in a fresh subprocess whose working directory is the "
    "fixture's directory, with relative prefixes, so state files (`checkpoint`) hold "
    "relative paths (`ckpt-1`, `model.ckpt-?????-of-00002`) and no temp paths leak in. "
    "Environment: `TF_CPP_MIN_LOG_LEVEL=3 TF_ENABLE_ONEDNN_OPTS=0 CUDA_VISIBLE_DEVICES= "
    "PYTHONHASHSEED=0 TF_DETERMINISTIC_OPS=1`.",
    "All values are fixed (bit patterns, `np.arange`, constant initializers); the only "
    "computed values are the one Adam step in `object_based/`, which is bit-reproducible "
    "on CPU with oneDNN off.",
    "The generator checks that `tf.train.load_checkpoint` opens every prefix, that TF "
    "reads every SaveV2 value back bit-exactly, and the structural facts each fixture "
    "exists for (>= 3 SSTable data blocks in `many_keys`, >= 2 shards and sliced "
    "entries in `sharded`/`max_shard_size`, partitions in the V1 files, ...).",
    "`saved_model/` is the complete SavedModel directory (`saved_model.pb`, "
    "`fingerprint.pb`, `variables/`); TF also creates an empty `assets/` directory, "
    "which git does not keep.",
    "`.npy` headers in `numpy_state/` come from the numpy in the generating "
    "environment; a different numpy may pad them differently (the manifest would "
    "then change, and `--check` would say so).",
)


_ROOT = [None]
OBSERVED = {}


# --------------------------------------------------------------------------
# Driver.
# --------------------------------------------------------------------------


def _child_env():
    env = dict(os.environ)
    env.update(ENV)
    return env


def generate(root):
    """Writes every fixture into root (which must not exist yet)."""
    os.makedirs(root)
    for name in WRITERS:
        proc = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--_write", name, "--_root", root],
            capture_output=True,
            text=True,
            env=_child_env(),
        )
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout + proc.stderr)
            raise SystemExit(f"writing fixture {name!r} failed")
        for line in proc.stdout.splitlines():
            if line.startswith("@@OBS "):
                key, value = json.loads(line[len("@@OBS ") :])
                OBSERVED[f"{name}.{key}"] = value
        print(f"  wrote {name}", flush=True)
    manifest = build_manifest(root)
    sanity_check(manifest)
    text = json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=True) + "\n"
    with open(os.path.join(root, "MANIFEST.json"), "w", encoding="utf-8") as f:
        f.write(text)
    return manifest


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="regenerate into a temp dir and compare TF's view with the existing MANIFEST.json",
    )
    parser.add_argument("--out", default=DEFAULT_OUT, help="fixtures directory")
    parser.add_argument("--_write", help=argparse.SUPPRESS)
    parser.add_argument("--_root", help=argparse.SUPPRESS)
    parser.add_argument("--_probe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    for k, v in ENV.items():
        os.environ.setdefault(k, v)

    if args._write:
        _child_write(args._write, args._root)
        return 0
    if args._probe:
        _child_probe(args._probe, args._root)
        return 0

    out = os.path.abspath(args.out)
    tmp_parent = tempfile.mkdtemp(prefix="tfckpt_fixtures_")
    try:
        root = os.path.join(tmp_parent, "fixtures")
        print(f"generating into {root}", flush=True)
        manifest = generate(root)
        if args.check:
            with open(os.path.join(out, "MANIFEST.json"), encoding="utf-8") as f:
                old = json.load(f)
            new = json.loads(json.dumps(manifest))
            same = tf_view(old) == tf_view(new)
            old_by = {e["path"]: e for e in old}
            for e in new:
                o = old_by.get(e["path"])
                if o is None:
                    print(f"  new entry: {e['path']}")
                    continue
                for key in sorted(set(o) | set(e)):
                    if o.get(key) != e.get(key):
                        print(f"  {e['path']}: {key} differs")
            for p in sorted(set(old_by) - {e["path"] for e in new}):
                print(f"  entry gone: {p}")
            print(f"TF view of fixtures is {'up to date' if same else 'STALE'}")
            return 0 if same else 1
        _ROOT[0] = root
        probe_dir = os.path.join(tmp_parent, "probes")
        os.makedirs(probe_dir)
        probes = run_probes(probe_dir)
        write_readme(root, manifest, probes)
        # fixtures/objects/ belongs to tools/make_object_fixtures.py: keep it.
        if os.path.exists(out):
            for name in os.listdir(out):
                if name == "objects":
                    continue
                path = os.path.join(out, name)
                if os.path.isdir(path):
                    shutil.rmtree(path)
                else:
                    os.remove(path)
        shutil.copytree(root, out, dirs_exist_ok=True)
        total = _dir_size(out)
        print(f"wrote {out}: {len(manifest)} checkpoints, {total} bytes")
        return 0
    finally:
        shutil.rmtree(tmp_parent, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
