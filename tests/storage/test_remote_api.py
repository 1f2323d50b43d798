"""Every reading API over fsspec URLs and filesystem objects, against local reads.

The checkpoints are put on fsspec's in-memory filesystem (a real fsspec filesystem, no
server), so these tests need fsspec alone; tests/storage/test_remote_http.py and
test_remote_stores.py run the same paths against servers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import numpy as np
import pytest

import tfckpt
from tests.conftest import FIXTURES, REPO
from tests.storage.conftest import need, put_tree
from tests.storage.conftest import same_value as _same
from tfckpt.storage.location import locate, open_source
from tfckpt.storage.source import LocalFile

MANIFEST = json.loads((FIXTURES / "MANIFEST.json").read_text(encoding="utf-8"))
FIXTURE_PREFIXES = [entry["path"] for entry in MANIFEST if entry["format"] in ("v1", "v2")]


@pytest.fixture(scope="module")
def memory_root():
    """The fixtures tree copied to a fresh directory of fsspec's memory filesystem."""
    need("fsspec")
    import fsspec

    fs = fsspec.filesystem("memory")
    root = f"/tfckpt-{uuid.uuid4().hex}"
    put_tree(fs, FIXTURES, root)
    yield f"memory:/{root}"
    fs.rm(root, recursive=True)


def _readable(reader) -> list[str]:
    names = []
    for name in reader:
        if reader.get_variable_to_dtype_map()[name].name not in ("resource", "variant"):
            names.append(name)
    return names


@pytest.mark.parametrize("prefix", FIXTURE_PREFIXES)
def test_every_fixture_reads_the_same_from_a_url(memory_root, prefix):
    """Each fixture checkpoint (V2 one and several shards, partitioned, strings, every
    dtype, V1, SavedModel variables) gives the same names, shapes, dtypes and values from
    a memory:// URL as from its local files."""
    with (
        tfckpt.load_checkpoint(FIXTURES / prefix) as local,
        tfckpt.load_checkpoint(f"{memory_root}/{prefix}") as remote,
    ):
        assert remote.get_variable_to_shape_map() == local.get_variable_to_shape_map()
        assert remote.get_variable_to_dtype_map() == local.get_variable_to_dtype_map()
        names = _readable(local)
        want = local.get_tensors(names)
        got = remote.get_tensors(names)
        for name in names:
            assert _same(got[name], want[name]), name
            assert _same(remote.get_tensor(name), want[name]), name


@pytest.mark.parametrize(
    "directory", ["object_based", "numpy_state", "saved_model", "v1_format", "v1_sharded"]
)
def test_directories_resolve_as_locally(memory_root, directory):
    """A directory URL finds the same checkpoint as the local directory: through its
    ``checkpoint`` state file (V1 shards named by a glob pattern included) or as a
    SavedModel; latest_checkpoint returns a URL that opens again."""
    local = tfckpt.load_checkpoint(FIXTURES / directory)
    remote = tfckpt.load_checkpoint(f"{memory_root}/{directory}")
    assert remote.format == local.format
    assert remote.prefix.startswith(memory_root)
    assert remote.keys() == local.keys()
    latest = tfckpt.latest_checkpoint(f"{memory_root}/{directory}")
    expected = tfckpt.latest_checkpoint(FIXTURES / directory)
    if expected is None:
        assert latest is None
    else:
        assert latest == f"{memory_root}/{directory}/{expected.rsplit('/', 1)[-1]}"
        assert tfckpt.load_checkpoint(latest).keys() == local.keys()


def test_partial_reads_match_numpy_indexing(memory_root):
    """get_slice on a remote tensor (whole and partitioned) gives what NumPy indexing of
    the whole tensor gives, for steps forwards and backwards."""
    local = tfckpt.load_checkpoint(FIXTURES / "partitioned/ckpt")
    remote = tfckpt.load_checkpoint(f"{memory_root}/partitioned/ckpt")
    for name in local:
        if local.get_variable_to_dtype_map()[name].name == "string":
            continue
        whole = local.get_tensor(name)
        if not isinstance(whole, np.ndarray) or whole.ndim == 0:
            continue
        view = remote.get_slice(name)
        for index in [(slice(None),), (slice(1, None, 2),), (slice(None, None, -1),), (0,)]:
            assert np.array_equal(view[index], whole[index]), (name, index)


