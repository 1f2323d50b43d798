"""``nested/``: dicts, lists and tuples of tf.Variables and a nested tf.train.Checkpoint."""

from __future__ import annotations

import os
from typing import Any

from .describe import describe_structure, object_names_of


def nested_structure(tf: Any) -> dict[str, Any]:
    """The nested fixture's Python structure (TF side) and its JSON description."""
    import ml_dtypes
    import numpy as np

    shared = tf.Variable(np.array([1.0, 2.0, 3.0], np.float32), name="shared")
    values = {
        "params": {
            "w": tf.Variable(np.arange(6, dtype=np.float32).reshape(2, 3), name="w"),
            "b": tf.Variable(np.array([0.5, -0.5], np.float64), name="b"),
            "a/b": tf.Variable(np.array([7, 8], np.int32), name="slash"),
            "x.y": tf.Variable(np.array(9, np.int64), name="dot"),
            "shared": shared,
            "not_tracked": 42,
        },
        "layers": [
            tf.Variable(np.array([[True, False]]), name="mask"),
            {"inner": tf.Variable(np.array([1.5, -2.25], ml_dtypes.bfloat16), name="bf16")},
            (
                tf.Variable(np.array([3, 4], np.uint8), name="t0"),
                tf.Variable(np.array([1 + 1j], np.complex64), name="t1"),
            ),
            [],
            shared,
        ],
        "sub": tf.train.Checkpoint(
            names=tf.Variable(np.array([b"alpha", b"", b"\x00\xff"], object), name="names"),
            half=tf.Variable(np.array([0.25], np.float16), name="half"),
        ),
        "step": tf.Variable(np.array(5, np.int64), name="step"),
    }
    return values


def write_nested(tf: Any, root: str) -> tuple[str, dict[str, Any]]:
    values = nested_structure(tf)
    checkpoint = tf.train.Checkpoint(**values)
    path = checkpoint.save(os.path.join(root, "nested", "ckpt"))
    _, object_names, _ = object_names_of(tf, checkpoint)
    items = {}
    for name in sorted(values):
        tracked = getattr(checkpoint, name)
        items[name] = describe_structure(tracked, object_names, tf)
    return path, {
        "writer": "tf.train.Checkpoint(params=dict, layers=list, sub=tf.train.Checkpoint, "
        "step=Variable).save",
        "description": "dict/list/tuple wrappers of tf.Variables (float32, float64, int32, "
        "int64, bool, bfloat16, uint8, complex64, string, float16), dict keys with '/' and "
        "'.', an untracked int in a dict, an empty list, one variable shared by two paths "
        "(params/shared and layers/4), a nested tf.train.Checkpoint",
        "structure": {"kind": "checkpoint", "items": items},
    }
