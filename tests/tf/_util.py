"""Helpers shared by the TensorFlow interoperability tests.

Nothing here imports TensorFlow: functions that need it take the ``tf`` module (from the
``tf`` fixture) as an argument, so that collecting tests/tf never imports TensorFlow.

The expected values are built with NumPy / ml_dtypes only (never through tfckpt), so a
tfckpt bug cannot make the expectation agree with itself.
"""

from __future__ import annotations

import glob
import os
from typing import Any

import ml_dtypes
import numpy as np

# Every dtype that TensorFlow 2.21 saves with SaveV2 and reads back with
# tf.train.load_checkpoint / RestoreV2 (checked by the tests themselves: the sub-byte and
# 8-bit float types do round-trip in TF 2.21, so they are not special-cased).
FLOAT_DTYPES = ["float16", "bfloat16", "float32", "float64"]
INT_DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
COMPLEX_DTYPES = ["complex64", "complex128"]
SMALL_FLOAT_DTYPES = [
    "float8_e5m2",
    "float8_e4m3fn",
    "float8_e4m3fnuz",
    "float8_e4m3b11fnuz",
    "float8_e5m2fnuz",
    "float4_e2m1fn",
]
SUBBYTE_INT_DTYPES = ["int4", "uint4", "int2", "uint2"]
NUMERIC_DTYPES = (
    FLOAT_DTYPES + INT_DTYPES + ["bool"] + COMPLEX_DTYPES + SMALL_FLOAT_DTYPES + SUBBYTE_INT_DTYPES
)
ALL_DTYPES = [*NUMERIC_DTYPES, "string"]

# Quantized types: stored as the plain integer type; tfckpt and TF's reader return plain
# integer arrays while the dtype map says qint8 etc.
QUANTIZED = {
    "qint8": "int8",
    "quint8": "uint8",
    "qint16": "int16",
    "quint16": "uint16",
    "qint32": "int32",
}

# Number of meaningful bits per element for the sub-byte types (stored one per byte).
SUBBYTE_BITS = {"int4": 4, "uint4": 4, "int2": 2, "uint2": 2, "float4_e2m1fn": 4}

# (exponent bits, mantissa bits) of the IEEE-like types whose bit patterns we build by hand.
_IEEE = {"float16": (5, 10), "bfloat16": (8, 7), "float32": (8, 23), "float64": (11, 52)}

DATA_SUFFIX = ".data-00000-of-00001"


def np_dtype(name: str) -> np.dtype:
    """The NumPy dtype holding a TF dtype's elements (quantized: the plain integer type)."""
    name = QUANTIZED.get(name, name)
    if name == "string":
        return np.dtype(object)
    try:
        return np.dtype(name)
    except TypeError:
        return np.dtype(getattr(ml_dtypes, name))


def _uint_for(itemsize: int) -> np.dtype:
    return np.dtype(f"<u{itemsize}")


