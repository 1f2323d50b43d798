"""Conversions that TensorFlow reads back: checkpoints converted to safetensors and back,
checkpoints made from foreign safetensors, V1 checkpoints rewritten as V2; restored by
``tf.train.Checkpoint`` through the object graph, or read by ``tf.train.load_checkpoint``.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import tfckpt
from tests.conftest import FIXTURES
from tfckpt.convert import convert


def _safetensors_numpy():
    return pytest.importorskip("safetensors.numpy")


def _through_safetensors(prefix, tmp_path, **options):
    """``prefix`` converted to safetensors and back; returns the new checkpoint's prefix."""
    _safetensors_numpy()
    middle = tmp_path / "middle.safetensors"
    convert(prefix, middle, **options)
    convert(middle, tmp_path / "back" / "ckpt")
    return str(tmp_path / "back" / "ckpt")


def _module(tf, scale):
    module = tf.Module()
    module.w = tf.Variable(np.arange(6, dtype=np.float32).reshape(2, 3) * scale)
    module.b = tf.Variable(np.ones(3, np.float32) * scale)
    module.layers = [tf.Variable(np.float64(scale)), tf.Variable([True, scale > 0])]
    module.table = {"ids": tf.Variable(np.arange(4, dtype=np.int64) * int(scale))}
    return module


def _train_step(tf, module, optimizer):
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(module.w * module.w) + tf.reduce_sum(module.b)
    variables = [module.w, module.b]
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))


def test_tf_restores_a_checkpoint_converted_to_safetensors_and_back(tf, tmp_path):
    """tf.train.Checkpoint with variables in a module, a list and a dict, and an Adam
    optimizer's slots: through safetensors and back, a fresh object tree restores every
    value, slots included (assert_consumed; read() is write()'s counterpart, neither
    keeps a save counter)."""
    trained = _module(tf, 1.0)
    optimizer = tf.compat.v1.train.AdamOptimizer(0.1)
    _train_step(tf, trained, optimizer)
    saved = tf.train.Checkpoint(net=trained, opt=optimizer).write(str(tmp_path / "tf" / "ckpt"))
    back = _through_safetensors(saved, tmp_path)

    fresh = _module(tf, 0.0)
    fresh_optimizer = tf.compat.v1.train.AdamOptimizer(0.1)
    _train_step(tf, fresh, fresh_optimizer)  # creates the slots, which the restore overwrites
    status = tf.train.Checkpoint(net=fresh, opt=fresh_optimizer).read(back)
    status.assert_consumed()
    for ours, theirs in zip(fresh.trainable_variables, trained.trainable_variables):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    np.testing.assert_array_equal(fresh.table["ids"].numpy(), trained.table["ids"].numpy())
    for variable in (trained.w, trained.b):
        for slot in ("m", "v"):
            np.testing.assert_array_equal(
                fresh_optimizer.get_slot(
                    getattr(fresh, "w" if variable is trained.w else "b"), slot
                ).numpy(),
                optimizer.get_slot(variable, slot).numpy(),
            )


def test_tf_restores_without_the_optimizer(tf, tmp_path):
    """With exclude_optimizer the model's variables alone restore into a model without an
    optimizer (assert_consumed)."""
    trained = _module(tf, 2.0)
    optimizer = tf.compat.v1.train.AdamOptimizer(0.1)
    _train_step(tf, trained, optimizer)
    saved = tf.train.Checkpoint(net=trained, opt=optimizer).write(str(tmp_path / "tf" / "ckpt"))
    back = _through_safetensors(saved, tmp_path, exclude_optimizer=True, names="paths")
    assert not [k for k in tfckpt.load_checkpoint(back) if "opt" in k]
    fresh = _module(tf, 0.0)
    tf.train.Checkpoint(net=fresh).read(back).assert_consumed()
    np.testing.assert_array_equal(fresh.w.numpy(), trained.w.numpy())


def test_checkpoint_to_checkpoint_keeps_tensorflows_graph(tf, tmp_path):
    """Converting a checkpoint to a checkpoint without its optimizer keeps TensorFlow's own
    object graph (pruned) and keys; the model restores alone (assert_consumed)."""
    trained = _module(tf, 3.0)
    optimizer = tf.compat.v1.train.AdamOptimizer(0.1)
    _train_step(tf, trained, optimizer)
    saved = tf.train.Checkpoint(net=trained, opt=optimizer).write(str(tmp_path / "tf" / "ckpt"))
    convert(saved, tmp_path / "model", exclude_optimizer=True)
    keys = tfckpt.load_checkpoint(tmp_path / "model").keys()
    assert "net/w/.ATTRIBUTES/VARIABLE_VALUE" in keys and not any("opt" in k for k in keys)
    fresh = _module(tf, 0.0)
    tf.train.Checkpoint(net=fresh).read(str(tmp_path / "model")).assert_consumed()
    np.testing.assert_array_equal(fresh.w.numpy(), trained.w.numpy())


