"""``tfagents_numpy_state/``: TF-Agents' NumpyState (tools/tf_numpy_state.py) of many dtypes."""

from __future__ import annotations

import os
from typing import Any

from .describe import describe_array


def numpy_state_arrays() -> dict[str, Any]:
    """The arrays of the tfagents_numpy_state fixture (name -> value)."""
    import numpy as np

    structured = np.dtype([("id", "<i4"), ("pos", "<f8", (2,)), ("tag", "S3"), ("ok", "?")])
    return {
        "matrix": np.arange(12, dtype=np.float64).reshape(3, 4) / 4.0,
        "scalar_i32": np.array(-7, dtype=np.int32),
        "numpy_scalar": np.float32(2.5),
        "flags": np.array([True, False, True]),
        "fortran": np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)),
        "big_i4": np.array([1, -2, 0x01020304], dtype=">i4"),
        "big_f8": np.array([[1.5, -0.0], [np.inf, 1e-300]], dtype=">f8"),
        "structured": np.array(
            [(1, (0.5, -1.0), b"ab", True), (2, (2.0, 3.0), b"xyz", False)], dtype=structured
        ),
        "complex": np.array([1 + 2j, -3.5j], dtype=np.complex64),
        "empty": np.zeros((0, 3), dtype=np.uint8),
        "unicode": np.array(["a", "héllo", "日本"], dtype="<U5"),
        "bytes": np.array([b"", b"a\x01", b"xyz"], dtype="S3"),
        "dates": np.array(["2024-02-29T12:00", "1969-07-20T20:17"], dtype="datetime64[m]"),
        "half": np.array([0.5, -2.0, 65504.0], dtype=np.float16),
        "int8": np.array([-128, 0, 127], dtype=np.int8),
    }


def write_tfagents_numpy_state(tf: Any, root: str) -> tuple[str, dict[str, Any]]:
    from tf_numpy_state import numpy_state_classes  # tools/, the script's directory

    NumpyState, _ = numpy_state_classes()
    state = NumpyState()
    for name, value in numpy_state_arrays().items():
        setattr(state, name, value)
    checkpoint = tf.train.Checkpoint(numpy_arrays=state)
    path = checkpoint.save(os.path.join(root, "tfagents_numpy_state", "ckpt"))
    # TensorFlow's view of the arrays: what TF-Agents' NumpyState restores (attributes are
    # created by restore()).
    fresh = NumpyState()
    tf.train.Checkpoint(numpy_arrays=fresh).restore(path).assert_consumed()
    arrays = {}
    for name in numpy_state_arrays():
        arrays[name] = describe_array(getattr(fresh, name))
        arrays[name]["key"] = f"numpy_arrays/{name}/.ATTRIBUTES/py_state"
    return path, {
        "writer": "tf.train.Checkpoint(numpy_arrays=<TF-Agents NumpyState>).save",
        "description": "TF-Agents NumpyState: one PythonState child per array, py_state = "
        "numpy.save bytes (allow_pickle=False); 0-d, NumPy scalar (saved 0-d), "
        "Fortran-ordered, big-endian, structured, unicode, bytes, datetime64, empty",
        "numpy_state": arrays,
    }