def float_bit_patterns(name: str) -> np.ndarray:
    """Interesting bit patterns of an IEEE float type, incl. NaNs with payloads and sNaNs."""
    ebits, mbits = _IEEE[name]
    total = 1 + ebits + mbits
    sign = 1 << (total - 1)
    exp = ((1 << ebits) - 1) << mbits
    quiet = 1 << (mbits - 1)
    one = ((1 << (ebits - 1)) - 1) << mbits
    patterns = [
        exp | quiet | 0x5,  # quiet NaN with payload (first: used for the 0-d tensor)
        0,  # +0
        sign,  # -0
        one,  # 1.0
        sign | one | quiet,  # -1.5
        exp,  # +inf
        sign | exp,  # -inf
        exp | quiet,  # canonical quiet NaN
        exp | 1,  # signalling NaN, payload 1
        sign | exp | quiet | 0x3,  # negative quiet NaN with payload
        sign | exp | 0x2,  # negative signalling NaN
        1,  # smallest subnormal
        (1 << mbits) - 1,  # largest subnormal
        exp - 1,  # largest finite
        sign | (exp - 1),  # most negative finite
        1 << mbits,  # smallest normal
    ]
    store = _uint_for(total // 8)
    return np.array(patterns, dtype=store).view(np_dtype(name))


def pattern_values(name: str, rng: np.random.Generator | None = None) -> np.ndarray:
    """A 1-D array of interesting values (bit patterns) of TF dtype ``name``."""
    rng = rng if rng is not None else np.random.default_rng(1234)
    name = QUANTIZED.get(name, name)
    dt = np_dtype(name)
    if name in _IEEE:
        special = float_bit_patterns(name)
        noise = rng.integers(0, 256, size=8 * dt.itemsize, dtype=np.uint8).view(dt)
        return np.concatenate([special, noise])
    if name in ("complex64", "complex128"):
        part = float_bit_patterns("float32" if name == "complex64" else "float64")
        part = part[: len(part) // 2 * 2]
        noise = rng.integers(0, 256, size=6 * dt.itemsize, dtype=np.uint8)
        return np.concatenate([part.view(dt), noise.view(dt)])
    if name == "bool":
        return np.array([True, False, False, True, True, False, True], dtype=bool)
    if name in SUBBYTE_BITS:
        return np.arange(1 << SUBBYTE_BITS[name], dtype=np.uint8).view(dt)
    if name.startswith("float8_"):
        return np.arange(256, dtype=np.uint8)[::-1].copy().view(dt)
    info = np.iinfo(dt)
    fixed = np.array([info.min, info.max, 0, 1, info.max - 1, info.min + 1], dtype=dt)
    if info.min < 0:
        fixed = np.concatenate([fixed, np.array([-1, -2], dtype=dt)])
    noise = rng.integers(0, 256, size=8 * dt.itemsize, dtype=np.uint8).view(dt)
    return np.concatenate([fixed, noise])


def _fill(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    n = int(np.prod(shape, dtype=np.int64))
    reps = -(-n // max(len(values), 1)) if n else 0
    flat = np.concatenate([values] * reps)[:n] if n else values[:0]
    return np.array(flat.reshape(shape), order="C")


LONG_STRING_LEN = (1 << 21) + 7  # > 2**21: needs a 4-byte varint length


def string_values(rng: np.random.Generator | None = None) -> list[bytes]:
    """Byte strings of every interesting kind: empty, NULs, 0xff, UTF-8, varint edges."""
    rng = rng if rng is not None else np.random.default_rng(99)
    return [
        b"",
        b"\x00",
        b"a\x00b\x00",
        b"\xff\xfe\x00\xff",
        "héllo wörld ✓ 日本語 🎉".encode(),
        b"x" * 127,
        b"y" * 128,
        rng.integers(0, 256, 16383, dtype=np.uint8).tobytes(),
        rng.integers(0, 256, 16384, dtype=np.uint8).tobytes(),
        b"\x00" * 300,
        b"plain",
    ]


def obj_array(values: list[bytes], shape: tuple[int, ...] | None = None) -> np.ndarray:
    """An object array of bytes (never a NumPy 'S' array, which drops trailing NULs)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    if shape is not None:
        out = _fill(out, shape)
    return out


def obj_scalar(value: bytes) -> np.ndarray:
    out = np.empty((), dtype=object)
    out[()] = value
    return out


def sample_tensors(name: str) -> dict[str, np.ndarray]:
    """Tensors of TF dtype ``name`` in many shapes: 0-d, empty, vector, matrix, rank 6."""
    if name == "string":
        values = string_values()
        long = np.random.default_rng(7).integers(0, 256, LONG_STRING_LEN, np.uint8).tobytes()
        return {
            "scalar": obj_scalar(b"hello\x00world\xff"),
            "empty_string_scalar": obj_scalar(b""),
            "vector": obj_array(values),
            "matrix": obj_array(values[:6], (2, 3)),
            "empty": obj_array([], (0,)),
            "empty_3d": obj_array([], (2, 0, 3)),
            "all_empty_strings": obj_array([b""] * 5, (5,)),
            "long": obj_array([b"head", long, b"tail"]),
            "rank6": obj_array(values, (2, 1, 3, 1, 2, 1)),
        }
    values = pattern_values(name)
    return {
        "scalar": _fill(values, ()),
        "vector": values.copy(),
        "matrix": _fill(values, (3, 5)),
        "empty": _fill(values, (0,)),
        "empty_3d": _fill(values, (2, 0, 3)),
        "rank6": _fill(values, (2, 1, 3, 1, 2, 2)),
    }


# -- TensorFlow side -------------------------------------------------------------------------


def to_tf(tf: Any, array: np.ndarray, name: str) -> Any:
    """A TF eager tensor of TF dtype ``name`` holding exactly ``array``'s bits."""
    if name == "string":
        tensor = tf.constant(array, dtype=tf.string)
        got = tensor.numpy()
        if array.ndim == 0:
            assert got == array[()]
        else:
            assert got.tolist() == array.tolist()
    elif name in QUANTIZED:
        tensor = tf.bitcast(tf.constant(array), tf.as_dtype(name))
    else:
        tensor = tf.constant(array)
        # The comparison below is meaningless if TF already changed the bits.
        assert tensor.numpy().tobytes() == array.tobytes(), f"TF altered {name} bits"
    assert tensor.dtype.name == name, (tensor.dtype, name)
    assert tuple(tensor.shape) == array.shape
    return tensor


def tf_save(tf: Any, prefix: str, tensors: dict[str, np.ndarray], dtypes: dict[str, str]) -> str:
    """``tf.raw_ops.SaveV2`` of ``tensors`` (in their order) at ``prefix``."""
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    names = list(tensors)
    tf.raw_ops.SaveV2(
        prefix=prefix,
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[to_tf(tf, tensors[n], dtypes[n]) for n in names],
    )
    return prefix


# -- comparisons -----------------------------------------------------------------------------


def assert_value(actual: Any, expected: np.ndarray, what: str = "") -> None:
    """``actual`` is what a TF-style reader returns for ``expected``, bit for bit.

    0-d numeric → a NumPy scalar of exactly the expected type; 0-d string → ``bytes``;
    string tensors → object arrays of ``bytes``; others → ndarrays of the expected dtype and
    shape.  Floats are compared by their bits (NaN payloads, -0.0).
    """
    if expected.dtype == object:
        if expected.ndim == 0:
            assert type(actual) is bytes, f"{what}: expected bytes, got {type(actual)}"
            assert actual == expected[()], f"{what}: string value differs"
            return
        assert isinstance(actual, np.ndarray), f"{what}: expected ndarray, got {type(actual)}"
        assert actual.dtype == object, f"{what}: dtype {actual.dtype}, expected object"
        assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
        flat = actual.reshape(-1).tolist()
        assert all(type(x) is bytes for x in flat), f"{what}: elements are not all bytes"
        want = expected.reshape(-1).tolist()
        assert len(flat) == len(want)
        for i, (a, b) in enumerate(zip(flat, want)):
            assert a == b, f"{what}: element {i} differs (len {len(a)} vs {len(b)})"
        return
    if expected.ndim == 0:
        assert not isinstance(actual, np.ndarray), f"{what}: 0-d value is an ndarray"
        assert isinstance(actual, np.generic), f"{what}: expected numpy scalar: {type(actual)}"
        assert type(actual) is expected.dtype.type, (
            f"{what}: scalar type {type(actual)}, expected {expected.dtype.type}"
        )
        assert np.asarray(actual).tobytes() == expected.tobytes(), f"{what}: scalar bits differ"
        return
    assert isinstance(actual, np.ndarray), f"{what}: expected ndarray, got {type(actual)}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    a = np.ascontiguousarray(actual).tobytes()
    b = expected.tobytes()
    if a != b:
        first = next(i for i in range(min(len(a), len(b))) if a[i] != b[i]) if a and b else 0
        raise AssertionError(f"{what}: bytes differ (first at byte {first})")


def checkpoint_files(prefix: str) -> list[str]:
    """Basenames (sorted) of the files starting with ``prefix``, incl. any leftover temp files.

    Give each side of a comparison its own directory so that prefixes do not overlap.
    """
    directory = os.path.dirname(prefix) or "."
    base = os.path.basename(prefix)
    return sorted(
        os.path.basename(p)
        for p in glob.glob(os.path.join(glob.escape(directory), "*"))
        if os.path.basename(p).startswith(base)
    )


def _first_difference(a: bytes, b: bytes) -> str:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            lo = max(0, i - 8)
            return f"first difference at byte {i}: {a[lo : i + 8]!r} vs {b[lo : i + 8]!r}"
    return f"one is a prefix of the other (lengths {len(a)} vs {len(b)})"


def assert_identical_files(ours: str, theirs: str) -> None:
    """The checkpoints at the two prefixes consist of byte-identical files."""
    our_files = [f[len(os.path.basename(ours)) :] for f in checkpoint_files(ours)]
    their_files = [f[len(os.path.basename(theirs)) :] for f in checkpoint_files(theirs)]
    assert our_files == their_files, f"file sets differ: {our_files} vs {their_files}"
    assert ".index" in our_files
    for suffix in our_files:
        with open(ours + suffix, "rb") as f:
            a = f.read()
        with open(theirs + suffix, "rb") as f:
            b = f.read()
        if a != b:
            raise AssertionError(
                f"{suffix} differs: tfckpt {len(a)} bytes, TensorFlow {len(b)} bytes; "
                + _first_difference(a, b)
            )
