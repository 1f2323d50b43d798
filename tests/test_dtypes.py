"""tfckpt.DType behaves like tf.DType where client code relies on it (src/tfckpt/dtypes.py).

The expected answers are TensorFlow 2.21's, written out here so that this suite runs
without TensorFlow; tests/tf/test_compat_interop.py checks every one against TensorFlow.
"""

from __future__ import annotations

import pickle

import ml_dtypes
import numpy as np
import pytest

import tfckpt
from tfckpt import dtypes

# name: (is_floating, is_integer, is_unsigned, is_complex, is_quantized, is_bool,
#        is_numeric, size), as tf.as_dtype(name) answers.
TF_ANSWERS = {
    "float32": (1, 0, 0, 0, 0, 0, 1, 4),
    "float64": (1, 0, 0, 0, 0, 0, 1, 8),
    "float16": (1, 0, 0, 0, 0, 0, 1, 2),
    "bfloat16": (1, 0, 0, 0, 0, 0, 1, 2),
    "float8_e5m2": (1, 0, 0, 0, 0, 0, 0, 1),
    "float8_e4m3fn": (1, 0, 0, 0, 0, 0, 0, 1),
    "float4_e2m1fn": (1, 0, 0, 0, 0, 0, 0, 1),
    "int8": (0, 1, 0, 0, 0, 0, 1, 1),
    "int32": (0, 1, 0, 0, 0, 0, 1, 4),
    "int64": (0, 1, 0, 0, 0, 0, 1, 8),
    "uint8": (0, 1, 1, 0, 0, 0, 1, 1),
    "uint64": (0, 1, 1, 0, 0, 0, 1, 8),
    "int4": (0, 1, 0, 0, 0, 0, 0, 1),
    "uint4": (0, 1, 1, 0, 0, 0, 0, 1),
    "uint2": (0, 1, 1, 0, 0, 0, 0, 1),
    "complex64": (0, 0, 0, 1, 0, 0, 1, 8),
    "complex128": (0, 0, 0, 1, 0, 0, 1, 16),
    "qint8": (0, 0, 0, 0, 1, 0, 1, 1),
    "quint16": (0, 0, 0, 0, 1, 0, 1, 2),
    "qint32": (0, 0, 0, 0, 1, 0, 1, 4),
    "bool": (0, 0, 0, 0, 0, 1, 0, 1),
    "string": (0, 0, 0, 0, 0, 0, 0, 0),
    "resource": (0, 0, 0, 0, 0, 0, 0, 0),
    "variant": (0, 0, 0, 0, 0, 0, 0, 0),
}


@pytest.mark.parametrize("name", sorted(TF_ANSWERS))
def test_kinds_and_size_are_tensorflows(name):
    """is_floating/is_integer/is_unsigned/is_complex/is_quantized/is_bool/is_numeric and
    size answer as tf.DType does (is_numeric False for the 8-bit and sub-byte types; size
    0 for string, resource and variant)."""
    dtype = tfckpt.as_dtype(name)
    got = (
        dtype.is_floating,
        dtype.is_integer,
        dtype.is_unsigned,
        dtype.is_complex,
        dtype.is_quantized,
        dtype.is_bool,
        dtype.is_numeric,
        dtype.size,
    )
    *kinds, size = TF_ANSWERS[name]
    assert got == (*(bool(v) for v in kinds), size)
    assert dtype.is_numpy_compatible == (name not in ("resource", "variant"))


@pytest.mark.parametrize(
    ("name", "low", "high", "kind"),
    [
        ("float32", np.finfo(np.float32).min, np.finfo(np.float32).max, np.float32),
        ("float16", np.finfo(np.float16).min, np.finfo(np.float16).max, np.float16),
        ("bfloat16", ml_dtypes.finfo(ml_dtypes.bfloat16).min, None, ml_dtypes.bfloat16),
        ("float8_e4m3fn", -448, 448, ml_dtypes.float8_e4m3fn),
        ("int8", -128, 127, int),
        ("uint16", 0, 65535, int),
        ("int64", -(2**63), 2**63 - 1, int),
        ("uint64", 0, 2**64 - 1, int),
        ("int4", -8, 7, int),
        ("uint2", 0, 3, int),
    ],
)
def test_min_and_max(name, low, high, kind):
    """min/max are the type's limits, as NumPy/ml_dtypes scalars for floating types and
    Python ints for integers (what TensorFlow returns)."""
    dtype = tfckpt.as_dtype(name)
    assert dtype.min == low and type(dtype.min) is kind
    if high is not None:
        assert dtype.max == high and type(dtype.max) is kind
    assert dtype.max == -dtype.min or dtype.is_unsigned or dtype.is_integer


@pytest.mark.parametrize("name", ["bool", "string", "complex64", "complex128", "qint8", "variant"])
def test_min_and_max_refused_where_tensorflow_refuses(name):
    """bool, string, complex, quantized (and resource/variant) have no min/max: TypeError."""
    with pytest.raises(TypeError):
        _ = tfckpt.as_dtype(name).min
    with pytest.raises(TypeError):
        _ = tfckpt.as_dtype(name).max


