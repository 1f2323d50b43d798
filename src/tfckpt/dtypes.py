"""TensorFlow's data types, spelled as TensorFlow spells them, mapped to NumPy.

Enum values come from tensorflow/core/framework/types.proto; names and the NumPy types of
``as_numpy_dtype`` from tensorflow/python/framework/dtypes.py.  Sub-byte and 8-bit float
types (int4, uint4, int2, uint2, float8_*, float4_e2m1fn) are stored one element per byte,
exactly as ml_dtypes holds them in memory, and bfloat16 as two bytes.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

__all__ = ["DType", "as_dtype"]


class DType:
    """A TensorFlow data type: ``name``, ``as_datatype_enum``, ``as_numpy_dtype``."""

    __slots__ = ("_enum", "_name", "_numpy_name", "_quantized_base")

    def __init__(
        self, enum: int, name: str, numpy_name: str | None, quantized_base: str | None = None
    ) -> None:
        self._enum = enum
        self._name = name
        self._numpy_name = numpy_name
        self._quantized_base = quantized_base

    @property
    def name(self) -> str:
        """TensorFlow's name of the type, e.g. ``'float32'``, ``'bfloat16'``, ``'string'``."""
        return self._name

    @property
    def as_datatype_enum(self) -> int:
        """The ``DataType`` enum value stored in checkpoints."""
        return self._enum

    @property
    def is_quantized(self) -> bool:
        return self._quantized_base is not None

    @property
    def is_numeric_storage(self) -> bool:
        """True when tensors of this type are stored as raw fixed-size elements."""
        return self._numpy_name is not None

    @property
    def as_numpy_dtype(self) -> Any:
        """The NumPy type TensorFlow associates with this type.

        As in TensorFlow: a scalar type such as ``numpy.float32`` (``ml_dtypes.bfloat16``
        for bfloat16 and friends), ``object`` for strings, and a one-field structured
        ``numpy.dtype`` for the quantized types.
        """
        if self._name in ("string", "resource", "variant"):
            return object
        if self._quantized_base is not None:
            return np.dtype([(self._name, self._quantized_base)])
        return self.storage_dtype.type

    @property
    def storage_dtype(self) -> np.dtype[Any]:
        """The NumPy dtype whose little-endian bytes are this type's storage.

        Quantized types map to their plain integer type; strings, resources and variants have
        no fixed-size storage and raise ``TypeError``.
        """
        if self._numpy_name is None:
            raise TypeError(f"{self._name} tensors have no fixed-size element storage")
        return _numpy_dtype(self._numpy_name)

    @property
    def size(self) -> int:
        """Bytes per element in storage."""
        return self.storage_dtype.itemsize

    def __repr__(self) -> str:
        return f"tfckpt.{self._name}"

    def __str__(self) -> str:
        return f"<dtype: {self._name!r}>"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DType):
            return self._enum == other._enum
        if isinstance(other, str):
            return other in (self._name, _ALIASES.get(self._name))
        name = getattr(other, "name", None)  # e.g. a tf.DType
        if isinstance(name, str) and hasattr(other, "as_datatype_enum"):
            return name == self._name
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._enum)

    def __reduce__(self) -> tuple[Any, ...]:
        return (as_dtype, (self._enum,))


@functools.cache
def _numpy_dtype(name: str) -> np.dtype[Any]:
    try:
        return np.dtype(name)
    except TypeError:
        import ml_dtypes  # bfloat16, float8_*, int4, ... registered with NumPy on import

        return np.dtype(getattr(ml_dtypes, name))


