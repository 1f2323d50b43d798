"""The one-call ``tf.raw_ops.SaveV2`` writer most tensor fixtures use."""

from __future__ import annotations

from typing import Any


def save_v2(items: list[tuple[str, Any]]) -> None:
    """One SaveV2 call; verifies TF reads every value back bit-exactly."""
    import numpy as np
    import tensorflow as tf

    names = [n for n, _ in items]
    tensors = [t for _, t in items]
    tf.raw_ops.SaveV2(
        prefix="ckpt", tensor_names=names, shape_and_slices=[""] * len(names), tensors=tensors
    )
    reader = tf.train.load_checkpoint("ckpt")
    for name, t in items:
        if t.dtype == tf.variant:
            continue
        got = reader.get_tensor(name)
        want = t.numpy()
        if t.dtype == tf.string:
            got, want = np.asarray(got, dtype=object), np.asarray(want, dtype=object)
            ok = got.shape == want.shape and got.tolist() == want.tolist()
        else:
            ok = (
                np.asarray(got).shape == want.shape
                and np.ascontiguousarray(got).tobytes() == want.tobytes()
            )
        if not ok:
            raise AssertionError(f"TF read back {name!r} differently")