EQUAL = [
    ("float32", [np.float32, np.dtype("float32"), np.dtype(">f4"), 1, "float32", "float", float]),
    ("float64", [np.float64, np.dtype("<f8"), 2, "double"]),
    ("float16", [np.float16, "half", 19]),
    ("bfloat16", [ml_dtypes.bfloat16, np.dtype(ml_dtypes.bfloat16), 14]),
    ("int4", [ml_dtypes.int4, 29]),
    ("int64", [np.int64, np.longlong, np.dtype(">i8"), 9]),
    ("bool", [np.bool_, bool, 10, "bool"]),
    ("string", [object, np.object_, np.bytes_, np.str_, np.dtype("S3"), np.dtype("U2"), 7]),
    ("qint8", [np.dtype([("qint8", "i1")]), 11, "qint8"]),
]
NOT_EQUAL = [
    ("float32", [np.float64, 2, "float64", "f4", None, "nope", int, object(), [1], True]),
    ("float64", [float, "float"]),  # Python's float is float32 to TensorFlow
    ("int64", [int, np.int32]),  # and int converts to nothing
    ("qint8", [np.int8, np.dtype("int8")]),  # quantized types are not their plain ints
]


@pytest.mark.parametrize(("name", "others"), EQUAL)
def test_equal_to_numpy_types_enums_and_names(name, others):
    """A DType equals the NumPy dtype (any byte order), scalar type, enum value, names and
    Python types that tf.as_dtype turns into it, from either side of ``==``, and hashes
    like its enum value."""
    dtype = tfckpt.as_dtype(name)
    for other in others:
        assert dtype == other, other
        assert other == dtype, other
        assert (dtype != other) is False, other
    assert hash(dtype) == hash(dtype.as_datatype_enum)


@pytest.mark.parametrize(("name", "others"), NOT_EQUAL)
def test_not_equal_to_other_types(name, others):
    """...and not equal to anything that converts to another type or does not convert."""
    dtype = tfckpt.as_dtype(name)
    for other in others:
        assert dtype != other, other
        assert (dtype == other) is False, other


def test_as_dtype_follows_tensorflows_rules():
    """as_dtype takes what tf.as_dtype takes (Python float is float32, arrays give their
    dtype, bytes/str/object arrays are strings) and refuses what it refuses (int, NumPy
    type strings such as 'f4', unknown enums and names)."""
    assert tfckpt.as_dtype(float) is dtypes.float32
    assert tfckpt.as_dtype(bool) is tfckpt.as_dtype("bool")
    assert tfckpt.as_dtype(object) is dtypes.string
    assert tfckpt.as_dtype(np.zeros(2, np.int8)) is dtypes.int8
    assert dtypes.float64 == np.zeros(2)  # (array == dtype compares element-wise instead)
    assert tfckpt.as_dtype(np.array([b"x"])) is dtypes.string
    assert tfckpt.as_dtype(np.dtype(">u2")) is dtypes.uint16
    assert tfckpt.as_dtype(type_value="half") is dtypes.float16  # TensorFlow's keyword
    for refused in (int, complex, "f4", "int", 0, 34, 1000, True, None, np.dtype("V4")):
        with pytest.raises(TypeError):
            tfckpt.as_dtype(refused)


def test_real_base_and_compatibility():
    """real_dtype maps complex to its part type; base_dtype is the type itself;
    is_compatible_with converts like as_dtype."""
    assert dtypes.complex64.real_dtype is dtypes.float32
    assert dtypes.complex128.real_dtype is dtypes.float64
    assert dtypes.int8.real_dtype is dtypes.int8
    assert dtypes.float32.base_dtype is dtypes.float32
    assert dtypes.float32.is_compatible_with(np.float32)
    assert not dtypes.float32.is_compatible_with("int32")


def test_numpy_views_and_printing():
    """as_numpy_dtype is TensorFlow's (scalar types; object for strings; a one-field
    structured dtype for quantized types); str() is TensorFlow's."""
    assert dtypes.float32.as_numpy_dtype is np.float32
    assert dtypes.bfloat16.as_numpy_dtype is ml_dtypes.bfloat16
    assert dtypes.string.as_numpy_dtype is object
    assert np.dtype(dtypes.qint8.as_numpy_dtype) == np.dtype([("qint8", "i1")])
    assert str(dtypes.float32) == "<dtype: 'float32'>"
    assert repr(dtypes.float32) == "tfckpt.float32"


def test_pickles_to_the_same_object():
    """Pickling keeps dtypes interned (the same object comes back)."""
    for enum in range(1, 34):
        dtype = tfckpt.as_dtype(enum)
        assert pickle.loads(pickle.dumps(dtype)) is dtype


def test_reader_dtype_maps_compare_equal_to_numpy(tmp_path):
    """The dtypes a reader returns compare equal to the NumPy types of the stored arrays,
    as client code tests them (``dtype == np.float32``)."""
    prefix = tfckpt.save_tensors(
        tmp_path / "m",
        {"f": np.zeros(2, np.float32), "i": np.zeros(2, np.int64), "s": np.array([b"a"])},
    )
    found = tfckpt.load_checkpoint(prefix).get_variable_to_dtype_map()
    assert found == {"f": np.float32, "i": np.int64, "s": object}
    assert found["f"].is_floating and found["i"].is_integer and not found["s"].is_numeric
