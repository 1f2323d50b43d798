"""The formats a conversion writes, and which values each can hold."""

from __future__ import annotations

import os

from tfckpt import dtypes
from tfckpt.errors import InvalidArgumentError
from tfckpt.inspection.sources import SAFETENSORS_DTYPES, Spec

CHECKPOINT = "checkpoint"
SAFETENSORS = "safetensors"
NPZ = "npz"
KERAS = "keras"  # a Keras 3 .weights.h5 file (tfckpt.convert.keras_h5)
OUTPUT_FORMATS = (CHECKPOINT, SAFETENSORS, NPZ, KERAS)
KERAS_SUFFIX = ".weights.h5"
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
_KERAS_HOLDS = frozenset(
    {
        "bool",
        "float16",
        "float32",
        "float64",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "complex64",
        "complex128",
    }
)
QUANTIZED = frozenset({"qint8", "quint8", "qint16", "quint16", "qint32"})


def output_format(path: str | os.PathLike[str], requested: str | None = None) -> str:
    """The format to write at ``path``: ``requested`` when given, else from the name
    (``.safetensors``, ``.npz``, ``.weights.h5`` for Keras; anything else is a checkpoint
    prefix).

    Raises:
        InvalidArgumentError: ``requested`` is not a known format, or a Keras weights file
            is not named ``*.weights.h5`` (``Model.load_weights`` takes no other name).
    """
    lowered = os.fspath(path).lower()
    if requested is not None:
        if requested not in OUTPUT_FORMATS:
            raise InvalidArgumentError(
                f"unknown output format {requested!r} (expected one of {', '.join(OUTPUT_FORMATS)})"
            )
        found = requested
    elif lowered.endswith(".safetensors"):
        found = SAFETENSORS
    elif lowered.endswith(".npz"):
        found = NPZ
    elif lowered.endswith(".h5"):
        found = KERAS
    else:
        found = CHECKPOINT
    # keras/src/saving/saving_lib.py load_weights_only: only "...weights.h5" names are
    # read as weights files.
    if found == KERAS and not os.fspath(path).endswith(KERAS_SUFFIX):
        raise InvalidArgumentError(
            f"Keras 3 loads weights only from files named *{KERAS_SUFFIX}; name the output "
            f"e.g. 'model{KERAS_SUFFIX}'",
            path=os.fspath(path),
        )
    return found


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
    if output == KERAS:
        # HDF5 holds NumPy's numbers; Keras marks bfloat16 datasets itself (H5IOStore).
        if dtype == "bfloat16" or dtype in _KERAS_HOLDS:
            return None
        return f"{dtype}: a Keras weights file holds variables of numeric dtypes only"
    raise InvalidArgumentError(f"unknown output format {output!r}")
