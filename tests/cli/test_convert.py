"""``tfckpt convert``: checkpoints <-> safetensors (through the real safetensors package),
checkpoints <-> .npz, checkpoint -> checkpoint; selection, renames, and safe outputs."""

from __future__ import annotations

import json
import os

import ml_dtypes
import numpy as np
import pytest

import tfckpt
from tests import manifest
from tests.cli.run import one_line_error
from tests.cli.run import tfckpt as run
from tests.conftest import CORPUS, FIXTURES
from tfckpt import cli
from tfckpt.inspection.inventory import take_inventory

safetensors = pytest.importorskip("safetensors")
from safetensors import safe_open  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

DTYPES = FIXTURES / "dtypes" / "ckpt"
OBJECT_BASED = FIXTURES / "object_based" / "ckpt-1"
# dtypes the safetensors format has (the others are refused, by name)
SAFETENSORS_CODES = {
    "bfloat16": "BF16",
    "bool": "BOOL",
    "complex64": "C64",
    "float16": "F16",
    "float32": "F32",
    "float64": "F64",
    "float8_e4m3fn": "F8_E4M3",
    "float8_e4m3fnuz": "F8_E4M3FNUZ",
    "float8_e5m2": "F8_E5M2",
    "float8_e5m2fnuz": "F8_E5M2FNUZ",
    "int16": "I16",
    "int32": "I32",
    "int64": "I64",
    "int8": "I8",
    "uint16": "U16",
    "uint32": "U32",
    "uint64": "U64",
    "uint8": "U8",
}
CORPUS_COMPLETE = [
    e
    for e in manifest.load(CORPUS / "MANIFEST.json")
    if all("tf_error" not in t for t in e["tensors"].values())
]


def _only(names):
    return "^(" + "|".join(names) + ")$"


def test_every_safetensors_dtype_goes_through_as_itself(tmp_path):
    """Each dtype safetensors has (bfloat16 and the float8 types included) is written with
    its own safetensors dtype code and the exact bytes, as the safetensors package reads
    them."""
    out = tmp_path / "dtypes.safetensors"
    done = run("convert", DTYPES, out, "--include", _only(SAFETENSORS_CODES))
    assert done.returncode == 0, done.stderr
    reader = tfckpt.load_checkpoint(DTYPES)
    with safe_open(str(out), framework="np") as f:
        assert sorted(f.keys()) == sorted(SAFETENSORS_CODES)
        for name, code in SAFETENSORS_CODES.items():
            handle = f.get_slice(name)
            assert handle.get_dtype() == code
            assert handle.get_shape() == reader.get_variable_to_shape_map()[name]
            if not code.startswith("F8"):  # (safetensors' NumPy path cannot make float8)
                value = f.get_tensor(name)
                assert value.tobytes() == reader.get_tensor(name).tobytes(), name


def test_unrepresentable_dtypes_are_named(tmp_path):
    """Dtypes safetensors lacks (strings, complex128, int4, quantized, ...) are refused in
    one line naming a tensor and why; exit 1 and nothing is written."""
    out = tmp_path / "out.safetensors"
    line = one_line_error(run("convert", DTYPES, out), 1)
    assert "tensor 'complex128'" in line and "safetensors" in line and "more" in line
    line = one_line_error(run("convert", FIXTURES / "strings" / "ckpt", out), 1)
    assert "string tensor" in line and "--exclude" in line
    assert list(tmp_path.iterdir()) == []


