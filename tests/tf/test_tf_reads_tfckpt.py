"""tfckpt writes, TensorFlow reads.

(a) ``tf.train.load_checkpoint`` and ``tf.raw_ops.RestoreV2`` see the names, dtypes, shapes
and bit-exact values that tfckpt wrote, for every dtype TensorFlow 2.21 can read back.
(b) ``tf.compat.v1.train.Saver`` restores graph-mode variables, including a partitioned
variable whose slices tfckpt wrote with ``BundleWriter.add_slice``.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

import tfckpt

from ._util import (
    ALL_DTYPES,
    NUMERIC_DTYPES,
    QUANTIZED,
    assert_identical_files,
    assert_value,
    np_dtype,
    obj_array,
    obj_scalar,
    pattern_values,
    sample_tensors,
)


def _tf_read_all(tf, prefix: str, tensors: dict[str, np.ndarray], dtypes: dict[str, str]):
    """Checks everything TensorFlow's reader sees against ``tensors``."""
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    assert shapes == {name: list(value.shape) for name, value in tensors.items()}
    got_dtypes = reader.get_variable_to_dtype_map()
    assert {n: d.name for n, d in got_dtypes.items()} == dtypes
    for name, value in tensors.items():
        assert reader.has_tensor(name)
        assert_value(reader.get_tensor(name), value, f"tf.train.load_checkpoint {name!r}")
    assert sorted(n for n, _ in tf.train.list_variables(prefix)) == sorted(tensors)


def _tf_restore_all(tf, prefix: str, tensors: dict[str, np.ndarray], dtypes: dict[str, str]):
    """``RestoreV2`` (what Saver and tf.train.Checkpoint run) returns the same bits."""
    names = list(tensors)
    restored = tf.raw_ops.RestoreV2(
        prefix=prefix,
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        dtypes=[tf.as_dtype(dtypes[n]) for n in names],
    )
    for name, tensor in zip(names, restored):
        expected = tensors[name]
        assert tensor.dtype.name == dtypes[name], name
        assert tuple(tensor.shape) == expected.shape, name
        if dtypes[name] in QUANTIZED:
            tensor = tf.bitcast(tensor, tf.as_dtype(QUANTIZED[dtypes[name]]))
        got = tensor.numpy()
        if expected.dtype == object:
            if expected.ndim == 0:
                assert type(got) is bytes and got == expected[()], name
            else:
                assert got.dtype == object and got.shape == expected.shape, name
                assert got.reshape(-1).tolist() == expected.reshape(-1).tolist(), name
        else:
            got = np.asarray(got)
            assert got.dtype == expected.dtype, name
            assert got.tobytes() == expected.tobytes(), f"RestoreV2 {name!r}: bits differ"


# -- (a) every dtype -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_tf_reads_every_dtype(tf, tmp_path, dtype):
    tensors = {f"{dtype}/{key}": value for key, value in sample_tensors(dtype).items()}
    dtypes = dict.fromkeys(tensors, dtype)
    prefix = str(tmp_path / "ckpt")
    assert tfckpt.save_tensors(prefix, tensors) == prefix
    _tf_read_all(tf, prefix, tensors, dtypes)
    _tf_restore_all(tf, prefix, tensors, dtypes)


def test_tf_reads_all_dtypes_in_one_checkpoint(tf, tmp_path):
    """Many tensors of different dtypes in one data file, added in shuffled order."""
    tensors, dtypes = {}, {}
    for dtype in ALL_DTYPES:
        for key, value in sample_tensors(dtype).items():
            if dtype == "string" and key == "long":
                continue
            tensors[f"{dtype}.{key}"] = value
            dtypes[f"{dtype}.{key}"] = dtype
    order = list(tensors)
    random.Random(5).shuffle(order)
    prefix = str(tmp_path / "mixed" / "ckpt")
    tfckpt.save_tensors(prefix, {name: tensors[name] for name in order})
    _tf_read_all(tf, prefix, tensors, dtypes)
    _tf_restore_all(tf, prefix, tensors, dtypes)


