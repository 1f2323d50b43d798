"""Bulk reads against TensorFlow: what TF writes, ``tfckpt.load_tensors`` /
``get_tensors`` read exactly as TF's reader does, and what tfckpt writes, TF reads exactly
as ``load_tensors`` does."""

from __future__ import annotations

import os

import numpy as np

import tfckpt
from tfckpt.bundle import batch

from ._util import (
    assert_value,
    np_dtype,
    obj_array,
    obj_scalar,
    pattern_values,
    string_values,
    tf_save,
)

DTYPES = ["float32", "bfloat16", "float16", "float64", "int8", "int32", "int64", "uint8", "bool"]
DTYPES += ["complex64", "float8_e4m3fn", "int4", "string"]


def _small_tensors(count):
    """``count`` small tensors cycling through DTYPES and several shapes (0-d, empty)."""
    tensors, dtypes = {}, {}
    strings = string_values()[:7]
    shapes = [(), (1,), (0,), (3,), (2, 3), (4, 1, 2)]
    rng = np.random.default_rng(21)
    for i in range(count):
        dtype = DTYPES[i % len(DTYPES)]
        shape = shapes[i % len(shapes)]
        n = int(np.prod(shape))
        if dtype == "string":
            picked = [strings[(i + k) % len(strings)] for k in range(n)]
            value = obj_scalar(strings[i % len(strings)]) if not shape else obj_array(picked)
            value = value.reshape(shape)
        else:
            values = pattern_values(dtype, rng)
            start = i % len(values)
            flat = np.concatenate([values, values])[start : start + n]
            value = np.array(flat.reshape(shape), dtype=np_dtype(dtype))
        name = f"layer_{i // 10:03d}/{dtype}_{i}"
        tensors[name] = value
        dtypes[name] = dtype
    return tensors, dtypes


def _same_as_tf(ours, theirs, what):
    """tfckpt's value equals TF reader's value: type, dtype, shape and bits."""
    assert type(ours) is type(theirs), (what, type(ours), type(theirs))
    if isinstance(theirs, bytes):
        assert ours == theirs, what
        return
    ours_array, theirs_array = np.asarray(ours), np.asarray(theirs)
    assert ours_array.dtype == theirs_array.dtype, (what, ours_array.dtype, theirs_array.dtype)
    assert ours_array.shape == theirs_array.shape, what
    if theirs_array.dtype == object:
        assert ours_array.reshape(-1).tolist() == theirs_array.reshape(-1).tolist(), what
    else:
        assert ours_array.tobytes() == np.ascontiguousarray(theirs_array).tobytes(), what


def _check_against_tf(tf, prefix, expected=None):
    """load_tensors and get_tensors (owned and views) equal TF's reader, value by value."""
    theirs = tf.train.load_checkpoint(prefix)
    tf_names = sorted(theirs.get_variable_to_shape_map(), key=lambda n: n.encode())
    tf_values = {name: theirs.get_tensor(name) for name in tf_names}
    loaded = tfckpt.load_tensors(prefix)
    assert list(loaded) == tf_names
    for name in tf_names:
        _same_as_tf(loaded[name], tf_values[name], f"load_tensors {name!r}")
        if expected is not None and name in expected:
            assert_value(loaded[name], expected[name], name)
    with tfckpt.load_checkpoint(prefix) as reader:
        views = reader.get_tensors(copy=False)
        for name in tf_names:
            _same_as_tf(views[name], tf_values[name], f"get_tensors(copy=False) {name!r}")
        subset = tf_names[::-7]
        got = reader.get_tensors(subset)
        assert list(got) == subset
        for name in subset:
            _same_as_tf(got[name], tf_values[name], name)
    return tf_values


def test_savev2_many_small_tensors(tf, tmp_path):
    tensors, dtypes = _small_tensors(400)
    prefix = tf_save(tf, str(tmp_path / "ckpt" / "model"), tensors, dtypes)
    _check_against_tf(tf, prefix, tensors)


def test_savev2_many_small_tensors_threaded(tf, tmp_path, monkeypatch):
    """The same through the chunked, multithreaded reads (tiny thresholds)."""
    tensors, dtypes = _small_tensors(150)
    big = np.random.default_rng(3).standard_normal(10000).astype(np.float32)
    tensors["big"], dtypes["big"] = big, "float32"
    prefix = tf_save(tf, str(tmp_path / "ckpt" / "model"), tensors, dtypes)
    monkeypatch.setattr(batch, "PARALLEL_BYTES", 1)
    monkeypatch.setattr(batch, "CHUNK_BYTES", 256)
    monkeypatch.setattr(batch, "workers", lambda: 3)
    monkeypatch.setattr(batch, "LARGE_TENSOR_BYTES", 1, raising=False)
    _check_against_tf(tf, prefix, tensors)


def test_tf_checkpoint_write_many_variables(tf, tmp_path):
    tensors, _ = _small_tensors(120)
    module = tf.Module()
    module.vars = [tf.Variable(tf.constant(value)) for value in tensors.values()]
    module.bf16 = tf.Variable(tf.constant(np.arange(-5, 5), dtype=tf.bfloat16))
    module.words = tf.Variable(tf.constant([b"a", b"\x00b", b""]))
    prefix = tf.train.Checkpoint(model=module).write(str(tmp_path / "obj" / "ckpt"))
    values = _check_against_tf(tf, prefix)
    assert "_CHECKPOINTABLE_OBJECT_GRAPH" in values
    for i, value in enumerate(tensors.values()):
        assert_value(values[f"model/vars/{i}/.ATTRIBUTES/VARIABLE_VALUE"], value, str(i))


def test_tf_sharded_checkpoint(tf, tmp_path):
    """TF2 size-based sharding: several data files, tensors split into slices."""
    rng = np.random.default_rng(4)
    module = tf.Module()
    module.big = tf.Variable(rng.standard_normal((40, 50)).astype(np.float32))
    module.big64 = tf.Variable(rng.standard_normal(700))
    module.counts = tf.Variable(np.arange(900, dtype=np.int64))
    module.small = [tf.Variable(np.float32(i)) for i in range(30)]
    module.half = tf.Variable(rng.standard_normal(100).astype(np.float16))
    options = tf.train.CheckpointOptions(
        experimental_sharding_callback=tf.train.experimental.MaxShardSizePolicy(max_shard_size=4000)
    )
    prefix = tf.train.Checkpoint(model=module).write(str(tmp_path / "s" / "ckpt"), options=options)
    data_files = [f for f in os.listdir(tmp_path / "s") if ".data-" in f]
    assert len(data_files) > 3
    values = _check_against_tf(tf, prefix)
    assert_value(values["model/big/.ATTRIBUTES/VARIABLE_VALUE"], module.big.numpy())


def test_tf_reads_what_save_tensors_wrote(tf, tmp_path):
    tensors, _ = _small_tensors(300)
    prefix = tfckpt.save_tensors(str(tmp_path / "ours" / "model"), tensors)
    ours = tfckpt.load_tensors(prefix)
    theirs = tf.train.load_checkpoint(prefix)
    assert sorted(theirs.get_variable_to_shape_map()) == sorted(ours)
    for name, value in ours.items():
        _same_as_tf(value, theirs.get_tensor(name), name)
        assert_value(value, tensors[name], name)
    with tfckpt.load_checkpoint(prefix) as reader:
        for name, value in reader.get_tensors(copy=False).items():
            _same_as_tf(value, theirs.get_tensor(name), name)
