"""TensorFlow's checkpoint-reading surface, without TensorFlow.

Code written against ``tf.train`` runs unchanged with one line changed::

    from tfckpt import tf_compat as tf      # instead of: import tensorflow as tf

    reader = tf.train.load_checkpoint("bert_model.ckpt")
    for name, shape in tf.train.list_variables("bert_model.ckpt"):
        array = tf.train.load_variable("bert_model.ckpt", name)
    reader.get_variable_to_dtype_map()["bert/pooler/dense/kernel"] == tf.float32  # True

Provided: ``tf.train`` (:mod:`tfckpt.compat.train`), ``tf.compat.v1.train`` with
``NewCheckpointReader``, ``tf.errors`` (``OpError`` and its subclasses, which tfckpt's
errors derive from), ``tf.dtypes``, ``tf.DType``, ``tf.as_dtype`` and ``tf.float32`` etc.
Nothing else of TensorFlow (no tensors, no ops); the deliberate differences from
TensorFlow are listed in the README ("Drop-in for tf.train").
"""

from __future__ import annotations

import sys
from types import SimpleNamespace

from tfckpt.compat import dtypes, errors, train, v1
from tfckpt.dtypes import DType, as_dtype

__all__ = ["DType", "as_dtype", "compat", "dtypes", "errors", "train"]

compat = SimpleNamespace(v1=v1, v2=sys.modules[__name__])


def __getattr__(name: str) -> DType:
    # tf.float32, tf.bool, ...: looked up, so that ``bool`` does not shadow the builtin.
    try:
        return getattr(dtypes, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
