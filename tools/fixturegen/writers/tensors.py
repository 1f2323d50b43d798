"""SaveV2 fixtures of strings, shapes, many keys and a variant tensor."""

from __future__ import annotations

from .common import save_v2


def _pattern_bytes(n: int, seed: int) -> bytes:
    """n printable ASCII bytes (keeps MANIFEST.json samples short)."""
    return bytes(0x21 + (seed + 7 * i) % 94 for i in range(n))


def write_strings() -> None:
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
    save_v2(items)


def write_shapes() -> None:
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
    save_v2(items)


MANY_KEYS_N = 1100
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


def many_keys_name(i: int) -> str:
    """~600-character names: few entries fill 3 SSTable blocks (the manifest,
    which repeats every name, stays small)."""
    scopes = "/".join(MANY_KEYS_SCOPES)
    return f"model/layer_{i:04d}/{scopes}/replica_{i % 7}/.ATTRIBUTES/VARIABLE_VALUE"


def write_many_keys() -> None:
    import numpy as np
    import tensorflow as tf

    items = [
        (many_keys_name(i), tf.constant(np.array([i * 0.5], np.float32)))
        for i in range(MANY_KEYS_N)
    ]
    save_v2(items)


def write_variant() -> None:
    import tensorflow as tf

    tensor_list = tf.raw_ops.TensorListFromTensor(
        tensor=tf.constant([1.0, 2.0, 3.0]), element_shape=tf.constant([], dtype=tf.int32)
    )
    save_v2([("tensor_list", tensor_list), ("plain", tf.constant([4.0, 5.0]))])
