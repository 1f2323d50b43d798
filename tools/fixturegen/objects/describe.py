"""How the object fixtures are described in EXPECTED.json: digests, TensorFlow's view of a
checkpoint, its state file, and the object paths and structures TensorFlow reports."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from typing import Any

# The repository root (tools/fixturegen/objects/ is three levels below it).
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def value_digest(value: Any, dtype_name: str) -> str:
    """tests/manifest.py ``value_digest`` (imported from there, so both always agree)."""
    sys.path.insert(0, REPO)
    try:
        from tests.manifest import value_digest as digest
    finally:
        sys.path.remove(REPO)
    return digest(value, dtype_name)


def array_digest(array: Any) -> str:
    """SHA-256 of a decoded NumPy array's element bytes in C order, in its own byte order.

    ``numpy.ascontiguousarray(a).tobytes()``: a Fortran-ordered array hashes like its C-order
    copy; a big-endian array hashes its big-endian bytes (its dtype is recorded separately).
    """
    import numpy as np

    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def describe_array(array: Any) -> dict[str, Any]:
    """What the tests compare for one NumPy array restored from a NumpyState attribute."""
    import numpy as np

    return {
        "descr": json.loads(json.dumps(np.lib.format.dtype_to_descr(array.dtype))),
        "dtype": str(array.dtype),
        "shape": list(array.shape),
        "fortran_order": bool(
            array.ndim > 1 and array.flags.f_contiguous and not array.flags.c_contiguous
        ),
        "sha256": array_digest(array),
    }


def describe_structure(value: Any, object_names: dict[Any, str], tf: Any) -> dict[str, Any]:
    """JSON description of a Python structure of variables (leaves name their key)."""
    if isinstance(value, tf.Variable):
        return {
            "kind": "variable",
            "dtype": value.dtype.name,
            "shape": list(value.shape),
            "key": object_names[value] + "/.ATTRIBUTES/VARIABLE_VALUE",
        }
    if isinstance(value, tf.train.Checkpoint):
        # tf.train.Checkpoint children are the keyword arguments (tracked in sorted order).
        items = {}
        for name, child in sorted(value._trackable_children().items()):
            if name == "save_counter":
                continue
            items[name] = describe_structure(child, object_names, tf)
        return {"kind": "checkpoint", "items": items}
    if isinstance(value, dict) or type(value).__name__ == "_DictWrapper":
        return {
            "kind": "dict",
            "items": {
                k: describe_structure(v, object_names, tf)
                for k, v in value.items()
                if not isinstance(v, int)
            },
            "untracked": sorted(k for k, v in value.items() if isinstance(v, int)),
        }
    if isinstance(value, tuple) or type(value).__name__ == "_TupleWrapper":
        return {"kind": "tuple", "items": [describe_structure(v, object_names, tf) for v in value]}
    if isinstance(value, list) or type(value).__name__ == "ListWrapper":
        return {"kind": "list", "items": [describe_structure(v, object_names, tf) for v in value]}
    raise TypeError(f"unexpected {type(value)}")


def object_names_of(tf: Any, root: Any) -> tuple[Any, dict[Any, str], Any]:
    """TensorFlow's own BFS object paths (escaped, as in checkpoint keys) from ``root``."""
    from tensorflow.python.checkpoint import graph_view, util

    _, node_paths, _, slot_variables, object_names = util.objects_ids_and_slot_variables_and_paths(
        graph_view.ObjectGraphView(root)
    )
    return node_paths, object_names, slot_variables


def local_path(node_paths: Any, obj: Any) -> list[str]:
    """The (unescaped) local names leading from the view's root to ``obj``."""
    return [ref.name for ref in node_paths[obj]]


def read_state_file(tf: Any, directory: str) -> dict[str, Any]:
    """The raw fields of a ``checkpoint`` state file, parsed with TensorFlow's proto."""
    from google.protobuf import text_format
    from tensorflow.python.training import checkpoint_state_pb2

    del tf
    with open(os.path.join(directory, "checkpoint"), encoding="utf-8") as f:
        text = f.read()
    proto = checkpoint_state_pb2.CheckpointState()
    text_format.Parse(text, proto)
    out = {
        "model_checkpoint_path": proto.model_checkpoint_path,
        "all_model_checkpoint_paths": list(proto.all_model_checkpoint_paths),
    }
    if proto.all_model_checkpoint_timestamps:
        out["all_model_checkpoint_timestamps"] = list(proto.all_model_checkpoint_timestamps)
    if proto.last_preserved_timestamp:
        out["last_preserved_timestamp"] = proto.last_preserved_timestamp
    out["text"] = text
    return out


def tf_view(tf: Any, prefix: str) -> dict[str, Any]:
    """TensorFlow's view of one checkpoint: key -> dtype, shape, sha256."""
    reader = tf.train.load_checkpoint(prefix)
    dtypes = reader.get_variable_to_dtype_map()
    shapes = reader.get_variable_to_shape_map()
    tensors = {}
    for key in sorted(shapes):
        value = reader.get_tensor(key)
        tensors[key] = {
            "dtype": dtypes[key].name,
            "shape": [int(d) for d in shapes[key]],
            "sha256": value_digest(value, dtypes[key].name),
        }
    return tensors