def test_keras_model_weights_through_safetensors(tf, tmp_path):
    """A Keras model saved with tf.train.Checkpoint, through safetensors by object path
    without its optimizer, restores into a fresh model of the same architecture."""
    keras = tf.keras

    def model():
        return keras.Sequential(
            [
                keras.Input((4,)),
                keras.layers.Dense(3),
                keras.layers.BatchNormalization(),
                keras.layers.Dense(2),
            ]
        )

    trained = model()
    trained.compile(optimizer="adam", loss="mse")
    trained.fit(np.ones((8, 4)), np.ones((8, 2)), verbose=0)
    saved = tf.train.Checkpoint(model=trained).write(str(tmp_path / "tf" / "ckpt"))
    back = _through_safetensors(saved, tmp_path, exclude_optimizer=True, names="paths")
    fresh = model()
    tf.train.Checkpoint(model=fresh).read(back).assert_existing_objects_matched()
    for ours, theirs in zip(fresh.weights, trained.weights):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


def test_tf_restores_a_checkpoint_made_from_foreign_safetensors(tf, tmp_path):
    """A safetensors file from elsewhere, converted with names='paths', restores into a
    tf.train.Checkpoint whose objects have those paths."""
    weights = {
        "encoder/kernel": np.arange(12, dtype=np.float32).reshape(3, 4),
        "encoder/bias": np.arange(4, dtype=np.float32),
        "head/scale": np.float32([2.0]),
    }
    source = tmp_path / "weights.safetensors"
    _safetensors_numpy().save_file(weights, str(source))
    convert(source, tmp_path / "ckpt", names="paths")

    encoder, head = tf.Module(), tf.Module()
    encoder.kernel = tf.Variable(np.zeros((3, 4), np.float32))
    encoder.bias = tf.Variable(np.zeros(4, np.float32))
    head.scale = tf.Variable(np.zeros(1, np.float32))
    tf.train.Checkpoint(encoder=encoder, head=head).read(str(tmp_path / "ckpt")).assert_consumed()
    np.testing.assert_array_equal(encoder.kernel.numpy(), weights["encoder/kernel"])
    np.testing.assert_array_equal(head.scale.numpy(), weights["head/scale"])


def test_tf_reads_name_based_keys_and_narrow_dtypes(tf, tmp_path):
    """Raw keys from safetensors become a name-based checkpoint TensorFlow's reader and
    RestoreV2 read, bfloat16 and float8 bit for bit."""
    weights = {
        "dense/kernel": np.linspace(-1, 1, 6).astype(ml_dtypes.bfloat16).reshape(2, 3),
        "quant/scale": np.linspace(-2, 2, 8).astype(ml_dtypes.float8_e4m3fn),
        "quant/grad": np.linspace(-2, 2, 8).astype(ml_dtypes.float8_e5m2),
        "global_step": np.array(12, np.int64),
    }
    source = tmp_path / "weights.safetensors"
    _safetensors_numpy().save_file(weights, str(source))
    convert(source, tmp_path / "ckpt")
    prefix = str(tmp_path / "ckpt")
    reader = tf.train.load_checkpoint(prefix)
    assert sorted(reader.get_variable_to_shape_map()) == sorted(weights)
    for name, value in weights.items():
        got = reader.get_tensor(name)
        assert np.asarray(got).dtype == value.dtype, name
        assert np.asarray(got).tobytes() == value.tobytes(), name
    (restored,) = tf.raw_ops.RestoreV2(
        prefix=prefix, tensor_names=["quant/scale"], shape_and_slices=[""],
        dtypes=[tf.as_dtype(np.dtype(ml_dtypes.float8_e4m3fn))],
    )  # fmt: skip
    assert restored.numpy().tobytes() == weights["quant/scale"].tobytes()


def test_tf_reads_v1_checkpoints_rewritten_as_v2(tf, tmp_path):
    """A V1 checkpoint converted to V2 is read by TensorFlow with tfckpt's values, even
    dtypes TensorFlow's V1 reader refuses (float16, complex) and partitioned tensors."""
    source = FIXTURES / "v1_format" / "model.ckpt"
    convert(source, tmp_path / "v2")
    ours = tfckpt.load_checkpoint(source)
    reader = tf.train.load_checkpoint(str(tmp_path / "v2"))
    assert sorted(reader.get_variable_to_shape_map()) == sorted(ours.keys())
    for name in ours:
        expected, got = ours.get_tensor(name), reader.get_tensor(name)
        if ours.get_dtype(name).name == "string":
            assert np.asarray(got, dtype=object).tolist() == np.asarray(expected).tolist()
        else:
            np.testing.assert_array_equal(got, expected)
