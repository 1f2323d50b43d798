"""tfckpt's files are byte-identical to ``tf.raw_ops.SaveV2``'s for the same input.

Each comparison writes the same tensors, in the same order, once with TensorFlow and once
with tfckpt, into separate directories, and compares every file (``.index`` and data file;
also that no temporary file is left behind).
"""

from __future__ import annotations

import random

import numpy as np
import pytest

import tfckpt
from tfckpt.table import TableReader

from ._util import (
    ALL_DTYPES,
    LONG_STRING_LEN,
    QUANTIZED,
    assert_identical_files,
    obj_array,
    obj_scalar,
    pattern_values,
    sample_tensors,
    string_values,
    tf_save,
    to_tf,
)

BLOCK_SIZE = 262144  # TensorFlow's table block size for bundle indexes



def _compare(tf, tmp_path, tensors, dtypes, *, forced=False):
    """SaveV2 and tfckpt write ``tensors`` (in order); the files must be identical."""
    theirs = tf_save(tf, str(tmp_path / "tf" / "ckpt"), tensors, dtypes)
    ours = str(tmp_path / "ours" / "ckpt")
    if forced:
        with tfckpt.BundleWriter(ours) as writer:
            for name, value in tensors.items():
                writer.add(name, value, dtype=dtypes[name])
    else:
        assert tfckpt.save_tensors(ours, tensors) == ours
    assert_identical_files(ours, theirs)
    return ours, theirs


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_every_dtype(tf, tmp_path, dtype):
    tensors = {f"{dtype}/{key}": value for key, value in sample_tensors(dtype).items()}
    _compare(tf, tmp_path, tensors, dict.fromkeys(tensors, dtype))


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_every_dtype_with_forced_dtype(tf, tmp_path, dtype):
    """``BundleWriter.add(..., dtype=name)`` with the array's own dtype changes nothing."""
    tensors = {f"{dtype}/{key}": value for key, value in sample_tensors(dtype).items()}
    _compare(tf, tmp_path, tensors, dict.fromkeys(tensors, dtype), forced=True)


@pytest.mark.parametrize("qtype", sorted(QUANTIZED))
def test_quantized(tf, tmp_path, qtype):
    tensors = {f"{qtype}/{key}": value for key, value in sample_tensors(qtype).items()}
    _compare(tf, tmp_path, tensors, dict.fromkeys(tensors, qtype), forced=True)


def test_all_dtypes_in_one_checkpoint_shuffled(tf, tmp_path):
    tensors, dtypes = {}, {}
    for dtype in ALL_DTYPES:
        for key, value in sample_tensors(dtype).items():
            if key != "long":
                tensors[f"{dtype}:{key}"] = value
                dtypes[f"{dtype}:{key}"] = dtype
    order = list(tensors)
    random.Random(23).shuffle(order)
    _compare(tf, tmp_path, {n: tensors[n] for n in order}, dtypes)


# -- strings ---------------------------------------------------------------------------------


def _blob(length: int, seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, length, dtype=np.uint8).tobytes()


STRING_LENGTHS = [0, 1, 127, 128, 129, 16383, 16384, 16385, (1 << 21) - 1, 1 << 21, LONG_STRING_LEN]


def test_string_scalars_of_every_varint_length(tf, tmp_path):
    tensors = {f"len_{n:08d}": obj_scalar(_blob(n, n)) for n in STRING_LENGTHS}
    _compare(tf, tmp_path, tensors, dict.fromkeys(tensors, "string"))


def test_string_tensors_of_all_kinds(tf, tmp_path):
    mixed = [_blob(n, n) for n in STRING_LENGTHS] + string_values()
    rng = np.random.default_rng(8)
    many = [_blob(int(n), i) for i, n in enumerate(rng.integers(0, 300, 1000))]
    tensors = {
        "mixed": obj_array(mixed),
        "mixed_2d": obj_array([*mixed[::-1], b"pad"], (3, 5)),
        "many_short": obj_array(many, (10, 10, 10)),
        "nul_runs": obj_array([b"\x00" * n for n in range(0, 200, 7)]),
        "ff_runs": obj_array([b"\xff" * n for n in range(0, 200, 7)]),
        "utf8": obj_array([s.encode() for s in ["", "é", "日本語", "🎉" * 40, "a\u0000b"]]),
        "all_empty": obj_array([b""] * 17),
        "empty_tensor": obj_array([], (0,)),
        "empty_tensor_2d": obj_array([], (4, 0)),
        "scalar_empty": obj_scalar(b""),
        "scalar_nul": obj_scalar(b"\x00"),
    }
    _compare(tf, tmp_path, tensors, dict.fromkeys(tensors, "string"))


