"""How a tensor value is recorded (sha256 + first values), copied unchanged from the corpus'
make_manifest.py so both manifests follow the same rules."""

from __future__ import annotations

import hashlib
import struct
from typing import Any

SAMPLE_N = 8


def _json_scalar(v: Any) -> Any:
    import numpy as np

    if isinstance(v, (bytes, np.bytes_)):
        return bytes(v).decode("latin-1")
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (complex, np.complexfloating)):
        return [_json_scalar(v.real), _json_scalar(v.imag)]
    f = float(v)
    if f != f:
        return "nan"
    if f in (float("inf"), float("-inf")):
        return "inf" if f > 0 else "-inf"
    return f


def describe_value(value: Any, dtype_name: str) -> tuple[str, list[Any]]:
    import numpy as np

    if dtype_name == "string":
        arr = np.asarray(value, dtype=object)
        h = hashlib.sha256()
        flat = [bytes(x) for x in arr.reshape(-1)]
        for x in flat:
            h.update(struct.pack("<Q", len(x)))
            h.update(x)
        return h.hexdigest(), [_json_scalar(x) for x in flat[:SAMPLE_N]]
    arr = np.ascontiguousarray(np.asarray(value))
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    digest = hashlib.sha256(arr.tobytes()).hexdigest()
    sample = [_json_scalar(x) for x in arr.reshape(-1)[:SAMPLE_N]]
    return digest, sample