@pytest.mark.parametrize("qtype", sorted(QUANTIZED))
def test_tf_reads_quantized(tf, tmp_path, qtype):
    base = np_dtype(qtype)
    values = pattern_values(qtype)
    structured = np.empty(values.shape, dtype=tf.as_dtype(qtype).as_numpy_dtype)
    structured[qtype] = values
    prefix = str(tmp_path / "ckpt")
    with tfckpt.BundleWriter(prefix) as writer:
        writer.add("forced", values, dtype=qtype)
        writer.add("forced_tf_dtype", values.reshape(-1, 2), dtype=tf.as_dtype(qtype))
        writer.add("scalar", values[:1].reshape(()), dtype=qtype)
        writer.add("empty", values[:0].reshape(0, 3), dtype=qtype)
        writer.add("structured_forced", structured, dtype=qtype)
    tensors = {
        "forced": values,
        "forced_tf_dtype": values.reshape(-1, 2),
        "scalar": values[:1].reshape(()),
        "empty": values[:0].reshape(0, 3),
        "structured_forced": values,
    }
    assert all(t.dtype == base for t in tensors.values())
    dtypes = dict.fromkeys(tensors, qtype)
    _tf_read_all(tf, prefix, tensors, dtypes)
    _tf_restore_all(tf, prefix, tensors, dtypes)


@pytest.mark.parametrize("qtype", sorted(QUANTIZED))
def test_tf_reads_quantized_numpy_structured_array(tf, tmp_path, qtype):
    """An array of TF's own NumPy type for a quantized dtype (``tf.qint8.as_numpy_dtype``,
    which is also ``tfckpt.as_dtype('qint8').as_numpy_dtype``) is written as that dtype
    without ``dtype=``: "NumPy arrays keep their dtype"."""
    values = pattern_values(qtype)
    numpy_type = tf.as_dtype(qtype).as_numpy_dtype
    assert np.dtype(numpy_type) == np.dtype(tfckpt.as_dtype(qtype).as_numpy_dtype)
    assert tfckpt.as_dtype(np.dtype(numpy_type)).name == qtype
    structured = np.empty(values.shape, dtype=numpy_type)
    structured[qtype] = values
    prefix = str(tmp_path / "ckpt")
    tfckpt.save_tensors(prefix, {"structured": structured, "scalar": structured[0]})
    tensors = {"structured": values, "scalar": values[:1].reshape(())}
    dtypes = dict.fromkeys(tensors, qtype)
    _tf_read_all(tf, prefix, tensors, dtypes)
    _tf_restore_all(tf, prefix, tensors, dtypes)


def test_tf_reads_converted_python_values(tf, tmp_path):
    """Values that are not already C-contiguous native NumPy arrays are converted exactly."""
    base = np.arange(24, dtype=np.int32).reshape(4, 6)
    big = np.array([1.5, -2.25, np.inf], dtype=">f8")
    cplx_big = np.array([1 + 2j, -0.5j], dtype=">c16")
    values = {
        "py_int": 7,
        "py_float": 2.5,
        "py_bool": True,
        "py_list": [[1, 2], [3, 4]],
        "np_scalar": np.float32(-0.0),
        "np_uint16_scalar": np.uint16(65535),
        "big_endian_f8": big,
        "big_endian_c16": cplx_big,
        "big_endian_i2": np.array([[1, -2], [300, -32768]], dtype=">i2"),
        "transposed": base.T,
        "strided": base[::2, 1::3],
        "fortran": np.asfortranarray(base),
        "negative_stride": base[::-1],
        "str_scalar": "héllo",
        "bytes_scalar": b"a\x00b",
        "bytearray_scalar": bytearray(b"\xff\x00"),
        "np_bytes_scalar": np.bytes_(b"abc"),
        "unicode_array": np.array(["", "é", "日本語"]),
        "S_array": np.array([b"ab", b"", b"c\x00d"]),
        "object_mixed": np.array([b"x", "ÿ"], dtype=object),
        "strided_strings": obj_array([b"a", b"bb", b"ccc", b"dddd"], (2, 2)).T,
    }
    expected = {
        "py_int": np.array(7, np.int64),
        "py_float": np.array(2.5, np.float64),
        "py_bool": np.array(True),
        "py_list": np.array([[1, 2], [3, 4]], np.int64),
        "np_scalar": np.array(-0.0, np.float32),
        "np_uint16_scalar": np.array(65535, np.uint16),
        "big_endian_f8": big.astype("<f8"),
        "big_endian_c16": cplx_big.astype("<c16"),
        "big_endian_i2": np.array([[1, -2], [300, -32768]], dtype="<i2"),
        "transposed": np.ascontiguousarray(base.T),
        "strided": np.ascontiguousarray(base[::2, 1::3]),
        "fortran": base,
        "negative_stride": np.ascontiguousarray(base[::-1]),
        "str_scalar": obj_scalar("héllo".encode()),
        "bytes_scalar": obj_scalar(b"a\x00b"),
        "bytearray_scalar": obj_scalar(b"\xff\x00"),
        "np_bytes_scalar": obj_scalar(b"abc"),
        "unicode_array": obj_array([b"", "é".encode(), "日本語".encode()]),
        "S_array": obj_array([b"ab", b"", b"c\x00d"]),
        "object_mixed": obj_array([b"x", "ÿ".encode()]),
        "strided_strings": obj_array([b"a", b"ccc", b"bb", b"dddd"], (2, 2)),
    }
    dtypes = {
        name: "string" if value.dtype == object else value.dtype.name
        for name, value in expected.items()
    }
    prefix = str(tmp_path / "ckpt")
    tfckpt.save_tensors(prefix, values)
    _tf_read_all(tf, prefix, expected, dtypes)
    _tf_restore_all(tf, prefix, expected, dtypes)