# (enum, TensorFlow name, storage NumPy type name, quantized base)
_TABLE: list[tuple[int, str, str | None, str | None]] = [
    (1, "float32", "float32", None),
    (2, "float64", "float64", None),
    (3, "int32", "int32", None),
    (4, "uint8", "uint8", None),
    (5, "int16", "int16", None),
    (6, "int8", "int8", None),
    (7, "string", None, None),
    (8, "complex64", "complex64", None),
    (9, "int64", "int64", None),
    (10, "bool", "bool", None),
    (11, "qint8", "int8", "i1"),
    (12, "quint8", "uint8", "u1"),
    (13, "qint32", "int32", "<i4"),
    (14, "bfloat16", "bfloat16", None),
    (15, "qint16", "int16", "<i2"),
    (16, "quint16", "uint16", "<u2"),
    (17, "uint16", "uint16", None),
    (18, "complex128", "complex128", None),
    (19, "float16", "float16", None),
    (20, "resource", None, None),
    (21, "variant", None, None),
    (22, "uint32", "uint32", None),
    (23, "uint64", "uint64", None),
    (24, "float8_e5m2", "float8_e5m2", None),
    (25, "float8_e4m3fn", "float8_e4m3fn", None),
    (26, "float8_e4m3fnuz", "float8_e4m3fnuz", None),
    (27, "float8_e4m3b11fnuz", "float8_e4m3b11fnuz", None),
    (28, "float8_e5m2fnuz", "float8_e5m2fnuz", None),
    (29, "int4", "int4", None),
    (30, "uint4", "uint4", None),
    (31, "int2", "int2", None),
    (32, "uint2", "uint2", None),
    (33, "float4_e2m1fn", "float4_e2m1fn", None),
]

_ALIASES = {"float16": "half", "float32": "float", "float64": "double"}

_BY_ENUM: dict[int, DType] = {e: DType(e, n, s, q) for e, n, s, q in _TABLE}
_BY_NAME: dict[str, DType] = {d.name: d for d in _BY_ENUM.values()}
_BY_NAME.update({alias: _BY_NAME[name] for name, alias in _ALIASES.items()})

string = _BY_NAME["string"]


def __getattr__(name: str) -> DType:
    # ``tfckpt.dtypes.float32``, ``tfckpt.dtypes.bool``, ... as in ``tf.dtypes``; looked up
    # here rather than bound as globals so that names like ``bool`` do not shadow builtins.
    try:
        return _BY_NAME[name]
    except KeyError:
        raise AttributeError(f"module 'tfckpt.dtypes' has no attribute {name!r}") from None


def from_enum(enum: int) -> DType | None:
    """The DType of a ``DataType`` enum value, or None if tfckpt does not know it."""
    return _BY_ENUM.get(enum)


def as_dtype(value: Any) -> DType:
    """Converts an enum value, a name, a NumPy dtype or a TensorFlow DType to a DType."""
    if isinstance(value, DType):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        if value in _BY_ENUM:
            return _BY_ENUM[value]
        raise TypeError(f"unknown DataType enum value {value}")
    if isinstance(value, str) and value in _BY_NAME:
        return _BY_NAME[value]
    enum = getattr(value, "as_datatype_enum", None)
    if isinstance(enum, int):
        return as_dtype(enum)
    try:
        np_dtype = np.dtype(value)
    except TypeError:
        raise TypeError(f"cannot interpret {value!r} as a TensorFlow dtype") from None
    return from_numpy(np_dtype)


def from_numpy(np_dtype: np.dtype[Any]) -> DType:
    """The DType for arrays of a NumPy dtype (object, bytes and str arrays are strings)."""
    if np_dtype.kind in "OSU":
        return string
    if np_dtype.names is not None and len(np_dtype.names) == 1:
        name = np_dtype.names[0]
        quantized = _BY_NAME.get(name)
        if quantized is not None and quantized.is_quantized:
            return quantized
    name = np_dtype.newbyteorder("=").name if np_dtype.byteorder in "<>" else np_dtype.name
    found = _BY_NAME.get(name)
    if found is None or not found.is_numeric_storage or found.is_quantized:
        raise TypeError(f"NumPy dtype {np_dtype} has no TensorFlow equivalent")
    return found
