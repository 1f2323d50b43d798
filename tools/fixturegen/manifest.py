"""fixtures/MANIFEST.json: TensorFlow's own view of every fixture, in the corpus manifest's
schema (``describe_checkpoint`` mirrors the corpus' make_manifest.py)."""

from __future__ import annotations

import glob
import hashlib
import os
import sys
from typing import Any

from .catalogue import FIXTURES
from .containers import bundle_header, v1_info
from .sstable import is_sstable, sstable_info
from .values import describe_value

Entry = dict[str, Any]


def state_file_for(prefix: str) -> dict[str, Any] | None:
    from google.protobuf import text_format
    from tensorflow.python.training import checkpoint_state_pb2

    path = os.path.dirname(prefix) + "/checkpoint"
    if not os.path.isfile(path) or is_sstable(path):
        return None
    state = checkpoint_state_pb2.CheckpointState()
    with open(path, encoding="utf-8") as f:
        text_format.Parse(f.read(), state)
    out = {
        "path": path,
        "model_checkpoint_path": state.model_checkpoint_path,
        "all_model_checkpoint_paths": list(state.all_model_checkpoint_paths),
    }
    if state.all_model_checkpoint_timestamps:
        out["all_model_checkpoint_timestamps"] = list(state.all_model_checkpoint_timestamps)
    if state.last_preserved_timestamp:
        out["last_preserved_timestamp"] = state.last_preserved_timestamp
    return out


