"""fixtures/README.md: the fixture table, the manifest schema, the probe results and what
the files show."""

from __future__ import annotations

import os
from typing import Any

from .manifest import Entry
from .sstable import sstable_info


def _fmt_size(n: float) -> str:
    return f"{n / 1000.0:.1f} KB" if n < 1000000 else f"{n / 1e6:.2f} MB"


def dir_size(path: str) -> int:
    """Bytes of every file under ``path``."""
    total = 0
    for base, _, files in os.walk(path):
        for name in files:
            total += os.path.getsize(os.path.join(base, name))
    return total


def write_readme(
    root: str, manifest: list[Entry], probes: dict[str, Any], observed: dict[str, Any]
) -> None:
    """Writes ``root``/README.md (``observed``: facts the writer subprocesses reported)."""
    by_path = {e["path"]: e for e in manifest}
    lines: list[str] = []
    add = lines.append
    versions = probes.get("versions", {})
    add("# TensorFlow checkpoint fixtures")
    add("")
    tf_v, np_v, ml_v = (versions.get(k, "?") for k in ("tensorflow", "numpy", "ml_dtypes"))
    add(
        f"Small checkpoints written by **real TensorFlow {tf_v}** (numpy {np_v}, "
        f"ml_dtypes {ml_v}) with `tools/make_fixtures.py`, for testing the TF-free reader/writer. "
        "`MANIFEST.json` records TensorFlow's own view of every fixture "
        "(`tf.train.load_checkpoint`: dtype, shape, sha256 and sample of every "
        "tensor), in the same schema and with the same value rules as "
        "`corpus/MANIFEST.json`."
    )
    add("")
    add("Regenerate (rewrites `fixtures/` from scratch, about a minute):")
    add("")
    add("    TF_CPP_MIN_LOG_LEVEL=3 .venv-tf/bin/python tools/make_fixtures.py")
    add("")
    add(
        "Check that TensorFlow still sees the same thing (regenerates into a temp "
        "dir and compares the TF view, i.e. every entry's `path`, `format`, "
        "`tensors`; file-level differences are reported but do not fail):"
    )
    add("")
    add("    TF_CPP_MIN_LOG_LEVEL=3 .venv-tf/bin/python tools/make_fixtures.py --check")
    add("")
    add("| path (prefix) | format | writer | tensors | files (bytes) | what it exercises |")
    add("| --- | --- | --- | --- | --- | --- |")
    for e in manifest:
        n_files = len(e["files"])
        size = sum(f["size"] for f in e["files"])
        tensors = e.get("tensors", {})
        dtypes = sorted({t["dtype"] for t in tensors.values()})
        unreadable = sum(1 for t in tensors.values() if "tf_error" in t)
        if len(dtypes) <= 6:
            tcell = f"{len(tensors)} ({', '.join(dtypes)})"
        else:
            tcell = f"{len(tensors)} ({len(dtypes)} dtypes)"
        if unreadable:
            tcell += f"; **{unreadable} unreadable by TF**"
        writer = e["writer"].replace("|", "\\|")
        add(
            f"| `{e['path']}` | {e['format']} | {writer} | {tcell} | {n_files} ({size}) "
            f"| {e['description']} |"
        )
    add("")
    total = dir_size(root)
    add(f"Total size of `fixtures/` apart from this README: {_fmt_size(total)}.")
    add("")
    add("## Manifest schema")
    add("")
    add(
        "A JSON list, one entry per prefix, sorted by `path`; all paths are relative "
        "to `fixtures/` with forward slashes. Same keys and rules as the corpus "
        "manifest (`path`, `format`, `files`, `container`, `state_file`, `tensors` "
        "with `dtype` = TF dtype name, `shape`, `sha256`, `sample` = first 8 "
        "flattened values; or `tf_error` where TF's reader fails). Differences:"
    )
    add("")
    add("- `source` is replaced by `writer` (the TF API that wrote it) and `description`.")
    add(
        "- `tf_restore_v2` (tensor level, only next to a `tf_error`): what TF's "
        "`RestoreV2` op returns for that name with `shape_and_slices=['']` "
        "(`sha256`/`sample`, or its own `tf_error`). The op assembles V1 "
        "partitions and reads V1 dtypes that `load_checkpoint` refuses, so it is "
        "TF's answer for those tensors."
    )
    add(
        "- `container.v1_files` (sharded V1 only): the corpus' V1 container facts "
        "per file, because the prefix is the glob `model.ckpt-?????-of-00002`."
    )
    add(
        "- Value rules are unchanged, so `int4`/`uint4`/`int2`/`uint2` samples "
        "come out as floats (`-8.0`): `ml_dtypes` integer scalars are not "
        "`np.integer`. Hashes are over the bytes TF returns, which for these "
        "dtypes is one byte per element (see below)."
    )
    add("")

    add(f"## What TensorFlow {tf_v} cannot save")
    add("")
    sv = probes.get("savev2", {})
    bad = {k: v for k, v in sv.items() if v.get("save") != "ok" or v.get("read") != "ok"}
    add(
        "Probed during generation: one `tf.raw_ops.SaveV2` per `DataType` enum value "
        "(non-`_REF`), then `tf.train.load_checkpoint(...).get_tensor`."
    )
    add("")
    good = ", ".join(f"`{k}`" for k in sorted(sv) if k not in bad)
    add(f"- Every dtype of the brief saves and reads back with V2 (`SaveV2`): {good}.")
    add(f"- `resource`: {probes.get('resource', '?')}. (So there is no `resource` fixture.)")
    for k, v in sorted(bad.items()):
        add(f"- `{k}`: save: {v.get('save', v.get('create'))}; read: {v.get('read', '-')}")
    add(
        "- The fixtures create the narrow dtypes with `tf.constant` from `ml_dtypes` "
        "arrays (`tf.constant(np.arange(-8, 8).astype(ml_dtypes.int4))`), which "
        "works for all of them. Other routes (`tf.cast` from float32, `tf.bitcast` "
        "from uint8):"
    )
    for k, v in sorted(probes.get("create", {}).items()):
        add(f"  - `{k}`: {v}")
    add("")
    add(
        "Legacy V1 (`SaveSlices`, which `Saver(write_version=SaverDef.V1)` runs), "
        "probed the same way; `read` is `tf.train.load_checkpoint(...).get_tensor`, "
        "`restore_v2` the `RestoreV2` op:"
    )
    add("")
    add("| dtype | V1 save | load_checkpoint read | RestoreV2 |")
    add("| --- | --- | --- | --- |")
    for k, v in sorted(probes.get("v1", {}).items()):
        add(
            "| `{}` | {} | {} | {} |".format(
                k, v.get("save", "-"), v.get("read", "-"), v.get("restore_v2", "-")
            )
        )
    add("")

    add("## On-disk observations")
    add("")
    for para in _observations(root, by_path, observed):
        add("- " + para)
    add("")
    add("## Notes")
    add("")
    for para in NOTES:
        add("- " + para)
    add("")
    with open(os.path.join(root, "README.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def _observations(root: str, by_path: dict[str, Entry], observed: dict[str, Any]) -> list[str]:
    """What the files of some fixtures show, read from the fixtures under ``root``."""
    from tensorflow.core.protobuf import tensor_bundle_pb2

    obs = []
    ms = by_path["max_shard_size/ckpt"]
    info = sstable_info(os.path.join(root, "max_shard_size/ckpt.index"))
    parts: dict[str, list[tuple[int, list[int]]]] = {}
    full_shard = {}
    for key, value in info["records"]:
        if not key:
            continue
        entry = tensor_bundle_pb2.BundleEntryProto()
        entry.ParseFromString(value)
        if key.startswith(b"\x00"):
            name = key[1:].split(b"\x00", 1)[0].decode()
            parts.setdefault(name, []).append((entry.shard_id, [d.size for d in entry.shape.dim]))
        elif entry.slices:
            full_shard[key.decode()] = entry.shard_id
    sizes = [f["size"] for f in ms["files"] if ".data-" in f["path"]]
    inner, inner_cuts = "none", 0
    for key, value in info["records"]:
        if key and not key.startswith(b"\x00"):
            entry = tensor_bundle_pb2.BundleEntryProto()
            entry.ParseFromString(value)
            dims = [d.size for d in entry.shape.dim]
            for sl in entry.slices:
                ext = [
                    (e.start, e.length if e.HasField("length") else dims[i])
                    for i, e in enumerate(sl.extent)
                ]
                cut = [i for i, (st, ln) in enumerate(ext) if (st, ln) != (0, dims[i])]
                if len(dims) > 1 and cut and cut[-1] > 0 and len(cut) > inner_cuts:
                    inner_cuts = len(cut)
                    extents = ", ".join(f"{st}:{st + ln}" for st, ln in ext)
                    inner = f"`{key.decode().split('/')[1]}` extents `[{extents}]`"
    desc = []
    for name in sorted(parts):
        shape = by_path["max_shard_size/ckpt"]["tensors"][name]["shape"]
        where = ", ".join(f"{s}@shard{sid}" for sid, s in parts[name])
        desc.append(f"`{name.split('/')[1]}` {shape} -> {len(parts[name])} slices {where}")
    shard_sizes = "/".join(str(s) for s in sizes)
    full_ids = ", ".join(f"`{k.split('/')[1]}`={v}" for k, v in sorted(full_shard.items()))
    words_error = ms["tensors"]["model/words/.ATTRIBUTES/VARIABLE_VALUE"].get("tf_error", "-")
    read_result = observed.get("max_shard_size.checkpoint_read", "?")
    obs.append(
        f"**MaxShardSizePolicy** (`max_shard_size/`, limit 10000 bytes) wrote {len(sizes)} "
        f"data files of {shard_sizes} bytes. It keeps the normal "
        "`<prefix>.data-NNNNN-of-MMMMM` names and one merged `.index`, but *splits* "
        "tensors larger than the room left in a shard into slices, stored exactly like "
        "a partitioned variable (full entry with `slices` + per-slice entries under "
        f"`\\0name\\0...` keys): {'; '.join(desc)}. Slices are irregular (cut to fill "
        "each shard; several slices of one tensor may share a shard, and for rank > 1 "
        f"the cut can run along an inner axis, e.g. {inner}). The sliced full entries "
        f"carry a non-zero `shard_id` ({full_ids}) although they hold no data. The "
        "1200-element string variable `words` is split too (string slices, cut by an "
        f"estimated element size; one shard ends up at {max(sizes)} bytes, over the "
        "limit). TF cannot read it back: `load_checkpoint(...).get_tensor` fails with "
        f"`{words_error}`, and restoring the whole checkpoint with "
        "`tf.train.Checkpoint(...).read(prefix)` into fresh variables gives: "
        f"`{read_result}`."
    )
    info = sstable_info(os.path.join(root, "sharded/ckpt.index"))
    emb_order = []
    for key, value in info["records"]:
        if key == b"emb":
            entry = tensor_bundle_pb2.BundleEntryProto()
            entry.ParseFromString(value)
            emb_order = [sl.extent[0].start for sl in entry.slices]
    obs.append(
        "**Sharded V2 Saver** (`sharded/`): one data file per device "
        "(`ckpt.data-00000-of-00002` = /cpu:0, `-00001-` = /cpu:1), each written "
        "as its own bundle and then merged into one `.index` by MergeV2Checkpoints "
        "(per-entry `shard_id` + `offset` within that shard). The partitioned `emb` "
        "has part_0 and part_2 on /cpu:0 and part_1 on /cpu:1; its full entry lists "
        "the slices with row starts {}, i.e. {}.".format(
            emb_order,
            "in offset order"
            if emb_order == sorted(emb_order)
            else "in shard-merge order, not offset order (readers must not assume sorted slices)",
        )
    )
    obs.append(
        "**Partitioned variables** (`partitioned/`, `sharded/`): the full-name entry "
        "has dtype, full shape and `slices` (one TensorSliceProto per part; TF writes an "
        "explicit `length` even for full dimensions, and `start` 0 is omitted) but no "
        "data (offset/size/crc32c all 0). Each part is an ordinary entry under an "
        "OrderedCode key: `\\x00` (number 0), the name as an OrderedCode string "
        "(terminated by `\\x00\\x01`), the rank, then signed start/length per "
        "dimension, e.g. `\\x00model/embedding\\x00\\x01\\x01\\x02\\x84\\x83\\x80\\x84` "
        "= `model/embedding`, rank 2, `[4:7, 0:4]`. In a sharded checkpoint the full entry keeps "
        "`shard_id` 0 (Saver) or a non-zero one (MaxShardSizePolicy). "
        "`tf.train.load_checkpoint` assembles numeric slices but fails on "
        "string slices (`Dtype string not supported.`), and so does `RestoreV2`."
    )
    obs.append(
        "**Sub-byte dtypes** (`int4`, `uint4`, `int2`, `uint2`, `float4_e2m1fn`) are "
        "stored one element per byte, exactly the `ml_dtypes` in-memory byte (int4 "
        "-8 is `0x08`, not sign-extended `0xf8`); the float8 types are 1 byte as "
        "expected. NaN payloads, -nan and signalling NaNs survive SaveV2/"
        "load_checkpoint bit-exactly (checked by the generator)."
    )
    obs.append(
        "**V1 writing still works** in TF 2.21 (`Saver(write_version=SaverDef.V1)`, "
        "with a deprecation warning), including sharded V1 (`model.ckpt-00000-of-"
        '00002`, state file `model_checkpoint_path: "model.ckpt-?????-of-00002"`). '
        "But `tf.train.load_checkpoint` cannot return partitioned V1 tensors "
        "(`Sliced checkpoints are not supported`) nor V1 float16/uint16/complex "
        "values (`Data type not supported`); `RestoreV2` reads all of them "
        "(`tf_restore_v2` in the manifest)."
    )
    obs.append(
        "**DT_VARIANT** (`variant/`): SaveV2 writes a TensorList as a serialized "
        "VariantTensorDataProto; `load_checkpoint` lists it (dtype `variant`) but "
        "cannot return it."
    )
    obs.append(
        "**PythonState** (`numpy_state/`): each array is one 0-d DT_STRING tensor "
        "`numpy_arrays/<attr>/.ATTRIBUTES/py_state` holding the exact `numpy.save` "
        "bytes (.npy v1.0 header; big-endian, Fortran order and structured dtypes are "
        "described in the header, not converted)."
    )
    obs.append(
        "**Determinism**: every checkpoint file is byte-identical across runs. "
        "The only file that changes is `saved_model/fingerprint.pb`, which holds a "
        "random `uuid` (not part of the manifest)."
    )
    return obs


NOTES = (
    "Each fixture is written in a fresh subprocess whose working directory is the "
    "fixture's directory, with relative prefixes, so state files (`checkpoint`) hold "
    "relative paths (`ckpt-1`, `model.ckpt-?????-of-00002`) and no temp paths leak in. "
    "Environment: `TF_CPP_MIN_LOG_LEVEL=3 TF_ENABLE_ONEDNN_OPTS=0 CUDA_VISIBLE_DEVICES= "
    "PYTHONHASHSEED=0 TF_DETERMINISTIC_OPS=1`.",
    "All values are fixed (bit patterns, `np.arange`, constant initializers); the only "
    "computed values are the one Adam step in `object_based/`, which is bit-reproducible "
    "on CPU with oneDNN off.",
    "The generator checks that `tf.train.load_checkpoint` opens every prefix, that TF "
    "reads every SaveV2 value back bit-exactly, and the structural facts each fixture "
    "exists for (>= 3 SSTable data blocks in `many_keys`, >= 2 shards and sliced "
    "entries in `sharded`/`max_shard_size`, partitions in the V1 files, ...).",
    "`saved_model/` is the complete SavedModel directory (`saved_model.pb`, "
    "`fingerprint.pb`, `variables/`); TF also creates an empty `assets/` directory, "
    "which git does not keep.",
    "`.npy` headers in `numpy_state/` come from the numpy in the generating "
    "environment; a different numpy may pad them differently (the manifest would "
    "then change, and `--check` would say so).",
)
