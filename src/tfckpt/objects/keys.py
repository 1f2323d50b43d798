"""Checkpoint keys of object-based (TF2) checkpoints.

Sources: tensorflow/python/checkpoint/save_util_v1.py / graph_view.py and
tensorflow/python/trackable/base.py.  A value is stored under::

    <escaped local names along the object path, joined by "/">/.ATTRIBUTES/<attribute>

where a local name escapes ``.`` as ``..`` and ``/`` as ``.S``.  Optimizer slots are
``<variable path>/.OPTIMIZER_SLOT/<optimizer path>/<slot name>``.  The serialized
TrackableObjectGraph is the string scalar ``_CHECKPOINTABLE_OBJECT_GRAPH``.
"""

from __future__ import annotations

from collections.abc import Sequence

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
ATTRIBUTES = ".ATTRIBUTES"
OPTIMIZER_SLOT = ".OPTIMIZER_SLOT"
VARIABLE_VALUE = "VARIABLE_VALUE"
PY_STATE = "py_state"
# The earliest tf.contrib NumpyState stored its arrays under this attribute name.
LEGACY_NUMPY_ATTRIBUTE = "array"
SAVE_COUNTER = "save_counter"


def escape_local_name(name: str) -> str:
    return name.replace(".", "..").replace("/", ".S")


def object_path_key(path: Sequence[str]) -> str:
    """The escaped object path, e.g. ``('a.b', 'c')`` -> ``'a..b/c'``."""
    return "/".join(escape_local_name(name) for name in path)


def attribute_key(path: Sequence[str], attribute: str) -> str:
    """The checkpoint key of an attribute of the object at ``path``."""
    prefix = object_path_key(path)
    return f"{prefix}/{ATTRIBUTES}/{attribute}" if prefix else f"{ATTRIBUTES}/{attribute}"


def slot_key(variable_path: Sequence[str], optimizer_path: Sequence[str], slot: str) -> str:
    """The checkpoint key of an optimizer slot variable."""
    return (
        f"{object_path_key(variable_path)}/{OPTIMIZER_SLOT}/"
        f"{object_path_key(optimizer_path)}/{escape_local_name(slot)}"
    )