def test_safetensors_round_trip_with_values(tmp_path):
    """checkpoint -> safetensors -> checkpoint gives the same tensors (the object graph is
    rebuilt), checked with the safetensors package and with tfckpt diff."""
    prefix = CORPUS / "tensorflow-ranking/tensorflow_ranking/extension/testdata/bert_lite_tf2.ckpt"
    middle, back = tmp_path / "m.safetensors", tmp_path / "back" / "ckpt"
    assert run("convert", prefix, middle).returncode == 0
    original = tfckpt.load_checkpoint(prefix)
    with safe_open(str(middle), framework="np") as f:
        for name in f.keys():  # noqa: SIM118 (safe_open objects are not iterable)
            np.testing.assert_array_equal(f.get_tensor(name), original.get_tensor(name))
        assert f.metadata()["format"] == "tf" and f.metadata()["tfckpt.names"] == "keys"
    assert run("convert", middle, back).returncode == 0
    assert run("diff", prefix, back).returncode == 0
    assert tfckpt.load_tree(back)["model"]["layer_with_weights-0"]["embeddings"].shape == (10, 2)


@pytest.mark.parametrize("entry", CORPUS_COMPLETE, ids=lambda e: e["path"])
def test_corpus_round_trips_through_safetensors(entry, tmp_path, capsys):
    """Every complete corpus checkpoint goes to safetensors and back (strings, which
    safetensors cannot hold, left out) with every value as TensorFlow read it."""
    prefix = os.path.join(CORPUS, entry["path"])
    numeric = [n for n, t in entry["tensors"].items() if t["dtype"] != "string"]
    if not numeric:
        pytest.skip("only strings")
    middle, back = tmp_path / "m.safetensors", tmp_path / "back"
    exclude = ["--exclude", _only(n for n, t in entry["tensors"].items() if t["dtype"] == "string")]
    assert cli.main(["convert", prefix, str(middle), *exclude]) == 0, capsys.readouterr()
    assert cli.main(["convert", str(middle), str(back)]) == 0
    with tfckpt.load_checkpoint(back) as reader:
        for name in numeric:
            info = entry["tensors"][name]
            value = reader.get_tensor(name)
            assert reader.get_dtype(name).name == info["dtype"]
            assert manifest.value_digest(value, info["dtype"]) == info["sha256"], name


def test_foreign_safetensors_to_checkpoint(tmp_path):
    """A file written by the safetensors package (PyTorch-style names, bfloat16) becomes a
    name-based checkpoint with those keys, or with --names paths an object-based one."""
    source = tmp_path / "model.safetensors"
    tensors = {
        "encoder.weight": np.arange(12, dtype=np.float32).reshape(3, 4),
        "encoder.bias": np.arange(3).astype(ml_dtypes.bfloat16),
        "step": np.array(7, np.int64),
    }
    save_file(tensors, str(source))
    assert run("convert", source, tmp_path / "keys").returncode == 0
    reader = tfckpt.load_checkpoint(tmp_path / "keys")
    assert sorted(reader.keys()) == sorted(tensors)
    assert reader.get_dtype("encoder.bias").name == "bfloat16" and reader.get_tensor("step") == 7
    assert run("convert", source, tmp_path / "paths", "--names", "paths").returncode == 0
    tree = tfckpt.load_tree(tmp_path / "paths")
    np.testing.assert_array_equal(tree["encoder.weight"], tensors["encoder.weight"])


def test_npz_both_ways(tmp_path):
    """checkpoint -> .npz (strings as fixed-width bytes, no pickle) -> checkpoint."""
    prefix = FIXTURES / "shapes" / "ckpt"
    out = tmp_path / "shapes.npz"
    assert run("convert", prefix, out).returncode == 0
    reader = tfckpt.load_checkpoint(prefix)
    with np.load(out, allow_pickle=False) as archive:
        assert sorted(archive.files) == sorted(reader.keys())
        for name in archive.files:
            np.testing.assert_array_equal(archive[name], reader.get_tensor(name))
    assert run("convert", out, tmp_path / "back").returncode == 0
    assert run("diff", prefix, tmp_path / "back").returncode == 0
    words = tmp_path / "words.npz"
    np.savez(words, vocab=np.array([b"a", b"bc"]), ids=np.arange(3))
    assert run("convert", words, tmp_path / "words").returncode == 0
    back = tfckpt.load_checkpoint(tmp_path / "words")
    assert back.get_dtype("vocab").name == "string" and list(back["vocab"]) == [b"a", b"bc"]


