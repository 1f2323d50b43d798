"""One module per library; importing this package registers every row's operation."""

from . import numpy_ops, raw_limits, safetensors_ops, tensorflow_ops, tfckpt_ops
from .registry import IMPLS, Operation

__all__ = [
    "IMPLS",
    "Operation",
    "numpy_ops",
    "raw_limits",
    "safetensors_ops",
    "tensorflow_ops",
    "tfckpt_ops",
]
