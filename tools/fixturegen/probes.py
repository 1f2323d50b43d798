"""Probes of what TF 2.21 cannot save or read (the results go into fixtures/README.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from .environment import child_env
from .tf_util import first_error_line


def _probe_tensor(dtype: Any) -> Any:
    import ml_dtypes
    import numpy as np
    import tensorflow as tf

    if dtype == tf.string:
        return tf.constant([b"a", b"b"])
    if dtype == tf.variant:
        return tf.raw_ops.TensorListFromTensor(
            tensor=tf.constant([1.0]), element_shape=tf.constant([], dtype=tf.int32)
        )
    if dtype == tf.resource:
        return tf.Variable(1.0).handle
    if dtype.is_quantized:
        return tf.constant(np.array([1, 0]), dtype=dtype)
    np_dtype = getattr(ml_dtypes, dtype.name, None) or dtype.as_numpy_dtype
    return tf.constant(np.array([1, 0]).astype(np_dtype))


def _all_dtypes() -> list[Any]:
    import tensorflow as tf
    from tensorflow.core.framework import types_pb2

    out = []
    for name, num in types_pb2.DataType.items():
        if name.endswith("_REF") or num == 0:
            continue
        out.append(tf.as_dtype(num))
    return out


def probe(kind: str, work: str) -> None:
    """Prints a JSON report; kind 'resource' is run alone (it aborts)."""
    import numpy as np
    import tensorflow as tf

    E = tf.dtypes.experimental
    os.chdir(work)
    result: dict[str, Any] = {}
    if kind == "resource":
        sys.stdout.write("RESOURCE_START\n")
        sys.stdout.flush()
        tf.raw_ops.SaveV2(
            prefix="r",
            tensor_names=["r"],
            shape_and_slices=[""],
            tensors=[_probe_tensor(tf.resource)],
        )
        result["resource"] = "saved"
        print(json.dumps(result))
        return
    savev2: dict[str, Any] = {}
    v1: dict[str, Any] = {}
    for dtype in _all_dtypes():
        if dtype == tf.resource:
            continue
        name = dtype.name
        try:
            t = _probe_tensor(dtype)
        except Exception as e:
            savev2[name] = {"create": first_error_line(e)}
            continue
        rec: dict[str, Any] = {}
        try:
            tf.raw_ops.SaveV2(
                prefix="v2_" + name, tensor_names=["t"], shape_and_slices=[""], tensors=[t]
            )
            rec["save"] = "ok"
            try:
                tf.train.load_checkpoint("v2_" + name).get_tensor("t")
                rec["read"] = "ok"
            except Exception as e:
                rec["read"] = first_error_line(e)
        except Exception as e:
            rec["save"] = first_error_line(e)
        savev2[name] = rec
        # V1 (SaveSlices, what Saver(write_version=V1) runs), graph mode.
        rec = {}
        graph = tf.Graph()
        with graph.as_default():
            value = t.numpy() if dtype not in (tf.variant,) else None
            if value is None:
                rec["save"] = "skipped (variant)"
                v1[name] = rec
                continue
            const = tf.constant(value, dtype=dtype)
            op = tf.raw_ops.SaveSlices(
                filename="v1_" + name, tensor_names=["t"], shapes_and_slices=[""], data=[const]
            )
            try:
                with tf.compat.v1.Session(graph=graph) as sess:
                    sess.run(op)
                rec["save"] = "ok"
            except Exception as e:
                rec["save"] = first_error_line(e)
        if rec["save"] == "ok":
            try:
                tf.train.load_checkpoint("v1_" + name).get_tensor("t")
                rec["read"] = "ok"
            except Exception as e:
                rec["read"] = first_error_line(e)
            try:
                tf.raw_ops.RestoreV2(
                    prefix="v1_" + name, tensor_names=["t"], shape_and_slices=[""], dtypes=[dtype]
                )
                rec["restore_v2"] = "ok"
            except Exception as e:
                rec["restore_v2"] = first_error_line(e)
        v1[name] = rec
    result["savev2"] = savev2
    result["v1"] = v1
    # Other ways of making the narrow dtypes (tf.constant from ml_dtypes works).
    other: dict[str, str] = {}
    for dt in (
        E.int4,
        E.uint4,
        E.int2,
        E.uint2,
        E.float4_e2m1fn,
        E.float8_e5m2,
        E.float8_e4m3fn,
        E.float8_e4m3fnuz,
        E.float8_e4m3b11fnuz,
        E.float8_e5m2fnuz,
    ):
        for how in ("cast", "bitcast"):
            try:
                if how == "cast":
                    tf.cast(tf.constant([1.0, 2.0]), dt)
                else:
                    tf.bitcast(tf.constant([1, 2], dtype=tf.uint8), dt)
                other[f"tf.{how}(..., {dt.name})"] = "ok"
            except Exception as e:
                other[f"tf.{how}(..., {dt.name})"] = first_error_line(e)
    result["create"] = other
    result["versions"] = {"tensorflow": tf.__version__, "numpy": np.__version__}
    import ml_dtypes

    result["versions"]["ml_dtypes"] = ml_dtypes.__version__
    print(json.dumps(result))


def run_probes(entry_script: str, work: str) -> dict[str, Any]:
    """Runs the probes in subprocesses (``entry_script --_probe``) in the scratch directory
    ``work``."""
    out = {}
    proc = subprocess.run(
        [sys.executable, entry_script, "--_probe", "all", "--_root", work],
        capture_output=True,
        text=True,
        env=child_env(),
        check=True,
    )
    out.update(json.loads(proc.stdout.strip().splitlines()[-1]))
    proc = subprocess.run(
        [sys.executable, entry_script, "--_probe", "resource", "--_root", work],
        capture_output=True,
        text=True,
        env=child_env(),
    )
    if proc.returncode == 0:
        out["resource"] = "saved"
    else:
        fatal = [ln for ln in proc.stderr.splitlines() if "Check failed" in ln]
        msg = fatal[0] if fatal else proc.stderr.strip().splitlines()[-1:]
        if isinstance(msg, str) and "] " in msg:
            msg = msg.split("] ", 1)[1]
        out["resource"] = f"process aborted (exit code {proc.returncode}): {msg}"
    return out