def test_failed_conversion_leaves_nothing(tmp_path):
    """A conversion failing while writing (a string ending in NUL cannot go to .npz) leaves
    neither the output nor a temporary."""
    out = tmp_path / "out" / "strings.npz"
    line = one_line_error(run("convert", FIXTURES / "strings" / "ckpt", out), 1)
    assert "nul_bytes" in line
    assert not out.exists() and list(out.parent.iterdir()) == []


def test_v1_to_v2(tmp_path):
    """A legacy V1 checkpoint becomes a V2 bundle with the same tensors."""
    prefix = FIXTURES / "v1_format" / "model.ckpt"
    assert run("convert", prefix, tmp_path / "v2").returncode == 0
    assert tfckpt.load_checkpoint(tmp_path / "v2").format == "v2"
    assert run("diff", prefix, tmp_path / "v2").returncode == 0


def test_big_endian_to_little_endian(tmp_path):
    """A big-endian bundle (as TensorFlow writes on s390x) is rewritten little-endian."""
    with tfckpt.BundleWriter(tmp_path / "big", big_endian=True) as writer:
        writer.add("w", np.arange(6, dtype=np.float64).reshape(2, 3))
        writer.add("s", np.array([b"x", b"yz"], dtype=object))
    assert take_inventory(tmp_path / "big").big_endian
    assert run("convert", tmp_path / "big", tmp_path / "little").returncode == 0
    assert not take_inventory(tmp_path / "little").big_endian
    assert run("diff", tmp_path / "big", tmp_path / "little").returncode == 0


def test_partitioned_and_sharded_checkpoints(tmp_path):
    """Partitioned tensors are written whole; a sharded checkpoint becomes one shard."""
    for fixture in ("partitioned", "sharded"):
        prefix = FIXTURES / fixture / "ckpt"
        assert run("convert", prefix, tmp_path / fixture).returncode == 0
        assert run("diff", prefix, tmp_path / fixture).returncode == 0
        assert take_inventory(tmp_path / fixture).num_shards == 1


def test_existing_output_and_force(tmp_path):
    """An existing output is refused (exit 2) unless --force, which also removes the data
    shards the replaced checkpoint had and the new one does not use."""
    out = tmp_path / "ckpt"
    assert run("convert", FIXTURES / "sharded" / "ckpt", tmp_path / "two").returncode == 0
    for file in (FIXTURES / "sharded").glob("ckpt.*"):
        (tmp_path / file.name).write_bytes(file.read_bytes())
    line = one_line_error(run("convert", DTYPES, out), 2)
    assert "--force" in line
    assert run("convert", DTYPES, out, "--force").returncode == 0
    assert sorted(p.name for p in tmp_path.glob("ckpt.*")) == [
        "ckpt.data-00000-of-00001",
        "ckpt.index",
    ]
    assert run("diff", DTYPES, out).returncode == 0


def test_output_is_input(tmp_path):
    """Converting a checkpoint onto itself is refused even with --force."""
    one_line_error(run("convert", OBJECT_BASED, OBJECT_BASED, "--force"), 2)


def test_names_paths_and_exclude_optimizer(tmp_path):
    """--names paths names tensors by object path; --exclude-optimizer drops slots and the
    optimizers' own variables; the object graph is left out (said on stderr)."""
    out = tmp_path / "w.safetensors"
    done = run("convert", OBJECT_BASED, out, "--names", "paths", "--exclude-optimizer")
    assert done.returncode == 0 and "left out '_CHECKPOINTABLE_OBJECT_GRAPH'" in done.stderr
    with safe_open(str(out), framework="np") as f:
        assert sorted(f.keys()) == [
            "dense/_kernel",
            "dense/bias",
            "net/b",
            "net/d/alpha",
            "net/d/beta",
            "net/l/0",
            "net/l/1",
            "net/w",
            "save_counter",
        ]