def test_public_apis_take_urls_and_filesystems(memory_root):
    """load_checkpoint, load_tensors, list_variables, load_variable, latest_checkpoint and
    get_bytes_view take a URL, and an fsspec filesystem with a path."""
    import fsspec

    prefix = f"{memory_root}/strings/ckpt"
    local = FIXTURES / "strings/ckpt"
    assert tfckpt.list_variables(prefix) == tfckpt.list_variables(local)
    assert tfckpt.load_tensors(prefix).keys() == tfckpt.load_tensors(local).keys()
    name = tfckpt.list_variables(local)[0][0]
    assert _same(tfckpt.load_variable(prefix, name), tfckpt.load_variable(local, name))
    fs = fsspec.filesystem("memory")
    path = prefix[len("memory:/") :]
    with tfckpt.load_checkpoint(path, fs=fs) as reader:
        assert reader.keys() == tfckpt.load_checkpoint(local).keys()
    assert tfckpt.list_variables(path, fs=fs) == tfckpt.list_variables(local)
    numpy_state = f"{memory_root}/numpy_state"
    assert tfckpt.latest_checkpoint(numpy_state[len("memory:/") :], fs=fs).endswith("ckpt-1")
    scalar = next(
        n
        for n, shape in tfckpt.list_variables(local)
        if shape == [] and tfckpt.load_checkpoint(local).get_dtype(n).name == "string"
    )
    view = tfckpt.load_checkpoint(prefix).get_bytes_view(scalar)
    assert bytes(view) == tfckpt.load_checkpoint(local).get_tensor(scalar)


def test_object_checkpoints_restore_from_a_url(tmp_path):
    """Checkpoint.restore, Checkpoint.read and load_tree read an object-based checkpoint
    written locally and copied to memory://, with the values that were saved."""
    need("fsspec")
    import fsspec

    arrays = tfckpt.NumpyState()
    weights = {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}
    checkpoint = tfckpt.Checkpoint(numpy_arrays=arrays, weights=weights)
    arrays.x = np.linspace(0, 1, 12).reshape(3, 4)
    checkpoint.save(str(tmp_path / "ckpt"))
    fs = fsspec.filesystem("memory")
    root = f"/tfckpt-{uuid.uuid4().hex}"
    put_tree(fs, tmp_path, root)
    try:
        fresh = tfckpt.Checkpoint(
            numpy_arrays=tfckpt.NumpyState(), weights={"w": np.zeros((2, 3), np.float32)}
        )
        fresh.restore(f"memory:/{root}").assert_consumed()
        assert np.array_equal(fresh.numpy_arrays.x, arrays.x)
        assert np.array_equal(fresh.weights["w"], weights["w"])
        again = tfckpt.Checkpoint(numpy_arrays=tfckpt.NumpyState())
        again.read(f"{root}/ckpt-1", fs=fs)
        assert np.array_equal(again.numpy_arrays.x, arrays.x)
        tree = tfckpt.load_tree(f"memory:/{root}")
        assert np.array_equal(tree["numpy_arrays"]["x"], arrays.x)
        assert np.array_equal(tree["weights"]["w"], weights["w"])
    finally:
        fs.rm(root, recursive=True)


def test_copy_false_on_a_remote_file_gives_owned_arrays(memory_root):
    """There is no memory map of a remote file: copy=False returns owned, writable
    arrays with the right values (documented), instead of failing."""
    local = tfckpt.load_checkpoint(FIXTURES / "dtypes/ckpt")
    remote = tfckpt.load_checkpoint(f"{memory_root}/dtypes/ckpt")
    value = remote.get_tensor("float32", copy=False)
    assert value.flags.writeable
    assert np.array_equal(value, local.get_tensor("float32"), equal_nan=True)
    views = remote.get_tensors(["float32", "int64"], copy=False)
    assert all(v.flags.writeable for v in views.values())


def test_file_urls_and_local_filesystems_keep_the_local_fast_paths(tmp_path):
    """file:// URLs and fsspec's LocalFileSystem are read as local files: memory maps
    (copy=False gives read-only views) and positional reads, not ranged requests."""
    need("fsspec")
    import fsspec

    prefix = tmp_path / "m"
    tfckpt.save_tensors(prefix, {"w": np.ones((4, 4), np.float32)})
    for reader in (
        tfckpt.load_checkpoint(f"file://{prefix}"),
        tfckpt.load_checkpoint(str(prefix), fs=fsspec.filesystem("file")),
    ):
        view = reader.get_tensor("w", copy=False)
        assert not view.flags.writeable  # a view of the memory map
        assert isinstance(open_source(f"{prefix}.index", fs=fsspec.filesystem("file")), LocalFile)


