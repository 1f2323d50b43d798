"""The ``tf.compat.v1`` namespace: ``train`` (with ``NewCheckpointReader``), ``errors``,
``dtypes`` and the dtypes by name.

Example::

    from tfckpt import tf_compat as tf

    reader = tf.compat.v1.train.NewCheckpointReader(path)
"""

from __future__ import annotations

from tfckpt.compat import dtypes, errors
from tfckpt.compat import train_v1 as train
from tfckpt.dtypes import DType, as_dtype

__all__ = ["DType", "as_dtype", "dtypes", "errors", "train"]


def __getattr__(name: str) -> DType:
    try:
        return getattr(dtypes, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