@pytest.mark.parametrize("dtype", ["string", "float32", "bfloat16", "int4"])
def test_tf_reads_slices_written_by_add_slice(tf, tmp_path, dtype):
    """Partitioned tensors: TF's reader assembles tfckpt's slices into the full tensor."""
    if dtype == "string":
        full = obj_array([bytes([65 + i % 26]) * (i % 7) for i in range(60)], (6, 10))
    else:
        full = np.resize(pattern_values(dtype), (6, 10))
    prefix = str(tmp_path / "ckpt")
    with tfckpt.BundleWriter(prefix) as writer:
        writer.add("before", np.int64(1))
        writer.add_slice("part", (6, 10), "0,2:-", full[0:2])
        writer.add_slice("part", [6, 10], tfckpt.TensorSlice((2, 0), (4, 3)), full[2:6, 0:3])
        writer.add_slice("part", (6, 10), [(2, 4), (3, 7)], full[2:6, 3:10])
        writer.add("zafter", np.int64(2))
    reader = tf.train.load_checkpoint(prefix)
    assert reader.get_variable_to_shape_map() == {"before": [], "part": [6, 10], "zafter": []}
    assert reader.get_variable_to_dtype_map()["part"].name == dtype
    if dtype == "string":
        # TF 2.21 lists sliced string tensors but cannot read them back ("Dtype string not
        # supported" from BundleReader::LookupSlice); tfckpt can (test_byte_identical.py
        # shows the files equal SaveV2's, test_tfckpt_reads_tf.py reads them).
        with tfckpt.load_checkpoint(prefix) as ours:
            assert_value(ours.get_tensor("part"), full, "tfckpt part")
        return
    assert_value(reader.get_tensor("part"), full, "part")
    # RestoreV2 of the whole tensor, and of a slice that straddles the stored slices.
    for spec, want in (("", full), ("6 10 -:-", full), ("6 10 1,4:2,5", full[1:5, 2:7])):
        (got,) = tf.raw_ops.RestoreV2(
            prefix=prefix,
            tensor_names=["part"],
            shape_and_slices=[spec],
            dtypes=[tf.as_dtype(dtype)],
        )
        assert tuple(got.shape) == want.shape
        if dtype == "string":
            assert got.numpy().tolist() == want.tolist()
        else:
            assert got.numpy().tobytes() == np.ascontiguousarray(want).tobytes()


# -- (b) tf.compat.v1.train.Saver restoring graph-mode variables ----------------------------


