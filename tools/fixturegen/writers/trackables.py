"""Fixtures written through TF2's object-based API: tf.train.Checkpoint (with size-based
sharding too), a SavedModel, and NumpyState (tools/tf_numpy_state.py)."""

from __future__ import annotations

from ..tf_util import first_error_line, observe


def write_max_shard_size() -> None:
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
        observe("checkpoint_read", "ok" if ok else "restored different values")
    except Exception as e:
        observe("checkpoint_read", first_error_line(e))


def write_object_based() -> None:
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


def write_saved_model() -> None:
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


def write_numpy_state() -> None:
    import numpy as np
    import tensorflow as tf
    from tf_numpy_state import numpy_state_classes  # tools/, the script's directory

    NumpyState, NumpyWrapper = numpy_state_classes()
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
        assert value == NumpyWrapper(getattr(arrays, name)).serialize(), name