@pytest.mark.parametrize("cache", ["simplecache", "filecache"])
def test_cached_urls_read_through_fsspec_caching(memory_root, tmp_path, cache):
    """A chained URL (simplecache::memory://..., filecache::...) reads through fsspec's
    caching filesystem into a local copy, as the README documents."""
    url = f"{cache}::{memory_root}/dtypes/ckpt"
    options = {cache: {"cache_storage": str(tmp_path / "cache")}}
    reader = tfckpt.load_checkpoint(url, storage_options=options)
    local = tfckpt.load_checkpoint(FIXTURES / "dtypes/ckpt")
    assert _same(reader.get_tensor("float64"), local.get_tensor("float64"))
    assert any((tmp_path / "cache").iterdir())


def test_corrupt_and_truncated_remote_data_are_data_loss(tmp_path):
    """Checksums are verified as for local files: a flipped byte in a remote data file is
    DataLossError (checksum mismatch), a data file shorter than its entries say too."""
    need("fsspec")
    import fsspec

    prefix = tmp_path / "m"
    tfckpt.save_tensors(prefix, {"w": np.arange(100, dtype=np.float32)})
    fs = fsspec.filesystem("memory")
    root = f"/tfckpt-{uuid.uuid4().hex}"
    put_tree(fs, tmp_path, root)
    data_path = f"{root}/m.data-00000-of-00001"
    data = bytearray(fs.cat_file(data_path))
    data[10] ^= 0xFF
    fs.pipe_file(data_path, bytes(data))
    try:
        with pytest.raises(tfckpt.DataLossError, match="checksum mismatch"):
            tfckpt.load_checkpoint(f"memory:/{root}/m").get_tensor("w")
        fs.pipe_file(data_path, bytes(data[:50]))
        with pytest.raises(tfckpt.DataLossError, match="truncated"):
            tfckpt.load_checkpoint(f"memory:/{root}/m").get_tensor("w")
    finally:
        fs.rm(root, recursive=True)


def test_misused_arguments_are_invalid_argument(tmp_path):
    """storage_options with a local path, or with a filesystem object, are refused as
    InvalidArgumentError rather than ignored."""
    need("fsspec")
    import fsspec

    with pytest.raises(tfckpt.InvalidArgumentError, match="apply to URLs"):
        tfckpt.load_checkpoint(tmp_path / "m", storage_options={"anon": True})
    with pytest.raises(tfckpt.InvalidArgumentError, match="not both"):
        locate("x", fs=fsspec.filesystem("memory"), storage_options={"a": 1})
    with pytest.raises(tfckpt.UnsupportedError, match="Protocol not known"):
        tfckpt.load_checkpoint("nosuchprotocol://bucket/m")


def _run(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120
    )


def test_import_and_local_reads_never_import_fsspec():
    """``import tfckpt`` and reading a local checkpoint import neither fsspec nor any of
    its backends (they are optional extras, imported for URLs only)."""
    result = _run(
        f"""
import sys, tfckpt
reader = tfckpt.load_checkpoint({str(FIXTURES / "dtypes/ckpt")!r})
reader.get_tensor("float32"); reader.get_slice("float32")[1:3]
tfckpt.latest_checkpoint({str(FIXTURES / "object_based")!r})
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("fsspec", "gcsfs", "s3fs", "aiohttp"))
assert not bad, bad
print("ok")
"""
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize(
    ("url", "blocked", "extra"),
    [
        ("gs://bucket/model", "fsspec", "gcs"),
        ("s3://bucket/model", "fsspec", "s3"),
        ("https://example.com/model", "fsspec", "http"),
        ("gs://bucket/model", "gcsfs", "gcs"),
        ("s3://bucket/model", "s3fs", "s3"),
    ],
)
def test_a_missing_extra_is_a_clear_unsupported_error(url, blocked, extra):
    """Without fsspec, or without the protocol's backend, a URL raises UnsupportedError
    (a CheckpointError) saying which extra to install, not an ImportError."""
    result = _run(
        f"""
import sys
sys.modules[{blocked!r}] = None  # as if it were not installed
import tfckpt
try:
    tfckpt.load_checkpoint({url!r})
except tfckpt.UnsupportedError as exc:
    print(exc)
"""
    )
    assert result.returncode == 0, result.stderr
    assert f'pip install "tfckpt[{extra}]"' in result.stdout