def _graph_values() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {
        "dense/kernel": rng.standard_normal((3, 4)).astype(np.float32),
        "dense/bias": pattern_values("float64")[:4].copy(),
        "global_step": np.array(123456789012, np.int64),
        "flags": np.array([True, False, True, False, False]),
        "vocab": obj_array([b"", b"a\x00b", "ünï".encode(), b"z" * 200]),
        "half": pattern_values("bfloat16")[:6].reshape(2, 3).copy(),
        "cplx": pattern_values("complex64")[:3].copy(),
        "small/int8": np.array([[-128, 127], [0, -1]], np.int8),
        "uint16": np.array([0, 65535, 7], np.uint16),
        "f16_scalar": np.array(-0.0, np.float16),
    }


def _build_graph(tf, values, emb_shape, partitions, axis, emb_dtype=np.float32):
    g = tf.Graph()
    with g.as_default():
        variables = {}
        for name, value in values.items():
            if value.dtype == object:
                variables[name] = tf.compat.v1.get_variable(
                    name, initializer=tf.constant([b"?"] * value.size, tf.string)
                )
            else:
                variables[name] = tf.compat.v1.get_variable(
                    name,
                    shape=value.shape,
                    dtype=tf.as_dtype(value.dtype),
                    initializer=tf.compat.v1.zeros_initializer(),
                )
        emb = tf.compat.v1.get_variable(
            "emb",
            shape=emb_shape,
            dtype=tf.as_dtype(emb_dtype),
            initializer=tf.compat.v1.zeros_initializer(),
            partitioner=tf.compat.v1.fixed_size_partitioner(partitions, axis=axis),
        )
        saver = tf.compat.v1.train.Saver()
        init = tf.compat.v1.global_variables_initializer()
    return g, variables, emb, saver, init


def _slice_infos(emb):
    """``(full_name, full_shape, slice_text, var_offset, var_shape)`` for each partition."""
    out = []
    for part in emb:
        info = part._get_save_slice_info()
        fields = info.spec.split(" ")
        full_shape = [int(x) for x in fields[:-1]]
        assert full_shape == list(info.full_shape)
        out.append(
            (info.full_name, full_shape, fields[-1], list(info.var_offset), list(info.var_shape))
        )
    return out


def _region(offset, shape):
    return tuple(slice(o, o + s) for o, s in zip(offset, shape))


@pytest.mark.parametrize(
    "layout",
    ["spec_text", "tensor_slice", "extents", "whole_tensor", "other_partitioning"],
)
@pytest.mark.parametrize("axis", [0, 1])
def test_saver_restores_graph_variables(tf, tmp_path, layout, axis):
    values = _graph_values()
    emb_shape = [10, 4] if axis == 0 else [4, 10]
    emb_full = np.random.default_rng(11).standard_normal(emb_shape).astype(np.float32)
    emb_full.reshape(-1)[:4] = pattern_values("float32")[[0, 2, 8, 11]]  # NaNs, -0.0
    g, variables, emb, saver, init = _build_graph(tf, values, emb_shape, 3, axis)
    infos = _slice_infos(emb)
    assert [i[0] for i in infos] == ["emb"] * 3
    assert sum(i[4][axis] for i in infos) == emb_shape[axis]

    prefix = str(tmp_path / "ours" / "model")
    with tfckpt.BundleWriter(prefix) as writer:
        for name, value in values.items():
            writer.add(name, value)
        if layout == "whole_tensor":
            writer.add("emb", emb_full)
        elif layout == "other_partitioning":
            # Two halves, spelled with '-' for the unsplit dimension; TF must re-slice.
            half = emb_shape[axis] // 2
            for start, length in ((0, half), (half, emb_shape[axis] - half)):
                spec = [None, None]
                spec[axis] = (start, length)
                region = [slice(None), slice(None)]
                region[axis] = slice(start, start + length)
                text = ":".join("-" if e is None else f"{e[0]},{e[1]}" for e in spec)
                writer.add_slice("emb", emb_shape, text, emb_full[tuple(region)])
        else:
            for full_name, full_shape, text, offset, shape in reversed(infos):
                part = emb_full[_region(offset, shape)]
                if layout == "spec_text":
                    spec = text
                elif layout == "tensor_slice":
                    spec = tfckpt.TensorSlice(tuple(offset), tuple(shape))
                else:
                    spec = list(zip(offset, shape))
                writer.add_slice(full_name, full_shape, spec, part)

    with tf.compat.v1.Session(graph=g) as sess:
        sess.run(init)
        saver.restore(sess, prefix)
        for name, variable in variables.items():
            got = sess.run(variable)
            want = values[name]
            if want.dtype == object:
                assert got.tolist() == want.tolist(), name
            else:
                got = np.asarray(got)
                assert got.dtype == want.dtype and got.shape == want.shape, name
                assert got.tobytes() == want.tobytes(), name
        parts = sess.run(list(emb))
        got_emb = np.concatenate(parts, axis=axis)
        assert got_emb.tobytes() == emb_full.tobytes()

    # TensorFlow's reader shows the partitioned variable whole, without its slice keys.
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    assert shapes == {"emb": emb_shape, **{n: list(v.shape) for n, v in values.items()}}
    assert reader.get_variable_to_dtype_map()["emb"].name == "float32"
    assert_value(reader.get_tensor("emb"), emb_full, "emb")


