"""``tfckpt verify``: every checksum and the structure, on clean and corrupted copies of
real TensorFlow checkpoints."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import tfckpt
from tests import manifest
from tests.cli.run import copy_checkpoint, flip_byte
from tests.cli.run import tfckpt as run
from tests.conftest import CORPUS, FIXTURES
from tfckpt import cli
from tfckpt.bundle.reader import BundleReader
from tfckpt.objects.keys import OBJECT_GRAPH_KEY

DTYPES = FIXTURES / "dtypes" / "ckpt"
DATA = ".data-00000-of-00001"
FIXTURE_PREFIXES = [
    os.path.join(FIXTURES, e["path"]) for e in manifest.load(FIXTURES / "MANIFEST.json")
]
CORPUS_ENTRIES = manifest.load(CORPUS / "MANIFEST.json")


def _complete(entry: dict) -> bool:
    """Whether every file the checkpoint needs is in the corpus (some are index only)."""
    return all("tf_error" not in t for t in entry["tensors"].values())


def _offset(prefix: Path, name: str) -> int:
    with BundleReader(prefix) as reader:
        return reader.entries.layout(name).extents[0].offset


@pytest.mark.parametrize("prefix", FIXTURE_PREFIXES, ids=lambda p: os.path.relpath(p, FIXTURES))
def test_every_fixture_verifies(prefix, capsys):
    """Every TensorFlow-written fixture (variants, partitioned, sharded, V1 included) is
    clean: exit code 0 and an OK summary."""
    assert cli.main(["verify", prefix]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"OK: {prefix} ")


@pytest.mark.parametrize("entry", CORPUS_ENTRIES, ids=lambda e: e["path"])
def test_corpus(entry, capsys):
    """Corpus checkpoints with all their files verify clean; those stored without their data
    files (index only, a missing shard) fail, naming the missing file."""
    prefix = os.path.join(CORPUS, entry["path"])
    code = cli.main(["verify", prefix])
    out = capsys.readouterr().out
    if _complete(entry):
        assert code == 0, out
    else:
        assert code == 1
        assert out.startswith("BAD ") and "the data file is missing" in out


def test_flipped_data_byte_names_the_tensor(tmp_path):
    """One flipped bit in the data file: exit 1 and a line naming the file and the tensor
    whose checksum no longer matches."""
    prefix = copy_checkpoint(DTYPES, tmp_path)
    flip_byte(Path(str(prefix) + DATA), _offset(prefix, "float64") + 3)
    done = run("verify", prefix)
    assert done.returncode == 1
    first = done.stdout.splitlines()[0]
    assert first.startswith("BAD ") and "tensor 'float64'" in first and DATA in first
    assert "checksum mismatch" in first
    assert done.stdout.splitlines()[-1].startswith(f"BAD: {prefix} ")


def test_all_reports_every_bad_tensor(tmp_path):
    """Without --all verification stops at the first bad tensor; --all names each one."""
    prefix = copy_checkpoint(DTYPES, tmp_path)
    for name in ("float64", "int16", "string"):
        flip_byte(Path(str(prefix) + DATA), _offset(prefix, name) + 1)
    first = run("verify", prefix)
    problems = [line for line in first.stdout.splitlines() if line.startswith("BAD '")]
    assert first.returncode == 1 and len(problems) == 1 and "stopped at the first" in first.stdout
    every = run("verify", prefix, "--all", "--json")
    assert every.returncode == 1
    report = json.loads(every.stdout)
    assert report["ok"] is False and sorted(report["bad_tensors"]) == ["float64", "int16", "string"]
    assert report["tensors_checked"] == 28 and report["tensors"] == 31


def test_corrupt_index_block(tmp_path):
    """A flipped byte in the index is a block checksum mismatch of the .index file."""
    prefix = copy_checkpoint(FIXTURES / "object_based" / "ckpt-1", tmp_path)
    flip_byte(Path(str(prefix) + ".index"), 30)
    done = run("verify", prefix)
    assert done.returncode == 1
    assert ".index" in done.stdout and "checksum mismatch" in done.stdout


def test_truncated_data_file(tmp_path):
    """A truncated data file: the tensors past its end are named as truncated."""
    prefix = copy_checkpoint(FIXTURES / "shapes" / "ckpt", tmp_path)
    data = Path(str(prefix) + DATA)
    data.write_bytes(data.read_bytes()[:1000])
    report = json.loads(run("verify", prefix, "--all", "--json").stdout)
    assert not report["ok"] and report["bad_tensors"]
    assert all("truncated" in p["message"] for p in report["problems"])


def test_partitioned_and_string_tensors(tmp_path):
    """A corrupt slice of a partitioned tensor names the partitioned tensor."""
    prefix = copy_checkpoint(FIXTURES / "partitioned" / "ckpt", tmp_path)
    reader = tfckpt.load_checkpoint(prefix)
    sliced = next(n for n in reader if reader.get_tensor_slices(n))
    with BundleReader(prefix) as bundle:
        offset = bundle.entries.layout(sliced).extents[-1].offset
    flip_byte(Path(str(prefix) + DATA), offset)
    done = run("verify", prefix, "--all")
    assert done.returncode == 1 and f"tensor {sliced!r}" in done.stdout


def test_variant_tensors_are_checksummed(tmp_path):
    """Variant tensors (which need TensorFlow to decode) still have their checksums checked."""
    clean = run("verify", FIXTURES / "variant" / "ckpt")
    assert clean.returncode == 0 and "variant, checksums verified" in clean.stdout
    prefix = copy_checkpoint(FIXTURES / "variant" / "ckpt", tmp_path)
    with BundleReader(prefix) as bundle:
        entry = bundle.entry("tensor_list")
    flip_byte(Path(str(prefix) + DATA), entry.offset + entry.size // 2)
    done = run("verify", prefix)
    assert done.returncode == 1 and "tensor 'tensor_list'" in done.stdout


def test_object_graph_naming_a_missing_key(tmp_path):
    """An object graph attribute pointing at a key the checkpoint lacks is a problem."""
    source = tfckpt.load_checkpoint(FIXTURES / "object_based" / "ckpt-1")
    dropped = "net/w/.ATTRIBUTES/VARIABLE_VALUE"
    with tfckpt.BundleWriter(tmp_path / "ckpt") as writer:
        for name in source:
            if name != dropped:
                writer.add(name, source.get_tensor(name))
    done = run("verify", tmp_path / "ckpt")
    assert done.returncode == 1
    assert OBJECT_GRAPH_KEY in done.stdout and repr(dropped) in done.stdout


def test_corrupt_numpy_state_value(tmp_path):
    """A NumpyState value whose .npy bytes are damaged is named."""
    source = tfckpt.load_checkpoint(FIXTURES / "numpy_state" / "ckpt-1")
    bad = "numpy_arrays/x/.ATTRIBUTES/py_state"
    with tfckpt.BundleWriter(tmp_path / "ckpt") as writer:
        for name in source:
            value = source.get_tensor(name)
            writer.add(name, value[:40] if name == bad else value)
    done = run("verify", tmp_path / "ckpt")
    assert done.returncode == 1 and f"tensor {bad!r}" in done.stdout


def test_quiet_prints_only_the_summary(tmp_path):
    """--quiet leaves only the summary line."""
    prefix = copy_checkpoint(DTYPES, tmp_path)
    flip_byte(Path(str(prefix) + DATA), _offset(prefix, "int8"))
    done = run("verify", prefix, "-q")
    assert done.returncode == 1 and len(done.stdout.splitlines()) == 1
