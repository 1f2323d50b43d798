"""The benchmark's workloads, generated deterministically (fixed seeds; same bytes every run).

W1  1 GiB of float32 in 16 tensors
W2  20,000 small float32 tensors (64-4096 elements) with model-like names
W3  one string tensor of 1,000,000 byte strings of 0-64 bytes
W4  8 arrays of mixed dtypes, 256 MiB in all, saved through NumpyState
W5  a BERT-base checkpoint: its 206 weights with BERT-base names and shapes (421 MiB),
    Adam slots (adam_m, adam_v) of the 128 one-dimensional ones and global_step: 463
    entries, the index Hugging Face's load_tf_weights_in_bert reads name by name

Every size is multiplied by ``scale``.  ``digest`` gives the SHA-256 the benchmark checks
every library's reads against.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

SEED = 20240611
MIB = 1 << 20
GIB = 1 << 30

WORKLOADS = ("W1", "W2", "W3", "W4", "W5")

_W2_KINDS = ("dense/kernel", "dense/bias", "layer_norm/gamma", "layer_norm/beta")
_W4_DTYPES = ("float32", "float64", "float16", "int64", "int32", "int16", "uint8", "bool")


def _count(base: float, scale: float) -> int:
    return max(1, round(base * scale))


def title(key: str, scale: float) -> str:
    if key == "W1":
        return f"W1: {GIB * scale / MIB:.1f} MiB of float32 in 16 tensors"
    if key == "W2":
        return f"W2: {_count(20000, scale):,} small float32 tensors (64-4096 elements)"
    if key == "W3":
        return f"W3: one string tensor of {_count(1_000_000, scale):,} strings of 0-64 bytes"
    if key == "W4":
        return f"W4: NumpyState, 8 arrays of mixed dtypes, {256 * scale:.1f} MiB"
    if key == "W5":
        rows = "" if scale == 1 else f" (first dimensions x {scale:g})"
        return f"W5: BERT-base weights, Adam slots and global_step, 463 entries{rows}"
    raise KeyError(key)


def generate(key: str, scale: float) -> dict[str, np.ndarray]:
    """The workload's tensors, in save order."""
    return {"W1": _w1, "W2": _w2, "W3": _w3, "W4": _w4, "W5": _w5}[key](scale)


