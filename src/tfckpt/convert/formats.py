"""The formats a conversion writes, and which values each can hold."""

from __future__ import annotations

import os

from tfckpt import dtypes
from tfckpt.errors import InvalidArgumentError, UnsupportedError
from tfckpt.inspection.sources import SAFETENSORS_DTYPES, Spec

CHECKPOINT = "checkpoint"
SAFETENSORS = "safetensors"
NPZ = "npz"
OUTPUT_FORMATS = (CHECKPOINT, SAFETENSORS, NPZ)
# Keras 3 names a .weights.h5 file's groups after the layers' Python classes and variable
# creation order (keras/src/saving/saving_lib.py), which a checkpoint does not record.
_KERAS_UNSUPPORTED = (
    "Keras .weights.h5 files are not written: their layout (layers/<snake_case class name>_N/"
    "vars/<index>) comes from the model's Python classes, which a checkpoint does not record; "
    "load the checkpoint into the Keras model and call model.save_weights()"
)

_SAFETENSORS_HOLDS = frozenset(SAFETENSORS_DTYPES.values())
# NumPy holds these through ml_dtypes; its .npy format has no name for them.
ML_DTYPES = frozenset(
    {
        "bfloat16",
        "float8_e5m2",
        "float8_e4m3fn",
        "float8_e4m3fnuz",
        "float8_e4m3b11fnuz",
        "float8_e5m2fnuz",
        "int4",
        "uint4",
        "int2",
        "uint2",
        "float4_e2m1fn",
    }
)
QUANTIZED = frozenset({"qint8", "quint8", "qint16", "quint16", "qint32"})


def output_format(path: str | os.PathLike[str], requested: str | None = None) -> str:
    """The format to write at ``path``: ``requested`` when given, else from the name
    (``.safetensors``, ``.npz``; anything else is a checkpoint prefix).

    Raises:
        InvalidArgumentError: ``requested`` is not a known format.
        UnsupportedError: a Keras ``.h5`` file.
    """
    if requested is not None:
        if requested not in OUTPUT_FORMATS:
            raise InvalidArgumentError(
                f"unknown output format {requested!r} (expected one of {', '.join(OUTPUT_FORMATS)})"
            )
        return requested
    lowered = os.fspath(path).lower()
    if lowered.endswith(".safetensors"):
        return SAFETENSORS
    if lowered.endswith(".npz"):
        return NPZ
    if lowered.endswith(".h5"):
        raise UnsupportedError(_KERAS_UNSUPPORTED, path=os.fspath(path))
    return CHECKPOINT


def cannot_hold(output: str, spec: Spec) -> str | None:
    """Why ``output`` cannot hold a value of ``spec``, or None when it can."""
    dtype = spec.dtype
    if output == CHECKPOINT:
        try:
            found = dtypes.as_dtype(dtype)
        except TypeError:
            return f"{dtype} has no TensorFlow dtype"
        if found.name in ("resource", "variant"):
            return f"{found.name} tensors hold TensorFlow's C++ objects, which tfckpt cannot copy"
        return None
    if output == SAFETENSORS:
        if dtype == "string":
            return (
                "a string tensor: safetensors holds only numbers (exclude it with --exclude, "
                "or write .npz)"
            )
        if dtype in QUANTIZED:
            return f"{dtype}: safetensors has no quantized dtypes"
        if dtype not in _SAFETENSORS_HOLDS:
            return f"{dtype}: safetensors has no such dtype"
        return None
    if output == NPZ:
        if dtype in ML_DTYPES:
            return (
                f"{dtype}: NumPy's .npy format has no name for it (it would read back as raw "
                f"bytes); write .safetensors instead"
            )
        if dtype in QUANTIZED:
            return f"{dtype}: NumPy has no quantized dtypes (it would read back as plain integers)"
        if dtype in ("resource", "variant") or dtype.startswith("safetensors:"):
            return f"{dtype} cannot be stored in .npz"
        return None
    raise InvalidArgumentError(f"unknown output format {output!r}")
