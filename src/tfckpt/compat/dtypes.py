"""The ``tf.dtypes`` namespace: ``DType``, ``as_dtype`` and every dtype by name.

``tf.dtypes.float32``, ``tf.dtypes.bool``, ``half``, ``double`` ... are
:class:`tfckpt.DType` objects; the 8-bit float and sub-byte types are also under
``experimental`` as in TensorFlow.  Tensor operations (``cast``, ``saturate_cast``,
``complex``) are not provided.

Example::

    from tfckpt import tf_compat as tf

    assert tf.dtypes.float32 == numpy.float32 and tf.dtypes.experimental.int4.size == 1
"""

from __future__ import annotations

from types import SimpleNamespace

from tfckpt import dtypes as _dtypes
from tfckpt.dtypes import DType, as_dtype

__all__ = ["QUANTIZED_DTYPES", "DType", "as_dtype", "experimental"]

_EXPERIMENTAL = ["float8_e5m2", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e4m3b11fnuz"]
_EXPERIMENTAL += ["float8_e5m2fnuz", "float4_e2m1fn", "int4", "uint4", "int2", "uint2"]

experimental = SimpleNamespace(**{name: as_dtype(name) for name in _EXPERIMENTAL})
QUANTIZED_DTYPES = frozenset(map(as_dtype, ["qint8", "quint8", "qint16", "quint16", "qint32"]))


def __getattr__(name: str) -> DType:
    # Names such as ``bool`` are looked up rather than bound, so as not to shadow builtins.
    try:
        return getattr(_dtypes, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
