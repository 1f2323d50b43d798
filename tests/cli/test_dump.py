"""``tfckpt dump``: one tensor printed, as JSON, or written to .npy without pickle."""

from __future__ import annotations

import json

import numpy as np

import tfckpt
from tests.cli.run import one_line_error
from tests.cli.run import tfckpt as run
from tests.conftest import CORPUS, FIXTURES

DTYPES = FIXTURES / "dtypes" / "ckpt"
STRINGS = FIXTURES / "strings" / "ckpt"
OBJECT_BASED = FIXTURES / "object_based" / "ckpt-1"
NUMPY_STATE = FIXTURES / "numpy_state" / "ckpt-1"


def test_prints_the_value():
    """Without -o the value is printed as NumPy prints it."""
    value = tfckpt.load_checkpoint(DTYPES).get_tensor("int64")
    done = run("dump", DTYPES, "int64")
    assert done.returncode == 0 and done.stdout == f"{value}\n"


def test_name_may_be_the_object_path():
    """A TF2 value is found by its key or by its object path."""
    by_path = run("dump", OBJECT_BASED, "net/w")
    by_key = run("dump", OBJECT_BASED, "net/w/.ATTRIBUTES/VARIABLE_VALUE")
    assert by_path.returncode == by_key.returncode == 0
    assert by_path.stdout == by_key.stdout == "[[0.99 1.99]\n [2.99 3.99]]\n"


def test_writes_npy_without_pickle(tmp_path):
    """-o out.npy writes the exact values, loadable with allow_pickle=False."""
    out = tmp_path / "kernel.npy"
    done = run(
        "dump", CORPUS / "AloshkaD-traffic-signs@027fba2f9b" / "model.ckpt", "Variable_2", "-o", out
    )
    assert done.returncode == 0, done.stderr
    expected = tfckpt.load_checkpoint(CORPUS / "AloshkaD-traffic-signs@027fba2f9b" / "model.ckpt")
    loaded = np.load(out, allow_pickle=False)
    assert loaded.shape == (6144, 128)
    np.testing.assert_array_equal(loaded, expected.get_tensor("Variable_2"))
    assert list(tmp_path.iterdir()) == [out]  # no temporary left beside it


def test_numpy_state_value_is_its_array(tmp_path):
    """A NumpyState value dumps as the array it holds (--raw: the stored .npy bytes)."""
    out = tmp_path / "x.npy"
    assert run("dump", NUMPY_STATE, "numpy_arrays/x", "-o", out).returncode == 0
    assert np.load(out).shape == (3, 4) and np.load(out)[1, 2] == 4
    raw = run("dump", NUMPY_STATE, "numpy_arrays/x", "--raw").stdout
    assert raw.startswith(("b'\\x93NUMPY", 'b"\\x93NUMPY'))


def test_strings_become_fixed_width_bytes(tmp_path):
    """String tensors are written as NumPy fixed-width bytes, said on stderr, values exact."""
    out = tmp_path / "utf8.npy"
    done = run("dump", STRINGS, "utf8", "-o", out)
    assert done.returncode == 0, done.stderr
    assert "fixed-width bytes" in done.stderr
    expected = tfckpt.load_checkpoint(STRINGS).get_tensor("utf8")
    assert np.load(out, allow_pickle=False).tolist() == list(expected)


def test_strings_ending_in_nul_are_refused(tmp_path):
    """A string ending in a NUL byte cannot go to .npy exactly: one-line error naming the
    tensor, exit 1, and no file left."""
    out = tmp_path / "nul.npy"
    line = one_line_error(run("dump", STRINGS, "nul_bytes", "-o", out), 1)
    assert "nul_bytes" in line and "NUL" in line
    assert list(tmp_path.iterdir()) == []


def test_bfloat16_needs_cast(tmp_path):
    """bfloat16 has no .npy name: refused with the advice to --cast, which then works."""
    out = tmp_path / "b.npy"
    line = one_line_error(run("dump", DTYPES, "bfloat16", "-o", out), 1)
    assert "--cast" in line
    assert run("dump", DTYPES, "bfloat16", "-o", out, "--cast", "float32").returncode == 0
    expected = tfckpt.load_checkpoint(DTYPES).get_tensor("bfloat16").astype(np.float32)
    np.testing.assert_array_equal(np.load(out), expected)


def test_existing_output_needs_force(tmp_path):
    """An existing output is refused (exit 2) unless --force."""
    out = tmp_path / "v.npy"
    out.write_bytes(b"keep me")
    line = one_line_error(run("dump", DTYPES, "int8", "-o", out), 2)
    assert "--force" in line and out.read_bytes() == b"keep me"
    assert run("dump", DTYPES, "int8", "-o", out, "--force").returncode == 0
    assert np.load(out).dtype == np.int8


def test_output_must_be_npy(tmp_path):
    """-o with another extension is a usage error."""
    one_line_error(run("dump", DTYPES, "int8", "-o", tmp_path / "v.txt"), 2)


def test_unknown_name(tmp_path):
    """An unknown name is exit 2 with close matches."""
    line = one_line_error(run("dump", OBJECT_BASED, "net/ww"), 2)
    assert "did you mean" in line and "net/w" in line


def test_json_values():
    """--json gives name, dtype, shape and values."""
    data = json.loads(run("dump", DTYPES, "bool", "--json").stdout)
    assert data == {
        "name": "bool",
        "dtype": "bool",
        "shape": [2, 3],
        "values": tfckpt.load_checkpoint(DTYPES).get_tensor("bool").tolist(),
    }
