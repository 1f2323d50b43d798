"""Which rows run for each workload, and what each row is called in the tables."""

from __future__ import annotations

SECTIONS = {
    "save": "save (flat tensors, each library's own format)",
    "list": "open + list keys",
    "read": "read every tensor into owned arrays (CRC verified where the format has one)",
    "read_zc": "read every tensor zero-copy (memory map), CRC verified",
    "save_obj": "save object-based (Checkpoint(**arrays).write)",
    "ns_save": "NumpyState save (Checkpoint(state=NumpyState).write)",
    "ns_restore": "NumpyState restore (fresh NumpyState, Checkpoint.read)",
    "save_sharded": "save in shards of at most 128 MiB x scale (MaxShardSizePolicy)",
    "save_async": "object-based save: synchronous, and asynchronous (blocking part; + sync())",
    "load_var": "list_variables, then load_variable per weight (Hugging Face's BERT loader)",
}

RAW_READ = ["raw_readinto", "raw_readinto_crc", "raw_readinto_crc_fresh", "raw_crc"]
RAW_WRITE = ["raw_write", "raw_write_fsync"]
# Checkpoint.save of W1: synchronous, the blocking part of an async save, async save + sync();
# np.copy of the arrays is what the blocking part is held to.
_ASYNC_SAVE = [
    "tfckpt",
    "tfckpt_async_block",
    "tfckpt_async_total",
    "numpy_copy",
    "tf",
    "tf_async_block",
    "tf_async_total",
]

_FLAT_SAVE = ["tfckpt", "tfckpt_durable", "tf", "safetensors", "numpy", *RAW_WRITE]
_FLAT_READ = [
    "tfckpt",
    "tfckpt_loop",
    "tfckpt_xtf",
    "tf",
    "tf_xtfckpt",
    "safetensors_load_file",
    "safetensors_get_tensor",
    "numpy",
    *RAW_READ,
]
_ZERO_COPY_READ = ["tfckpt", "tfckpt_loop", "safetensors_mmap", "raw_mmap_crc"]

# workload -> [(section, libraries)], in the order the rows run and print.
PLAN: dict[str, list[tuple[str, list[str]]]] = {
    "W1": [
        ("save", _FLAT_SAVE),
        ("list", ["tfckpt", "tf", "safetensors"]),
        ("read", _FLAT_READ),
        ("read_zc", _ZERO_COPY_READ),
        ("save_obj", ["tfckpt", "tf"]),
        ("save_sharded", ["tfckpt", "tfckpt_obj", "tf"]),
        ("save_async", _ASYNC_SAVE),
    ],
    "W2": [
        ("save", _FLAT_SAVE),
        ("list", ["tfckpt", "tf", "safetensors", "numpy"]),
        ("read", _FLAT_READ),
        ("read_zc", _ZERO_COPY_READ),
        ("save_obj", ["tfckpt", "tf"]),
    ],
    "W3": [
        ("save", ["tfckpt", "tfckpt_durable", "tf", "numpy", *RAW_WRITE]),
        ("list", ["tfckpt", "tf"]),
        ("read", ["tfckpt", "tfckpt_loop", "tfckpt_xtf", "tf", "tf_xtfckpt", "numpy", *RAW_READ]),
    ],
    "W4": [
        ("ns_save", ["tfckpt", "tf", "safetensors", "numpy", *RAW_WRITE]),
        (
            "ns_restore",
            [
                "tfckpt",
                "tf",
                "safetensors_load_file",
                "numpy",
                "raw_readinto_crc",
                "raw_readinto_crc_fresh",
            ],
        ),
    ],
    "W5": [
        ("save", ["tfckpt", "tf"]),
        ("load_var", ["tfckpt", "tf", "tfckpt_cold"]),
    ],
}

WORKLOAD_NOTES = {
    "W3": [
        "safetensors: skipped (the format has no string dtype).",
        "numpy: np.save of the object array needs allow_pickle=True (pickle).",
    ],
    "W5": [
        "load_var: one pass of Hugging Face's load_tf_weights_in_bert pattern: list_variables "
        "once, then load_variable(path, name) for each of the 206 names it does not skip "
        "(adam_m, adam_v, global_step); each library reads its own file.",
    ],
    "W4": [
        "safetensors / numpy rows store the 8 arrays flat (save_file / np.save per "
        "array): a reference point, not NumpyState."
    ],
}

LIB_LABEL = {
    "tfckpt": "tfckpt",
    "tfckpt_xtf": "tfckpt, reading TF's file",
    "tfckpt_loop": "tfckpt",
    "tfckpt_durable": "tfckpt",
    "tf": "TF",
    "tf_xtfckpt": "TF, reading tfckpt's file",
    "safetensors": "safetensors",
    "safetensors_load_file": "safetensors",
    "safetensors_get_tensor": "safetensors",
    "safetensors_mmap": "safetensors",
    "numpy": "numpy",
    "numpy_copy": "numpy",
    "tfckpt_obj": "tfckpt",
    "tfckpt_async_block": "tfckpt",
    "tfckpt_async_total": "tfckpt",
    "tfckpt_cold": "tfckpt",
    "tf_async_block": "TF",
    "tf_async_total": "TF",
}