def _w1(scale: float) -> dict[str, np.ndarray]:
    per = max(1, int(GIB * scale) // 4 // 16)
    shape = (per // 1024, 1024) if per >= 1024 else (per,)
    out = {}
    for i in range(16):
        rng = np.random.default_rng([SEED, 1, i])
        out[f"model/block_{i:02d}/kernel"] = rng.random(shape, dtype=np.float32)
    return out


def _w2(scale: float) -> dict[str, np.ndarray]:
    count = _count(20000, scale)
    rng = np.random.default_rng([SEED, 2])
    out = {}
    for i in range(count):
        kind = _W2_KINDS[i % 4]
        name = f"model/layer_{i // 4}/{kind}"
        if kind == "dense/kernel":
            shape: tuple[int, ...] = (int(rng.integers(1, 65)), 64)  # 64..4096 elements
        else:
            shape = (int(rng.integers(64, 4097)),)
        out[name] = rng.standard_normal(shape, dtype=np.float32)
    return out


def _w3(scale: float) -> dict[str, np.ndarray]:
    count = _count(1_000_000, scale)
    rng = np.random.default_rng([SEED, 3])
    lengths = rng.integers(0, 65, count)
    ends = np.cumsum(lengths).tolist()
    payload = rng.bytes(ends[-1] if ends else 0)
    starts = [0, *ends[:-1]]
    strings = np.empty(count, dtype=object)
    strings[:] = [payload[a:b] for a, b in zip(starts, ends)]
    return {"vocab/strings": strings}


def _w4(scale: float) -> dict[str, np.ndarray]:
    per_bytes = max(256, int(256 * MIB * scale) // len(_W4_DTYPES))
    out = {}
    for i, name in enumerate(_W4_DTYPES):
        dtype = np.dtype(name)
        n = per_bytes // dtype.itemsize
        shape = (n // 256, 256) if n >= 256 else (n,)
        rng = np.random.default_rng([SEED, 4, i])
        if dtype.kind == "f":
            if dtype == np.float16:
                value = rng.random(shape, dtype=np.float32).astype(np.float16)
            else:
                value = rng.random(shape, dtype=dtype)
        elif dtype.kind == "b":
            value = rng.integers(0, 2, shape, dtype=np.uint8).astype(bool)
        else:
            info = np.iinfo(dtype)
            value = rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
        out[f"buffer{i}_{name}"] = value
    return out


def bert_base_shapes() -> dict[str, tuple[int, ...]]:
    """The weights of Google's BERT-base checkpoints (bert_model.ckpt), names and shapes."""
    hidden, intermediate, vocab = 768, 3072, 30522
    shapes: dict[str, tuple[int, ...]] = {
        "bert/embeddings/word_embeddings": (vocab, hidden),
        "bert/embeddings/position_embeddings": (512, hidden),
        "bert/embeddings/token_type_embeddings": (2, hidden),
        "bert/embeddings/LayerNorm/gamma": (hidden,),
        "bert/embeddings/LayerNorm/beta": (hidden,),
    }
    for i in range(12):
        layer = f"bert/encoder/layer_{i}"
        for part in ("query", "key", "value"):
            shapes[f"{layer}/attention/self/{part}/kernel"] = (hidden, hidden)
            shapes[f"{layer}/attention/self/{part}/bias"] = (hidden,)
        shapes[f"{layer}/attention/output/dense/kernel"] = (hidden, hidden)
        shapes[f"{layer}/attention/output/dense/bias"] = (hidden,)
        shapes[f"{layer}/attention/output/LayerNorm/gamma"] = (hidden,)
        shapes[f"{layer}/attention/output/LayerNorm/beta"] = (hidden,)
        shapes[f"{layer}/intermediate/dense/kernel"] = (hidden, intermediate)
        shapes[f"{layer}/intermediate/dense/bias"] = (intermediate,)
        shapes[f"{layer}/output/dense/kernel"] = (intermediate, hidden)
        shapes[f"{layer}/output/dense/bias"] = (hidden,)
        shapes[f"{layer}/output/LayerNorm/gamma"] = (hidden,)
        shapes[f"{layer}/output/LayerNorm/beta"] = (hidden,)
    shapes["bert/pooler/dense/kernel"] = (hidden, hidden)
    shapes["bert/pooler/dense/bias"] = (hidden,)
    shapes["cls/predictions/transform/dense/kernel"] = (hidden, hidden)
    shapes["cls/predictions/transform/dense/bias"] = (hidden,)
    shapes["cls/predictions/transform/LayerNorm/gamma"] = (hidden,)
    shapes["cls/predictions/transform/LayerNorm/beta"] = (hidden,)
    shapes["cls/predictions/output_bias"] = (vocab,)
    shapes["cls/seq_relationship/output_weights"] = (2, hidden)
    shapes["cls/seq_relationship/output_bias"] = (2,)
    return shapes


# What Hugging Face's load_tf_weights_in_bert skips (modeling_bert.py): optimizer state.
HF_SKIPPED = ("adam_v", "adam_m", "AdamWeightDecayOptimizer", "global_step")


def hf_loaded(name: str) -> bool:
    """Whether load_tf_weights_in_bert loads the variable ``name``."""
    return not any(part in HF_SKIPPED for part in name.split("/"))


def _w5(scale: float) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for i, (name, shape) in enumerate(bert_base_shapes().items()):
        scaled = (max(1, round(shape[0] * scale)), *shape[1:])
        rng = np.random.default_rng([SEED, 5, i])
        out[name] = rng.random(scaled, dtype=np.float32)
        if len(shape) == 1:
            for slot in ("adam_m", "adam_v"):
                out[f"{name}/{slot}"] = np.zeros(scaled, np.float32)
    out["global_step"] = np.array(1000, np.int64)
    return out


def digest(value: Any) -> str:
    """SHA-256 of an array's contents (strings: their lengths, then their bytes)."""
    array = np.asarray(value)
    h = hashlib.sha256()
    if array.dtype == object:
        strings = array.reshape(-1).tolist()
        h.update(np.fromiter(map(len, strings), dtype=np.uint64, count=len(strings)).tobytes())
        h.update(b"".join(strings))
    else:
        flat = np.ascontiguousarray(array).reshape(-1)
        h.update(memoryview(flat.view(np.uint8)))
    return h.hexdigest()


def data_bytes(array: np.ndarray) -> int:
    """Payload bytes: nbytes, or the total string length for string tensors."""
    if array.dtype == object:
        return int(sum(map(len, array.reshape(-1).tolist())))
    return int(array.nbytes)


def manifest(key: str, scale: float) -> dict[str, Any]:
    """What a correct read must return: per tensor dtype, shape and SHA-256."""
    tensors = generate(key, scale)
    return {
        "workload": key,
        "scale": scale,
        "title": title(key, scale),
        "order": list(tensors),
        "nbytes": sum(data_bytes(v) for v in tensors.values()),
        "tensors": {
            name: {
                "dtype": "object" if v.dtype == object else v.dtype.str,
                "shape": list(v.shape),
                "sha256": digest(v),
            }
            for name, v in tensors.items()
        },
    }
