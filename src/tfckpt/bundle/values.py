"""Python and NumPy values as the arrays a bundle stores.

A value becomes a C-contiguous array of its TensorFlow dtype's storage dtype (quantized
values as their plain integer type, other byte orders swapped once), or an object array of
bytes for a string tensor; what TensorFlow could not store either is refused by name.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import numpy as np

from tfckpt import dtypes
from tfckpt.errors import InvalidArgumentError


def to_array(value: Any, name: str, dtype: Any = None) -> tuple[np.ndarray, dtypes.DType]:
    """Converts a value to the array that will be stored and its TensorFlow dtype.

    NumPy arrays and scalars keep their dtype; ``bytes``/``str`` (and arrays of them, or of
    objects holding them) become string tensors; other values go through ``numpy.asarray``.
    ``dtype`` forces a TensorFlow dtype, e.g. ``'qint8'`` for an int8 array.

    Raises:
        InvalidArgumentError: the value cannot be stored (as ``dtype``).
    """
    array = _as_array(value, name)
    try:
        tf_dtype = dtypes.as_dtype(dtype) if dtype is not None else dtypes.from_numpy(array.dtype)
    except TypeError as exc:
        raise InvalidArgumentError(str(exc), tensor=name) from None
    if tf_dtype.name in ("resource", "variant"):
        raise InvalidArgumentError(
            f"{tf_dtype.name} tensors cannot be written without TensorFlow", tensor=name
        )
    if tf_dtype.name == "string":
        if array.dtype.kind not in "OSU":
            raise InvalidArgumentError(
                f"a string tensor needs bytes or str values, found {array.dtype}", tensor=name
            )
        return array, tf_dtype
    array = _as_storage(array, tf_dtype, name)
    if not array.flags.c_contiguous:
        array = np.array(array, order="C")  # (np.ascontiguousarray would make 0-d arrays 1-d)
    return array, tf_dtype


def _as_array(value: Any, name: str) -> np.ndarray:
    if isinstance(value, (bytes, str, bytearray, np.bytes_, np.str_)):
        array = np.empty((), object)
        array[()] = as_bytes(value, name)
        return array
    try:
        return np.asarray(value)
    except Exception as exc:
        raise InvalidArgumentError(
            f"cannot convert {type(value).__name__} to an array: {exc}", tensor=name
        ) from None


def _as_storage(array: np.ndarray, tf_dtype: dtypes.DType, name: str) -> np.ndarray:
    """``array`` as ``tf_dtype``'s storage dtype: byte order swapped, or quantized values
    viewed as their plain integer type; other dtypes are rejected."""
    storage = tf_dtype.storage_dtype
    if array.dtype.kind in "OSU":
        raise InvalidArgumentError(
            f"cannot store {array.dtype} values as {tf_dtype.name}", tensor=name
        )
    if array.dtype == storage:
        return array
    if array.dtype.newbyteorder("=") == storage.newbyteorder("="):
        return array.astype(storage)  # non-native byte order: swap once
    if (
        tf_dtype.is_quantized
        and array.dtype.itemsize == storage.itemsize
        and (array.dtype.names is not None or array.dtype.kind in "iu")
    ):
        return array.view(storage)
    raise InvalidArgumentError(
        f"values of dtype {array.dtype} do not match {tf_dtype.name}; convert them first",
        tensor=name,
    )


def as_bytes(value: Any, name: str) -> bytes:
    """One element of a string tensor as bytes (``str`` as UTF-8).

    Raises:
        InvalidArgumentError: the element is not bytes-like or ``str``.
    """
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytearray, memoryview, np.bytes_)):
        return bytes(value)
    raise InvalidArgumentError(
        f"string tensors hold bytes or str, found {type(value).__name__}", tensor=name
    )


def stored_as_is(big_endian: bool) -> dict[np.dtype[Any], int]:
    """NumPy dtype -> DataType enum for the arrays a bundle of that byte order stores as they
    are: native storage dtypes (not quantized), of all sizes when the bundle's byte order is
    the machine's, else single bytes only.

    ml_dtypes' types (bfloat16, float8_*, int4, ...) are included once ml_dtypes is
    imported (arrays of them import it); this never imports it (``import tfckpt`` does not).
    """
    native_order = big_endian == (sys.byteorder == "big")
    return {
        np_dtype: tf_dtype.as_datatype_enum
        for np_dtype, tf_dtype in _native_dtype_table("ml_dtypes" in sys.modules).items()
        if native_order or np_dtype.itemsize == 1
    }


def in_byte_order(array: np.ndarray, big_endian: bool) -> np.ndarray:
    """A numeric array as a bundle of that byte order stores it (swapped into a copy if the
    machine's order differs; byte_swap_tensor.cc: every element, complex numbers by
    component)."""
    unit = array.dtype.itemsize // 2 if array.dtype.kind == "c" else array.dtype.itemsize
    if unit == 1 or big_endian == (sys.byteorder == "big"):
        return array
    flat = array.reshape(-1)
    return flat.view(f"u{unit}").byteswap().view(flat.dtype).reshape(array.shape)


@functools.cache
def _native_dtype_table(with_ml_dtypes: bool) -> dict[np.dtype[Any], dtypes.DType]:
    table: dict[np.dtype[Any], dtypes.DType] = {}
    for enum in range(1, 64):
        tf_dtype = dtypes.from_enum(enum)
        if tf_dtype is None or not tf_dtype.is_numeric_storage or tf_dtype.is_quantized:
            continue
        if not with_ml_dtypes:
            try:
                np.dtype(tf_dtype.name)
            except TypeError:
                continue  # an ml_dtypes type
        storage = tf_dtype.storage_dtype
        if dtypes.from_numpy(storage) is tf_dtype:
            table[storage] = tf_dtype
    return table
