"""Fixtures written by the TF1 ``tf.compat.v1.train.Saver`` in graph mode: partitioned and
sharded V2 checkpoints, and legacy V1 ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _slice_init(full: Any) -> Callable[..., Any]:
    """A get_variable initializer that returns the partition's slice of full."""
    import tensorflow as tf

    def init(shape, dtype=None, partition_info=None):
        off = partition_info.var_offset if partition_info is not None else [0] * len(shape)
        part = full[tuple(slice(o, o + n) for o, n in zip(off, shape, strict=False))]
        return tf.constant(part, dtype=dtype)

    return init


def _graph_saver(build: Callable[[Any], None], save_path: str, **saver_kwargs: Any) -> str:
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


def _get_var(name: str, value: Any, dtype: Any = None, partitioner: Any = None) -> Any:
    """A tf.compat.v1 variable holding ``value`` (in parts when ``partitioner`` is given)."""
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


def write_partitioned() -> None:
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


def _two_device_fn(op: Any) -> str:
    """Places partition 1 (and variables named dev1_*) on /cpu:1."""
    name = op.name
    return "/cpu:1" if ("/part_1" in name or "dev1_" in name) else "/cpu:0"


def write_sharded() -> None:
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


def _v1_values() -> list[tuple[str, Any]]:
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


def write_v1_format() -> None:
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


def write_v1_sharded() -> None:
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