def test_str_and_unicode_inputs_equal_tf_strings(tf, tmp_path):
    """str / NumPy 'U' and 'S' inputs are stored as their UTF-8 / raw bytes."""
    tensors_tf = {
        "a_str": obj_scalar("héllo".encode()),
        "b_unicode": obj_array([b"x", "ÿ".encode(), "日本".encode()]),
        "c_S": obj_array([b"ab", b"", b"c\x00d"]),
    }
    theirs = tf_save(
        tf, str(tmp_path / "tf" / "ckpt"), tensors_tf, dict.fromkeys(tensors_tf, "string")
    )
    ours = tfckpt.save_tensors(
        str(tmp_path / "ours" / "ckpt"),
        {
            "a_str": "héllo",
            "b_unicode": np.array(["x", "ÿ", "日本"]),
            "c_S": np.array([b"ab", b"", b"c\x00d"]),
        },
    )
    assert_identical_files(ours, theirs)


# -- shapes ----------------------------------------------------------------------------------


def test_scalars_and_empty_tensors(tf, tmp_path):
    tensors, dtypes = {}, {}
    for dtype in ["float32", "int64", "bool", "bfloat16", "complex128", "uint8", "string"]:
        values = sample_tensors(dtype)
        for i, shape in enumerate([(), (0,), (0, 0), (3, 0), (0, 5, 2), (1,), (1, 1, 1)]):
            flat = values["vector"]
            n = int(np.prod(shape, dtype=np.int64))
            if dtype == "string":
                arr = obj_array(flat.tolist()[:n], shape) if n else obj_array([], shape)
            else:
                arr = flat[:n].reshape(shape).copy()
            tensors[f"{dtype}/{i}"] = arr
            dtypes[f"{dtype}/{i}"] = dtype
    _compare(tf, tmp_path, tensors, dtypes)


def test_only_empty_tensors(tf, tmp_path):
    """The data file is empty; the index still describes every tensor."""
    tensors = {
        "z_float": np.zeros((0, 4), np.float32),
        "a_int": np.zeros((0,), np.int8),
        "m_complex": np.zeros((2, 0), np.complex64),
    }
    ours, _ = _compare(
        tf, tmp_path, tensors, {"z_float": "float32", "a_int": "int8", "m_complex": "complex64"}
    )
    with open(ours + ".data-00000-of-00001", "rb") as f:
        assert f.read() == b""


def test_large_tensor_crosses_write_buffer(tf, tmp_path):
    """More than TensorFlow's and tfckpt's 8 MiB write buffer, between small tensors."""
    big = np.random.default_rng(4).integers(0, 2**32, 3_000_001, dtype=np.uint32)
    tensors = {
        "small1": np.arange(3, dtype=np.float64),
        "big": big.view(np.float32),
        "small2": np.arange(5, dtype=np.int16),
    }
    _compare(tf, tmp_path, tensors, {"small1": "float64", "big": "float32", "small2": "int16"})


# -- the index: many entries, ordering, names ------------------------------------------------


def test_index_spans_several_blocks(tf, tmp_path):
    rng = random.Random(31)
    names = []
    for i in range(700):
        # Long names that differ early, so prefix compression cannot shrink the entries.
        head = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz/._") for _ in range(12))
        names.append(f"{head}{i:04d}/" + "x" * rng.randrange(700, 1000))
    assert len(set(names)) == len(names)
    rng.shuffle(names)
    tensors, dtypes = {}, {}
    for i, name in enumerate(names):
        if i % 3 == 0:
            tensors[name] = obj_array([b"s" * (i % 5), b"\x00"])
            dtypes[name] = "string"
        else:
            tensors[name] = np.arange(i % 4, dtype=np.int32) * i
            dtypes[name] = "int32"
    ours, theirs = _compare(tf, tmp_path, tensors, dtypes)
    assert TableReader.open(theirs + ".index").num_blocks >= 3
    assert TableReader.open(ours + ".index").num_blocks >= 3
    with tfckpt.load_checkpoint(ours) as reader:
        assert reader.keys() == sorted(names, key=lambda n: n.encode("utf-8"))


