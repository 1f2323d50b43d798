"""TF-Agents' ``NumpyState`` on TensorFlow: the TensorFlow side of NumpyState checkpoints.

TensorFlow no longer ships ``tf.contrib.checkpoint.NumpyState``; TF-Agents keeps a copy
(tf_agents/utils/numpy_storage.py).  This is that class on TF 2.21's trackable API, shared
by the benchmark (tools/bench) and the fixture generators: a ``Trackable`` whose NumPy
array attributes are ``tf.train.experimental.PythonState`` children saving ``numpy.save``
bytes (``allow_pickle=False``) as ``<attr>/.ATTRIBUTES/py_state``, re-created on restore.

TensorFlow is imported when the classes are first asked for, not on import.
"""

from __future__ import annotations

import functools
import io
from typing import Any


@functools.cache
def numpy_state_classes() -> tuple[type[Any], type[Any]]:
    """``(NumpyState, NumpyWrapper)``: the trackable and its per-array PythonState child."""
    import numpy as np
    import tensorflow as tf
    from tensorflow.python.trackable import base

    class NumpyWrapper(tf.train.experimental.PythonState):
        """One array attribute, saved as its ``numpy.save`` bytes."""

        def __init__(self, array: Any) -> None:
            self.array = array

        def serialize(self) -> bytes:
            buffer = io.BytesIO()
            np.save(buffer, self.array, allow_pickle=False)
            return buffer.getvalue()

        def deserialize(self, string_value: bytes) -> None:
            self.array = np.load(io.BytesIO(string_value), allow_pickle=False)

    class NumpyState(base.Trackable):
        """Attributes assigned NumPy arrays are saved; reading them gives the arrays."""

        def _lookup_dependency(self, name: str, cached_dependencies: Any = None) -> Any:
            value = super()._lookup_dependency(name, cached_dependencies)
            if value is None:  # re-create attributes found in the checkpoint, as TF-Agents does
                value = NumpyWrapper(np.array([]))
                self._maybe_initialize_trackable()
                self._self_unconditional_checkpoint_dependencies.append(
                    base.TrackableReference(name=name, ref=value)
                )
                self._self_unconditional_dependency_names[name] = value
                super().__setattr__(name, value)
            return value

        def __getattribute__(self, name: str) -> Any:
            value = super().__getattribute__(name)
            return value.array if isinstance(value, NumpyWrapper) else value

        def __setattr__(self, name: str, value: Any) -> None:
            if isinstance(value, (np.ndarray, np.generic)):
                try:
                    existing = super().__getattribute__(name)
                    existing.array = value
                    return
                except AttributeError:
                    value = NumpyWrapper(value)
                    self._track_trackable(value, name=name, overwrite=True)
            elif (
                name not in ("_setattr_tracking", "_update_uid")
                and not name.startswith("_self_")
                and getattr(self, "_setattr_tracking", True)
            ):
                raise NotImplementedError(f"{name}: NumpyState holds only NumPy arrays")
            super().__setattr__(name, value)

    return NumpyState, NumpyWrapper