def files_of(prefix: str, fmt: str) -> list[dict[str, Any]]:
    """Files of a prefix (cwd = fixtures root); V1 prefixes may be globs."""
    if fmt == "v1":
        names = sorted(glob.glob(prefix))
    else:
        names = sorted([prefix + ".index", *glob.glob(glob.escape(prefix) + ".data-*")])
    out = []
    for name in names:
        with open(name, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        out.append(
            {
                "path": name.replace(os.sep, "/"),
                "size": os.path.getsize(name),
                "sha256": digest,
            }
        )
    return out


def _restore_v2(prefix: str, name: str, dtype_name: str) -> dict[str, Any]:
    import tensorflow as tf

    try:
        value = tf.raw_ops.RestoreV2(
            prefix=prefix,
            tensor_names=[name],
            shape_and_slices=[""],
            dtypes=[tf.as_dtype(dtype_name)],
        )[0]
        sha, sample = describe_value(value.numpy(), dtype_name)
        return {"sha256": sha, "sample": sample}
    except Exception as e:
        result = {"tf_error": f"{type(e).__name__}: {str(e).strip().splitlines()[0]}"}
    by_slices = _restore_v2_by_slices(prefix, name, dtype_name)
    if by_slices is not None:
        result.update(by_slices)
    return result


def _restore_v2_by_slices(prefix: str, name: str, dtype_name: str) -> dict[str, Any] | None:
    """TF cannot assemble some partitioned tensors (string slices) but its RestoreV2 op
    returns each stored slice when asked for exactly that slice, as Saver does when it
    restores a partitioned variable.  Assembles those into the full tensor."""
    import numpy as np
    import tensorflow as tf
    from tensorflow.core.protobuf import tensor_bundle_pb2

    index = prefix + ".index"
    if not os.path.exists(index):
        return None
    entry = None
    for key, value in sstable_info(index)["records"]:
        if key == name.encode():
            entry = tensor_bundle_pb2.BundleEntryProto()
            entry.ParseFromString(value)
    if entry is None or not entry.slices:
        return None
    full_shape = [d.size for d in entry.shape.dim]
    out = np.empty(full_shape, dtype=object if dtype_name == "string" else None)
    for proto in entry.slices:
        spec, region = [], []
        for extent, dim in zip(proto.extent, full_shape):
            if extent.HasField("length"):
                spec.append(f"{extent.start},{extent.length}")
                region.append(slice(extent.start, extent.start + extent.length))
            else:
                spec.append("-")
                region.append(slice(0, dim))
        shape_and_slice = " ".join(str(d) for d in full_shape) + " " + ":".join(spec)
        part = tf.raw_ops.RestoreV2(
            prefix=prefix,
            tensor_names=[name],
            shape_and_slices=[shape_and_slice],
            dtypes=[tf.as_dtype(dtype_name)],
        )[0].numpy()
        out[tuple(region)] = part
    sha, sample = describe_value(out, dtype_name)
    return {"sha256": sha, "sample": sample, "oracle": "RestoreV2 per stored slice"}


def describe_checkpoint(prefix: str, fmt: str, writer: str, description: str) -> Entry:
    import tensorflow as tf

    entry: Entry = {"path": prefix, "format": fmt, "writer": writer, "description": description}
    files = files_of(prefix, fmt)
    entry["files"] = files

    container: dict[str, Any] = {}
    try:
        if fmt == "v2":
            container = bundle_header(prefix + ".index")
            present = {f["path"] for f in files}
            n = container["num_shards"]
            expected = [f"{prefix}.data-{i:05d}-of-{n:05d}" for i in range(n)]
            container["missing_data_files"] = [p for p in expected if p not in present]
        elif len(files) == 1 and files[0]["path"] == prefix:
            container = v1_info(prefix)
        else:  # sharded V1: the prefix is a glob pattern over several files
            container = {"v1_files": [dict(path=f["path"], **v1_info(f["path"])) for f in files]}
    except Exception as e:  # container facts are informational only
        container = {"container_error": f"{type(e).__name__}: {e}"}
    entry["container"] = container

    state = state_file_for(prefix)
    if state:
        entry["state_file"] = state

    try:
        reader = tf.train.load_checkpoint(prefix)
        dtypes = reader.get_variable_to_dtype_map()
        shapes = reader.get_variable_to_shape_map()
    except Exception as e:
        entry["tf_error"] = f"{type(e).__name__}: {str(e).strip()}"
        return entry

    tensors: dict[str, Any] = {}
    for name in sorted(dtypes):
        info = {"dtype": dtypes[name].name, "shape": [int(d) for d in shapes[name]]}
        try:
            value = reader.get_tensor(name)
            info["sha256"], info["sample"] = describe_value(value, info["dtype"])
        except Exception as e:
            info["tf_error"] = f"{type(e).__name__}: {str(e).strip().splitlines()[0]}"
            info["tf_restore_v2"] = _restore_v2(prefix, name, info["dtype"])
        tensors[name] = info
    entry["tensors"] = tensors
    return entry


def build_manifest(root: str) -> list[Entry]:
    """Every fixture prefix under ``root`` as TensorFlow sees it, sorted by path."""
    if sys.byteorder != "little":
        raise SystemExit("sha256 values are defined over little-endian bytes")
    cwd = os.getcwd()
    os.chdir(root)  # so paths and TF error messages are fixtures-relative
    try:
        entries = []
        for fixture in FIXTURES:
            for prefix, fmt in fixture.prefixes:
                entries.append(
                    describe_checkpoint(prefix, fmt, fixture.writer, fixture.description)
                )
        return sorted(entries, key=lambda e: e["path"])
    finally:
        os.chdir(cwd)


def sanity_check(manifest: list[Entry]) -> None:
    """Asserts the structural facts each fixture exists to exercise."""
    by_path = {e["path"]: e for e in manifest}
    problems = []

    def need(cond, what):
        if not cond:
            problems.append(what)

    for e in manifest:
        need("tf_error" not in e, f"{e['path']}: TF cannot open it: {e.get('tf_error')}")
        need(e["files"], f"{e['path']}: no files")
    c = by_path["many_keys/ckpt"]["container"]
    need(c.get("sstable_data_blocks", 0) >= 3, "many_keys: < 3 data blocks")
    c = by_path["sharded/ckpt"]["container"]
    need(c.get("num_shards", 0) >= 2, "sharded: < 2 shards")
    need(c.get("sliced_tensors"), "sharded: no sliced tensor")
    c = by_path["max_shard_size/ckpt"]["container"]
    need(c.get("num_shards", 0) >= 2, "max_shard_size: < 2 shards")
    need(c.get("sliced_tensors"), "max_shard_size: nothing was split")
    c = by_path["partitioned/ckpt"]["container"]
    need(len(c.get("sliced_tensors", [])) >= 4, "partitioned: missing slices")
    c = by_path["v1_format/model.ckpt"]["container"]
    need(c.get("partitioned_tensors"), "v1_format: no partitioned tensor")
    c = by_path["v1_sharded/model.ckpt-?????-of-00002"]["container"]
    need(len(c.get("v1_files", [])) == 2, "v1_sharded: not 2 files")
    need("state_file" in by_path["object_based/ckpt-1"], "object_based: no state file")
    for e in manifest:
        for name, t in e.get("tensors", {}).items():
            if "tf_error" in t and e["path"] not in (
                "partitioned/ckpt",
                "v1_format/model.ckpt",
                "variant/ckpt",
                "max_shard_size/ckpt",
                "v1_sharded/model.ckpt-?????-of-00002",
            ):
                problems.append(f"{e['path']}: {name} unreadable: {t['tf_error']}")
    if problems:
        raise SystemExit("fixture sanity check failed:\n  " + "\n  ".join(problems))


def tf_view(manifest: list[Entry]) -> list[Entry]:
    """The part of the manifest that is TensorFlow's view of the fixtures."""
    keep = ("path", "format", "tensors", "tf_error")
    return [{k: e[k] for k in keep if k in e} for e in manifest]
