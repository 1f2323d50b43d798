"""``tfckpt inspect`` (``ls``): listings with sizes and totals, and TensorFlow's
inspect_checkpoint options, on fixtures and the corpus."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import tfckpt
from tests import manifest
from tests.cli.run import _env, one_line_error
from tests.cli.run import tfckpt as run
from tests.conftest import CORPUS, FIXTURES
from tfckpt import cli

DTYPES = FIXTURES / "dtypes" / "ckpt"
STRINGS = FIXTURES / "strings" / "ckpt"
ENTRIES = manifest.load(CORPUS / "MANIFEST.json")


def test_listing_format_sizes_and_total():
    """The first line is '# PREFIX (FORMAT, N tensors)', each tensor is
    'name (dtype) [shape]' plus its bytes, and the last line totals them."""
    done = run("inspect", DTYPES)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"# {DTYPES} (v2, 31 tensors)"
    assert lines[1].split() == ["bfloat16", "(bfloat16)", "[16]", "32", "B"]
    float32 = next(line for line in lines if line.startswith("float32 "))
    assert float32.split()[:3] == ["float32", "(float32)", "[17]"] and float32.endswith("68 B")
    assert lines[-1] == "# total: 31 tensors, 1.9 KiB (1,958 bytes)"
    assert len(lines) == 33


def test_sizes_are_human_readable_and_exact_with_bytes():
    """Sizes use KiB/MiB; --bytes prints exact counts."""
    human = run("ls", STRINGS).stdout
    assert "long_20000 (string) []" in human and "19.5 KiB" in human
    exact = run("ls", STRINGS, "--bytes").stdout
    row = next(line for line in exact.splitlines() if line.startswith("long_20000"))
    assert row.split()[-1] == "20007"


def test_filter_and_sort():
    """--filter keeps matching names (and the total says how many of all); --sort size
    orders largest first."""
    done = run("inspect", DTYPES, "--filter", "^float8", "--sort", "size")
    lines = done.stdout.splitlines()
    names = [line.split()[0] for line in lines[1:-1]]
    assert names and all(n.startswith("float8") for n in names)
    assert lines[-1].startswith(f"# total: {len(names)} of 31 tensors")
    sizes = run("inspect", STRINGS, "--sort", "size", "--json")
    listed = json.loads(sizes.stdout)["tensors"]
    assert [t["bytes"] for t in listed] == sorted((t["bytes"] for t in listed), reverse=True)


def test_json_listing_matches_the_reader():
    """--json gives prefix, format, count, total and every tensor's dtype, shape and bytes."""
    data = json.loads(run("inspect", DTYPES, "--json").stdout)
    reader = tfckpt.load_checkpoint(DTYPES)
    assert data["prefix"] == str(DTYPES) and data["format"] == "v2" and data["count"] == 31
    shapes = reader.get_variable_to_shape_map()
    assert {t["name"]: t["shape"] for t in data["tensors"]} == shapes
    dtypes = reader.get_variable_to_dtype_map()
    assert {t["name"]: t["dtype"] for t in data["tensors"]} == {
        k: v.name for k, v in dtypes.items()
    }
    assert data["total_bytes"] == sum(t["bytes"] for t in data["tensors"]) == 1958


def test_tensor_prints_as_inspect_checkpoint_does():
    """--tensor NAME (and TF's --tensor_name) prints 'tensor_name:  NAME' and then the value
    as print() shows TensorFlow's reader's value."""
    reader = tfckpt.load_checkpoint(DTYPES)
    for flag in ("--tensor", "--tensor_name"):
        done = run("inspect", DTYPES, flag, "int32")
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"tensor_name:  int32\n{reader.get_tensor('int32')}\n"


def test_all_tensors_and_all_tensor_names():
    """--all-tensors prints every name and value; --all-tensor-names only the names (TF's
    underscore spellings work too)."""
    reader = tfckpt.load_checkpoint(FIXTURES / "shapes" / "ckpt")
    names = sorted(reader.keys())
    done = run("inspect", FIXTURES / "shapes" / "ckpt", "--all_tensor_names")
    assert done.stdout.splitlines() == [f"tensor_name:  {n}" for n in names]
    done = run("inspect", "--file_name", FIXTURES / "shapes" / "ckpt", "--all-tensors")
    expected = "".join(f"tensor_name:  {n}\n{reader.get_tensor(n)}\n" for n in names)
    assert done.stdout == expected