def test_include_exclude_rename_and_rename_map(tmp_path):
    """--include/--exclude select by regular expression; --rename-map renames exact names
    first, then each --rename FROM=TO substitution in turn."""
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"net/w": "weights"}))
    out = tmp_path / "sel.npz"
    done = run(
        "convert", OBJECT_BASED, out, "--names", "paths",
        "--include", "^net/", "--exclude", "OPTIMIZER_SLOT|/l/",
        "--rename-map", mapping, "--rename", "^net/(.*)$=model.\\1", "--rename", "/=.",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with np.load(out) as archive:
        assert sorted(archive.files) == ["model.b", "model.d.alpha", "model.d.beta", "weights"]


def test_bad_selections_are_usage_errors(tmp_path):
    """A rename giving two tensors one name, a malformed --rename, an empty selection and an
    invalid pattern are usage errors (exit 2) in one line."""
    out = tmp_path / "x.npz"
    line = one_line_error(run("convert", OBJECT_BASED, out, "--rename", "^.*$=same"), 2)
    assert "'same'" in line
    one_line_error(run("convert", OBJECT_BASED, out, "--rename", "no-equals-sign"), 2)
    one_line_error(run("convert", OBJECT_BASED, out, "--include", "^nothing$"), 2)
    one_line_error(run("convert", OBJECT_BASED, out, "--exclude", "[unclosed"), 2)
    assert list(tmp_path.iterdir()) == []


def test_keras_weights_file_from_a_keras_checkpoint(tmp_path):
    """A Keras 3 model's checkpoint to .weights.h5 through the console script (loading it
    into Keras: tests/tf/test_keras_h5_interop.py); --keras-class names hand-named layers."""
    h5py = pytest.importorskip("h5py")
    out = tmp_path / "model.weights.h5"
    keras = FIXTURES / "objects" / "keras_checkpoint" / "ckpt-1"
    done = run(
        "convert",
        keras,
        out,
        "--keras-class",
        "hidden=Dense",
        "--keras-class",
        "out=Dense",
        "--json",
        script=True,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["format"] == "keras" and report["tensors"][0] == "layers/dense/vars/0"
    with h5py.File(out, "r") as f:
        assert sorted(f["layers"]) == ["dense", "dense_1"]
        assert f["layers/dense_1/vars/0"].shape == (4, 2)
    one_line_error(run("convert", keras, tmp_path / "m.weights.h5", "--keras-class", "x"), 2)


def test_keras_weights_files_need_a_keras_graph(tmp_path):
    """A checkpoint that is not a Keras model's, or a Keras output without the name Keras
    reads, is refused in one line, nothing written."""
    pytest.importorskip("h5py")
    line = one_line_error(run("convert", OBJECT_BASED, tmp_path / "model.weights.h5"), 1)
    assert "Keras model" in line and "--keras-model" in line
    line = one_line_error(run("convert", OBJECT_BASED, tmp_path / "model.h5"), 2)
    assert ".weights.h5" in line
    assert list(tmp_path.iterdir()) == []


def test_json_summary(tmp_path):
    """--json reports the path, format, tensors, bytes and what was left out."""
    out = tmp_path / "d.safetensors"
    done = run("convert", DTYPES, out, "--include", "^float32$", "--json")
    assert json.loads(done.stdout) == {
        "path": str(out),
        "format": "safetensors",
        "tensors": ["float32"],
        "bytes": 68,
        "left_out": [],
    }


def test_to_forces_the_format(tmp_path):
    """--to picks the format whatever the name says."""
    out = tmp_path / "weights.bin"
    assert run("convert", DTYPES, out, "--include", "^int8$", "--to", "safetensors").returncode == 0
    with safe_open(str(out), framework="np") as f:
        assert f.keys() == ["int8"]
