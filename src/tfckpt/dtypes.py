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
    """A TensorFlow data type, with the attributes of ``tf.DType`` that code relies on.

    ``name``, ``as_datatype_enum``, ``as_numpy_dtype``, ``size``, ``min``/``max``,
    ``is_floating``/``is_integer``/``is_complex``/``is_quantized``/``is_bool``/
    ``is_unsigned``/``is_numeric``, ``real_dtype``, ``base_dtype``.  Equal, as in
    TensorFlow, to everything :func:`as_dtype` turns into the same type: the matching
    NumPy dtype or scalar type, the enum value, the name, a ``tf.DType``.

    Example::

        >>> tfckpt.dtypes.float32 == numpy.float32 == tfckpt.as_dtype("float")
        True
        >>> tfckpt.dtypes.bfloat16.is_floating, tfckpt.dtypes.bfloat16.size
        (True, 2)
    """

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

    # -- kinds, as tensorflow/python/framework/dtypes.py (its C++ _dtypes) answers them ------

    @property
    def is_floating(self) -> bool:
        """float16/32/64, bfloat16, the float8 types and float4_e2m1fn."""
        return _KIND[self._name] == "f"

    @property
    def is_integer(self) -> bool:
        """Signed and unsigned integers, int4/uint4/int2/uint2 included (not quantized, not
        bool)."""
        return _KIND[self._name] in "iu"

    @property
    def is_unsigned(self) -> bool:
        return _KIND[self._name] == "u"

    @property
    def is_complex(self) -> bool:
        return _KIND[self._name] == "c"

    @property
    def is_quantized(self) -> bool:
        return self._quantized_base is not None

    @property
    def is_bool(self) -> bool:
        return self._name == "bool"

    @property
    def is_numeric(self) -> bool:
        """TensorFlow's ``kNumberTypes``: the classic numeric and quantized types (not bool,
        and not the 8-bit float and sub-byte types)."""
        return _KIND[self._name] in "fiucq" and self._name not in _NARROW

    @property
    def is_numpy_compatible(self) -> bool:
        """False for resource and variant, which hold C++ objects."""
        return _KIND[self._name] != "r"

    @property
    def real_dtype(self) -> DType:
        """float32 for complex64, float64 for complex128, else the type itself."""
        real = _REAL.get(self._name)
        return _BY_NAME[real] if real is not None else self

    @property
    def base_dtype(self) -> DType:
        """The type itself (tfckpt has no TF1 reference types)."""
        return self

    def is_compatible_with(self, other: Any) -> bool:
        """Whether ``other`` converts to this type (TF1's check; raises TypeError if it does
        not convert at all)."""
        return as_dtype(other)._enum == self._enum

    # -- NumPy -------------------------------------------------------------------------------

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
        """Bytes per element (0 for string, resource and variant, as in TensorFlow)."""
        return 0 if self._numpy_name is None else self.storage_dtype.itemsize

    @property
    def min(self) -> Any:
        """The smallest value of the type (a NumPy or ml_dtypes scalar for floating types, an
        int for integers).  TypeError for bool, string, complex and quantized types."""
        return self._limit("min")

    @property
    def max(self) -> Any:
        """The largest value of the type (see :attr:`min`)."""
        return self._limit("max")

    def _limit(self, which: str) -> Any:
        kind = _KIND[self._name]
        if kind not in "fiu":
            word = "minimum" if which == "min" else "maximum"
            raise TypeError(f"Cannot find {word} value of {self} with type {self._name}.")
        import ml_dtypes  # knows NumPy's types and its own

        info = ml_dtypes.finfo if kind == "f" else ml_dtypes.iinfo
        return getattr(info(self.as_numpy_dtype), which)

    # -- identity ----------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"tfckpt.{self._name}"

    def __str__(self) -> str:
        return f"<dtype: {self._name!r}>"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DType):
            return self._enum == other._enum
        if other is None:
            return False
        try:
            return as_dtype(other)._enum == self._enum
        except TypeError:
            return NotImplemented

    def __hash__(self) -> int:
        return hash(self._enum)  # as tf.DType: the enum value's hash

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

# Kind per type: f floating, i signed integer, u unsigned integer, c complex, q quantized,
# b bool, s string, r resource/variant.
_FLOATING = ["float16", "float32", "float64", "bfloat16", "float4_e2m1fn", "float8_e5m2"]
_FLOATING += ["float8_e4m3fn", "float8_e4m3fnuz", "float8_e4m3b11fnuz", "float8_e5m2fnuz"]
_KIND = {
    **dict.fromkeys(_FLOATING, "f"),
    **dict.fromkeys(["int8", "int16", "int32", "int64", "int4", "int2"], "i"),
    **dict.fromkeys(["uint8", "uint16", "uint32", "uint64", "uint4", "uint2"], "u"),
    **dict.fromkeys(["complex64", "complex128"], "c"),
    **dict.fromkeys(["qint8", "quint8", "qint16", "quint16", "qint32"], "q"),
    "bool": "b",
    "string": "s",
    "resource": "r",
    "variant": "r",
}
# Types TensorFlow leaves out of kNumberTypes (so is_numeric is False for them).
_NARROW = frozenset(
    [*(n for n in _KIND if n.startswith(("float8", "float4"))), "int4", "uint4", "int2", "uint2"]
)
_REAL = {"complex64": "float32", "complex128": "float64"}
# What tf.as_dtype makes of Python's own types (int and complex it refuses).
_PYTHON_TYPES: dict[Any, str] = {float: "float32", bool: "bool", object: "string"}

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


def as_dtype(type_value: Any) -> DType:
    """Converts what ``tf.as_dtype`` accepts to a DType, by TensorFlow's rules.

    A DType or ``tf.DType``, a ``DataType`` enum value, a TensorFlow name (``'float32'``,
    ``'float'``, ``'half'``, ...), a NumPy dtype, scalar type or ml_dtypes type (any byte
    order; bytes, str and object arrays are strings), Python's ``float`` (float32),
    ``bool`` and ``object`` (string), or an object with a ``dtype`` attribute (an array).

    Raises:
        TypeError: anything else, e.g. ``int``, ``'f4'`` or an unknown enum value.

    Example::

        >>> tfckpt.as_dtype(numpy.float32), tfckpt.as_dtype(14), tfckpt.as_dtype("half")
        (tfckpt.float32, tfckpt.bfloat16, tfckpt.float16)
    """
    if isinstance(type_value, DType):
        return type_value
    if isinstance(type_value, np.dtype):
        return from_numpy(type_value)
    if isinstance(type_value, int) and not isinstance(type_value, bool):
        if type_value in _BY_ENUM:
            return _BY_ENUM[type_value]
        raise TypeError(f"unknown DataType enum value {type_value}")
    if isinstance(type_value, str):
        if type_value in _BY_NAME:
            return _BY_NAME[type_value]
        raise TypeError(f"{type_value!r} is not the name of a TensorFlow dtype")
    if isinstance(type_value, type):
        if type_value in _PYTHON_TYPES:
            return _BY_NAME[_PYTHON_TYPES[type_value]]
        if issubclass(type_value, np.generic):
            return from_numpy(np.dtype(type_value))
    enum = getattr(type_value, "as_datatype_enum", None)
    if isinstance(enum, int):  # a tf.DType
        return as_dtype(enum)
    inner = getattr(type_value, "dtype", None)
    if isinstance(inner, (np.dtype, DType)):  # an array, a tensor view
        return as_dtype(inner)
    raise TypeError(f"cannot interpret {type_value!r} as a TensorFlow dtype")


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