def test_printoptions(tmp_path):
    """--printoptions k=v sets NumPy's print options for the printed values, as TF's tool
    does (threshold=... prints a long tensor in full); a bad option is a usage error."""
    prefix = tfckpt.save_tensors(tmp_path / "big", {"x": np.arange(2000, dtype=np.int32)})
    short = run("inspect", prefix, "--tensor", "x").stdout
    full = run("inspect", prefix, "--tensor", "x", "--printoptions", "threshold=100000").stdout
    assert "..." in short and "..." not in full and " 1500 " in full
    done = run("inspect", prefix, "--tensor", "x", "--printoptions", "nosuchoption=1")
    assert done.returncode == 2 and "not a valid printoption" in done.stderr


def test_tensor_json_values():
    """--tensor NAME --json gives the values as nested lists; non-finite floats as strings,
    non-UTF-8 strings as base64."""
    floats = json.loads(run("inspect", DTYPES, "--tensor", "float32", "--json").stdout)
    assert floats["dtype"] == "float32" and floats["shape"] == [17]
    assert "nan" in floats["values"] and "inf" in floats["values"]
    text = json.loads(run("inspect", STRINGS, "--tensor", "utf8", "--json").stdout)
    assert all(isinstance(v, str) for v in text["values"])
    binary = json.loads(run("inspect", STRINGS, "--tensor", "binary", "--json").stdout)
    assert set(binary["values"]) == {"base64"}


def test_unknown_tensor_is_a_usage_error_with_suggestions():
    """An unknown --tensor name is exit code 2, in one line, suggesting close names."""
    line = one_line_error(run("inspect", DTYPES, "--tensor", "flaot32"), 2)
    assert "'flaot32'" in line and "did you mean 'float32'" in line


def test_values_flag_keeps_the_old_listing():
    """--values prints each listing line followed by the tensor's value."""
    done = run("inspect", FIXTURES / "shapes" / "ckpt", "--values")
    assert done.returncode == 0
    assert "\none (float64) [1]\n[42.]\n" in done.stdout


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["path"])
def test_corpus_listing_matches_tensorflow(entry, capsys):
    """For every corpus checkpoint, `tfckpt inspect --json` lists exactly the names, dtypes
    and shapes TensorFlow 2.21 read (MANIFEST.json), with a size for every tensor."""
    prefix = os.path.join(CORPUS, entry["path"])
    assert cli.main(["inspect", prefix, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    listed = {t["name"]: t for t in data["tensors"]}
    assert sorted(listed) == sorted(entry["tensors"])
    for name, info in entry["tensors"].items():
        assert listed[name]["dtype"] == info["dtype"] and listed[name]["shape"] == info["shape"]
        assert isinstance(listed[name]["bytes"], int)
    assert data["format"] == entry["format"]


def test_names_that_are_not_utf8_print_as_their_bytes(tmp_path):
    """A key that is not UTF-8 is printed as its stored bytes, not an encoding error."""
    name = b"bad\xff".decode("utf-8", "surrogateescape")
    prefix = tfckpt.save_tensors(tmp_path / "ckpt", {name: np.zeros(2), "ok": np.ones(1)})
    done = subprocess.run(
        [sys.executable, "-m", "tfckpt", "inspect", prefix], env=_env(), capture_output=True
    )
    assert done.returncode == 0, done.stderr
    assert b"\nbad\xff (float64) [2]" in done.stdout


def test_saved_model_directory():
    """A SavedModel directory lists its variables/ bundle."""
    done = run("inspect", FIXTURES / "saved_model")
    assert done.returncode == 0
    assert done.stdout.startswith(f"# {FIXTURES / 'saved_model' / 'variables' / 'variables'} (v2")