def test_huge_names_get_blocks_of_their_own(tf, tmp_path):
    """Entries near and above twice the block size (TF flushes such entries separately)."""
    lengths = [
        BLOCK_SIZE,
        2 * BLOCK_SIZE - 40,
        2 * BLOCK_SIZE - 20,
        2 * BLOCK_SIZE - 12,
        2 * BLOCK_SIZE,
        2 * BLOCK_SIZE + 100_000,
    ]
    tensors = {"a": np.arange(3, dtype=np.int32), "zz": np.arange(1, dtype=np.int32)}
    for i, n in enumerate(lengths):
        # A small entry ("b~") follows each huge one ("bbb..."), so that the next huge
        # entry arrives while a data block is still open.
        tensors[chr(98 + i) * n] = np.arange(i, dtype=np.int32)
        tensors[chr(98 + i) + "~"] = np.arange(2, dtype=np.int32)
    ours, theirs = _compare(tf, tmp_path, tensors, dict.fromkeys(tensors, "int32"))
    assert TableReader.open(theirs + ".index").num_blocks >= 8
    with tfckpt.load_checkpoint(ours) as reader:
        assert len(reader) == len(tensors)


def test_names_added_in_non_sorted_order(tf, tmp_path):
    names = ["zeta", "alpha", "mid/b", "mid/a", "Alpha", "alpha2", "a", "zz", "b.c", "b/c"]
    tensors = {n: np.full((i + 1,), i, np.int64) for i, n in enumerate(names)}
    _compare(tf, tmp_path, tensors, dict.fromkeys(tensors, "int64"))
    # ... and the reverse order gives different data files, each equal to TF's.
    reversed_tensors = {n: tensors[n] for n in reversed(names)}
    _compare(tf, tmp_path / "rev", reversed_tensors, dict.fromkeys(tensors, "int64"))
    a = (tmp_path / "ours" / "ckpt.data-00000-of-00001").read_bytes()
    b = (tmp_path / "rev" / "ours" / "ckpt.data-00000-of-00001").read_bytes()
    assert a != b and sorted(a) == sorted(b)


def test_unusual_names(tf, tmp_path):
    names = [
        "model/dense/kernel",
        "model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE",
        "a.b.c",
        ".hidden",
        "/leading/slash",
        "trailing/",
        "ünïcödé/名前",
        "emoji/🎉🎉",
        " space first",
        "!bang",
        "\x00nul first",
        "\x01control first",
        "\x7fdel",
        "~tilde last",
        "\u00ff",
        "\uffff",
        "\U0010ffff max code point",
        "A",
        "a",
        "x" * 5000,
    ]
    tensors = {n: np.array([i], np.uint16) for i, n in enumerate(names)}
    random.Random(2).shuffle(names)
    _compare(tf, tmp_path, {n: tensors[n] for n in names}, dict.fromkeys(names, "uint16"))


# -- sliced entries --------------------------------------------------------------------------


def _region(full_shape, spec):
    tensor_slice = tfckpt.TensorSlice.parse(spec)
    return tuple(slice(a, b) for a, b in tensor_slice.bounds(full_shape))


def _compare_slices(tf, tmp_path, items, spec_form="text"):
    """``items``: (name, full value or None, slice text or None, dtype name, plain value).

    TF gets ``shape_and_slices`` strings like ``'10 4 0,5:-'``; tfckpt gets add_slice with
    the slice in ``spec_form`` (text, TensorSlice or extents), or add for plain entries.
    """
    names, specs, tf_tensors = [], [], []
    for name, full, spec, dtype, plain in items:
        names.append(name)
        if spec is None:
            specs.append("")
            tf_tensors.append(to_tf(tf, plain, dtype))
        else:
            specs.append(" ".join(str(d) for d in full.shape) + " " + spec)
            part = np.array(full[_region(full.shape, spec)], order="C")
            tf_tensors.append(to_tf(tf, part, dtype))
    theirs = str(tmp_path / "tf" / "ckpt")
    (tmp_path / "tf").mkdir(parents=True)
    tf.raw_ops.SaveV2(prefix=theirs, tensor_names=names, shape_and_slices=specs, tensors=tf_tensors)
    ours = str(tmp_path / "ours" / "ckpt")
    with tfckpt.BundleWriter(ours) as writer:
        for name, full, spec, dtype, plain in items:
            if spec is None:
                writer.add(name, plain, dtype=dtype if dtype in QUANTIZED else None)
                continue
            part = full[_region(full.shape, spec)]
            if spec_form == "text":
                given = spec
            else:
                parsed = tfckpt.TensorSlice.parse(spec)
                if spec_form == "tensor_slice":
                    given = parsed
                else:
                    given = [
                        None if length == -1 else (start, length)
                        for start, length in zip(parsed.starts, parsed.lengths)
                    ]
            writer.add_slice(
                name, full.shape, given, part, dtype=dtype if dtype in QUANTIZED else None
            )
    assert_identical_files(ours, theirs)
    return ours, theirs