OP_LABEL: dict[tuple[str, str], str | None] = {
    ("save", "tfckpt"): "save_tensors (default options)",
    ("save", "tfckpt_durable"): "save_tensors(durable=True): fsyncs files + directory",
    ("save", "tf"): "tf.raw_ops.SaveV2",
    ("save", "safetensors"): "safetensors.numpy.save_file",
    ("save", "numpy"): None,  # depends on the workload, see numpy_format
    ("list", "tfckpt"): "load_checkpoint().get_variable_to_shape_map()",
    ("list", "tf"): "tf.train.load_checkpoint().get_variable_to_shape_map()",
    ("list", "safetensors"): "safe_open().keys()",
    ("list", "numpy"): "np.load(npz).files",
    ("read", "tfckpt"): "load_tensors() (bulk)",
    ("read", "tfckpt_loop"): "get_tensor(copy=True) loop",
    ("read", "tfckpt_xtf"): "load_tensors() (bulk)",
    ("read", "tf"): "get_tensor loop",
    ("read", "tf_xtfckpt"): "get_tensor loop",
    ("read", "safetensors_load_file"): "load_file (no checksum in format)",
    ("read", "safetensors_get_tensor"): "safe_open().get_tensor loop (no checksum)",
    ("read", "numpy"): None,
    ("read_zc", "tfckpt"): "load_tensors(copy=False) (bulk)",
    ("read_zc", "tfckpt_loop"): "get_tensor(copy=False) loop",
    ("read_zc", "safetensors_mmap"): "mmap + np.frombuffer + crc32c per tensor",
    ("save_obj", "tfckpt"): "tfckpt.Checkpoint(**arrays).write",
    ("save_obj", "tf"): "tf.train.Checkpoint(**variables).write",
    ("ns_save", "tfckpt"): "tfckpt.NumpyState + Checkpoint.write",
    ("ns_save", "tf"): "TF-Agents-style NumpyState + tf.train.Checkpoint.write",
    ("ns_save", "safetensors"): "save_file (flat reference)",
    ("ns_save", "numpy"): "np.save per array (flat reference)",
    ("ns_restore", "tfckpt"): "tfckpt.NumpyState + Checkpoint.read",
    ("ns_restore", "tf"): "TF-Agents-style NumpyState + tf.train.Checkpoint.read",
    ("ns_restore", "safetensors_load_file"): "load_file (flat reference)",
    ("ns_restore", "numpy"): "np.load per array (flat reference)",
    ("save_sharded", "tfckpt"): "save_tensors(max_shard_size=...)",
    ("save_sharded", "tfckpt_obj"): "Checkpoint.write(options=...MaxShardSizePolicy)",
    ("save_sharded", "tf"): "tf.train.Checkpoint.write(options=...MaxShardSizePolicy)",
    ("save_async", "tfckpt"): "tfckpt.Checkpoint.save (synchronous)",
    ("save_async", "tfckpt_async_block"): "Checkpoint.save(enable_async=True): blocking part",
    ("save_async", "tfckpt_async_total"): "Checkpoint.save(enable_async=True) + sync()",
    ("save_async", "numpy_copy"): "np.copy of every array (the snapshot's floor)",
    ("save_async", "tf"): "tf.train.Checkpoint.save (synchronous)",
    ("save_async", "tf_async_block"): "tf.train.Checkpoint.save(enable_async): blocking",
    ("save_async", "tf_async_total"): "tf.train.Checkpoint.save(enable_async) + sync()",
    ("load_var", "tfckpt"): "tfckpt.tf_compat.train list_variables + load_variable",
    ("load_var", "tfckpt_cold"): "the same, the reader cache cleared before each pass",
    ("load_var", "tf"): "tf.train.list_variables + tf.train.load_variable",
}

RAW_LABEL = {
    "raw_readinto": "readinto, preallocated buffer (no CRC)",
    "raw_readinto_crc": "readinto+CRC, preallocated buffer",
    "raw_readinto_crc_fresh": "readinto+CRC, fresh buffer each time",
    "raw_crc": "crc32c of the bytes already in memory",
    "raw_mmap_crc": "mmap+CRC",
    "raw_write": "open/write/close (no fsync)",
    "raw_write_fsync": "open/write/fsync/close",
}


def needed_module(lib: str) -> str | None:
    """The peer module a row needs (None: tfckpt, numpy or raw only)."""
    if lib == "tf" or lib.startswith("tf_"):
        return "tensorflow"
    if lib.startswith("safetensors"):
        return "safetensors"
    return None


def numpy_format(workload: str) -> str:
    """How the numpy rows store a workload: one .npz, pickled .npy, or one .npy per array."""
    return {"W2": "npz", "W3": "pickle"}.get(workload, "npy")


def row_label(workload: str, section: str, lib: str) -> str:
    if lib.startswith("raw_"):
        return f"raw  {RAW_LABEL[lib]}"
    op = OP_LABEL.get((section, lib))
    if op is None and lib == "numpy":
        fmt = numpy_format(workload)
        save = section in ("save", "ns_save")
        op = {
            "npz": "np.savez (one .npz)" if save else "np.load(.npz)[key] loop",
            "pickle": "np.save(allow_pickle=True)" if save else "np.load(allow_pickle=True)",
            "npy": "np.save per array" if save else "np.load per array",
        }[fmt]
    return f"{LIB_LABEL[lib]}  {op}"
