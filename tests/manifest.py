"""Comparing what tfckpt reads with a MANIFEST.json of TensorFlow's own view.

The value digests follow ../shared/corpus/make_manifest.py ``describe_value``: for strings a
SHA-256 over (uint64 little-endian length, bytes) per element; for numbers a SHA-256 of the
little-endian C-order element bytes.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np


def load(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8"))


def value_digest(value: Any, dtype_name: str) -> str:
    if dtype_name == "string":
        digest = hashlib.sha256()
        for item in np.asarray(value, dtype=object).reshape(-1):
            item = bytes(item)
            digest.update(struct.pack("<Q", len(item)))
            digest.update(item)
        return digest.hexdigest()
    array = np.asarray(value)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def check_checkpoint(reader: Any, entry: dict[str, Any]) -> int:
    """Asserts that ``reader`` sees exactly what the manifest entry records.

    Returns the number of tensor values compared.  Where TensorFlow could not read a value
    (``tf_error``), tfckpt must raise a CheckpointError too.
    """
    import tfckpt

    expected = entry["tensors"]
    dtypes = reader.get_variable_to_dtype_map()
    shapes = reader.get_variable_to_shape_map()
    assert sorted(dtypes) == sorted(expected), entry["path"]
    assert sorted(shapes) == sorted(expected), entry["path"]
    compared = 0
    for name, info in expected.items():
        assert dtypes[name].name == info["dtype"], (entry["path"], name)
        assert shapes[name] == info["shape"], (entry["path"], name)
        assert all(type(d) is int for d in shapes[name])
        if "sha256" in info:
            value = reader.get_tensor(name)
            assert value_digest(value, info["dtype"]) == info["sha256"], (entry["path"], name)
            if info["shape"] == []:
                if info["dtype"] == "string":
                    assert isinstance(value, bytes)
                else:
                    assert isinstance(value, np.generic), (name, type(value))
            else:
                assert isinstance(value, np.ndarray)
                assert list(value.shape) == info["shape"]
            compared += 1
        elif "sha256" in info.get("tf_restore_v2", {}):
            # TensorFlow's reader cannot return this value (V1 float16/complex, V1 and
            # string slices) but its RestoreV2 op can, which the fixture generator recorded.
            value = reader.get_tensor(name)
            digest = info["tf_restore_v2"]["sha256"]
            assert value_digest(value, info["dtype"]) == digest, (entry["path"], name)
            compared += 1
        else:
            assert "tf_error" in info, (entry["path"], name)
            try:
                reader.get_tensor(name)
            except tfckpt.CheckpointError as exc:
                assert exc.tensor == name or name in str(exc)
            else:
                raise AssertionError(
                    f"{entry['path']}: TensorFlow could not read {name!r} "
                    f"({info['tf_error']}) but tfckpt returned a value"
                )
    return compared
