"""``dtypes/``: one tensor per dtype TF 2.21 can save, with the awkward values of each."""

from __future__ import annotations

from typing import Any

from .common import save_v2


def _bits(np_dtype: Any, uint_dtype: Any, patterns: list[int]) -> Any:
    import numpy as np

    return np.array(patterns, dtype=uint_dtype).view(np_dtype)


def write_dtypes() -> None:
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
    save_v2(items)