def _full(dtype, shape):
    if dtype == "string":
        n = int(np.prod(shape))
        return obj_array(
            [bytes([97 + i % 26]) * (i % 9) + b"\x00" * (i % 2) for i in range(n)], shape
        )
    return np.resize(pattern_values(dtype), shape)


@pytest.mark.parametrize("spec_form", ["text", "tensor_slice", "extents"])
def test_slices_rank2(tf, tmp_path, spec_form):
    full = _full("float32", (10, 4))
    items = [
        ("w", full, "0,5:-", "float32", None),
        ("w", full, "5,5:0,1", "float32", None),
        ("w", full, "5,5:1,3", "float32", None),
    ]
    ours, _ = _compare_slices(tf, tmp_path, items, spec_form)
    with tfckpt.load_checkpoint(ours) as reader:
        assert reader.keys() == ["w"]
        assert reader.get_tensor("w").tobytes() == full.tobytes()


@pytest.mark.parametrize(
    "dtype", ["string", "float64", "bfloat16", "int4", "float8_e4m3fn", "complex64", "bool"]
)
def test_slices_of_each_kind_of_dtype(tf, tmp_path, dtype):
    full = _full(dtype, (6, 3, 5))
    items = [
        ("t", full, "4,2:-:0,5", dtype, None),
        ("t", full, "0,4:-:0,2", dtype, None),
        ("t", full, "0,4:-:2,3", dtype, None),
    ]
    _compare_slices(tf, tmp_path, items)


def test_slices_of_quantized(tf, tmp_path):
    full = np.resize(pattern_values("qint16"), (4, 4))
    items = [
        ("q", full, "0,1:-", "qint16", None),
        ("q", full, "1,3:-", "qint16", None),
    ]
    _compare_slices(tf, tmp_path, items)


def test_slices_interleaved_with_plain_tensors(tf, tmp_path):
    a = _full("float32", (10, 4))
    b = _full("int64", (3, 9))
    s = _full("string", (4, 2))
    items = [
        ("zz_plain", None, None, "int32", np.arange(3, dtype=np.int32)),
        ("b", b, "-:3,6", "int64", None),
        ("a", a, "7,3:-", "float32", None),
        ("m_plain", None, None, "string", obj_array([b"x", b""])),
        ("s", s, "2,2:-", "string", None),
        ("a", a, "0,7:-", "float32", None),
        ("b", b, "-:0,3", "int64", None),
        ("s", s, "0,2:-", "string", None),
        ("\x01first", None, None, "float16", np.array([1, 2], np.float16)),
    ]
    ours, _ = _compare_slices(tf, tmp_path, items)
    with tfckpt.load_checkpoint(ours) as reader:
        assert reader.keys() == ["\x01first", "a", "b", "m_plain", "s", "zz_plain"]
        assert reader.get_tensor("a").tobytes() == a.tobytes()
        assert reader.get_tensor("b").tobytes() == b.tobytes()
        assert reader.get_tensor("s").tolist() == s.tolist()


@pytest.mark.parametrize("spec", ["-:-", "0,10:0,4", "0,10:-", "-:0,4"])
def test_slice_covering_whole_tensor_is_plain_entry(tf, tmp_path, spec):
    full = _full("float32", (10, 4))
    ours, _ = _compare_slices(tf, tmp_path, [("w", full, spec, "float32", None)])
    keys = [k for k, _ in TableReader.open(ours + ".index").items()]
    assert keys == [b"", b"w"]


def test_partial_coverage_and_empty_full_shape(tf, tmp_path):
    """One slice of a bigger tensor alone, and a slice of a tensor with a 0 dimension."""
    items = [
        ("half", _full("int32", (10, 4)), "0,5:-", "int32", None),
        ("zero_dim", np.zeros((0, 4), np.float32), "-:0,2", "float32", None),
        ("deep", _full("uint8", (2, 3, 4, 5)), "1,1:-:1,2:0,5", "uint8", None),
    ]
    _compare_slices(tf, tmp_path, items)