def test_saver_output_equals_tfckpt_output(tf, tmp_path):
    """Writing in the Saver's own tensor order with its own slice specs gives its exact files."""
    values = _graph_values()
    emb_full = np.arange(40, dtype=np.float64).reshape(10, 4) - 20.5
    g, variables, emb, saver, init = _build_graph(tf, values, [10, 4], 3, 0, emb_dtype=np.float64)
    with g.as_default():
        save_op = g.get_operation_by_name("save/SaveV2")
        names_t, specs_t = save_op.inputs[1], save_op.inputs[2]
        assigns = [v.assign(values[n]) for n, v in variables.items()]
        assigns += [
            part.assign(emb_full[_region(offset, shape)])
            for part, (_, _, _, offset, shape) in zip(emb, _slice_infos(emb))
        ]
    with tf.compat.v1.Session(graph=g) as sess:
        sess.run(init)
        sess.run(assigns)
        names, specs = sess.run([names_t, specs_t])
        theirs = str(tmp_path / "tf" / "model")
        (tmp_path / "tf").mkdir()
        saver.save(sess, theirs, write_meta_graph=False, write_state=False)

    names = [n.decode() for n in names]
    specs = [s.decode() for s in specs]
    assert sorted(set(names)) == sorted(["emb", *values])
    assert sum(s != "" for s in specs) == 3
    ours = str(tmp_path / "ours" / "model")
    with tfckpt.BundleWriter(ours) as writer:
        for name, spec in zip(names, specs):
            if not spec:
                writer.add(name, values[name])
                continue
            fields = spec.split(" ")
            full_shape = [int(x) for x in fields[:-1]]
            tensor_slice = tfckpt.TensorSlice.parse(fields[-1])
            region = tuple(slice(a, b) for a, b in tensor_slice.bounds(full_shape))
            writer.add_slice(name, full_shape, fields[-1], emb_full[region])
    assert_identical_files(ours, theirs)


def test_numeric_dtype_list_is_complete(tf):
    """Every numeric TF dtype with fixed-size storage is covered by the round-trip tests."""
    from tensorflow.python.framework import dtypes as tf_dtypes

    tested = set(NUMERIC_DTYPES) | set(QUANTIZED) | {"string"}
    untested = set()
    for enum in range(1, 34):
        try:
            dtype = tf_dtypes.as_dtype(enum)
        except TypeError:
            continue
        if dtype.name not in tested and dtype.name not in ("resource", "variant"):
            untested.add(dtype.name)
    assert not untested, f"TensorFlow dtypes not covered by these tests: {sorted(untested)}"
    for name in tested:
        ours = tfckpt.as_dtype(name)
        theirs = tf.as_dtype(name)
        assert ours.name == theirs.name
        assert ours.as_datatype_enum == theirs.as_datatype_enum
        assert ours == theirs
        if name in QUANTIZED:
            assert np.dtype(ours.as_numpy_dtype) == np.dtype(theirs.as_numpy_dtype)
        else:
            assert ours.as_numpy_dtype is theirs.as_numpy_dtype, name
