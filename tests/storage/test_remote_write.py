"""Writing checkpoints to object stores through RemoteCommit, against real servers on
127.0.0.1: moto's S3 server (s3fs), the GCS emulator (gcsfs), and fsspec's memory://.

The checkpoint's bytes come from the local writer (``tfckpt.save_tensors``) and are
streamed through the commit as BundleWriter streams them (pieces of 1 MiB, data shard then
index).  Writers go through a RecordingProxy, so the tests see every upload request and
its size: a file larger than the block goes up in block-sized parts, none of them the
whole file, and nothing is visible before publish.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np
import pytest

import tfckpt
from tests.conftest import REPO
from tests.storage.conftest import BUCKET, need_module, same_value
from tfckpt.checkpoint_state import read_state, write_state
from tfckpt.errors import (
    CheckpointNotFoundError,
    DataLossError,
    InvalidArgumentError,
    StorageError,
)
from tfckpt.storage.commit import LocalCommit
from tfckpt.storage.location import commit_for, locate

remote_commit = need_module("tfckpt.storage.remote_commit")  # (fsspec: skipped without it)

BLOCK = 5 << 20  # the smallest block S3 allows: the big tensor spans two
PIECE = 1 << 20  # how the files are written into the commit
DATA = ".data-00000-of-00001"
INDEX = ".index"


# -- checkpoints and targets ----------------------------------------------------------------


def _tensors(seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    tensors: dict[str, Any] = {"big": rng.standard_normal((1536, 1024), dtype=np.float32)}
    for i in range(6):  # 6 MiB above, 6 x 64 KiB here
        tensors[f"layer_{i}/kernel"] = rng.standard_normal((128, 128), dtype=np.float32)
    tensors["names"] = np.array([b"alpha", b"beta", f"seed {seed}".encode()], object)
    tensors["step"] = np.int64(seed)
    return tensors


class Local:
    """A checkpoint written by the local writer, whose files the tests stream."""

    def __init__(self, directory: Path, seed: int) -> None:
        self.prefix = directory / "model"
        self.tensors = _tensors(seed)
        tfckpt.save_tensors(self.prefix, self.tensors)

    def file(self, suffix: str) -> Path:
        return Path(f"{self.prefix}{suffix}")

    @property
    def data_size(self) -> int:
        return self.file(DATA).stat().st_size


@pytest.fixture(scope="module")
def ckpt_a(tmp_path_factory: pytest.TempPathFactory) -> Local:
    return Local(tmp_path_factory.mktemp("a"), 1)


@pytest.fixture(scope="module")
def ckpt_b(tmp_path_factory: pytest.TempPathFactory) -> Local:
    """The same names, shapes and layout as ``ckpt_a``, every value different."""
    return Local(tmp_path_factory.mktemp("b"), 2)


class Target:
    """Where a test writes: a URL prefix on one store, with its storage_options."""

    def __init__(self, kind: str, store: Any) -> None:
        self.kind = kind
        self.store = store  # a WriteStore, or None for memory://
        self.name = f"w-{uuid.uuid4().hex[:10]}"
        if store is None:
            self.url = f"memory://{BUCKET}/{self.name}/model"
            self.storage_options: dict[str, Any] = {}
        else:
            self.url = store.url(f"{self.name}/model")
            self.storage_options = store.storage_options

    def objects(self) -> list[str]:
        if self.store is not None:
            return list(self.store.objects(self.name))
        fs = need_module("fsspec").filesystem("memory")
        return sorted(p.rsplit("/", 1)[-1] for p in fs.find(f"/{BUCKET}/{self.name}"))

    def commit(self) -> Any:
        prefix, commit = commit_for(
            self.url, storage_options=self.storage_options, block_size=BLOCK
        )
        assert prefix == self.url
        assert isinstance(commit, remote_commit.RemoteCommit)
        return commit

    def load(self) -> dict[str, Any]:
        return tfckpt.load_tensors(self.url, storage_options=self.storage_options)

    def reader(self) -> Any:
        return tfckpt.load_checkpoint(self.url, storage_options=self.storage_options)


@pytest.fixture(params=["s3", "gcs", "memory"])
def target(request: pytest.FixtureRequest) -> Target:
    """A fresh prefix on each store in turn."""
    if request.param == "memory":
        need_module("fsspec")
        return Target("memory", None)
    store = request.getfixturevalue(f"{request.param}_write_server")
    store.reset()
    return Target(request.param, store)


@pytest.fixture
def store_target(write_store: Any) -> Target:
    """A fresh prefix on each server (S3, GCS) in turn, its recorder reset."""
    return Target(write_store.protocol, write_store)


def _write(commit: Any, local: Local, url: str) -> None:
    """Streams ``local``'s data file then its index into ``commit``, as BundleWriter does."""
    for suffix in (DATA, INDEX):
        out = commit.create(url + suffix)
        with open(local.file(suffix), "rb") as f:
            while piece := f.read(PIECE):
                out.write(piece)


def _save(target: Target, local: Local) -> None:
    commit = target.commit()
    try:
        _write(commit, local, target.url)
        commit.publish()
    except BaseException:
        commit.abort()
        raise


def _assert_values(got: dict[str, Any], want: Local) -> None:
    assert sorted(got) == sorted(want.tensors)
    for name, value in want.tensors.items():
        assert same_value(got[name], value), name


def _uploads(target: Target) -> list[Any]:
    """The recorded requests that carried bytes of the checkpoint's files."""
    assert target.store is not None
    return [e for e in target.store.recorder.log() if e.method in ("PUT", "POST") and e.sent]


# -- round trips ------------------------------------------------------------------------------


def test_a_streamed_checkpoint_reads_back_equal(target, ckpt_a):
    """A checkpoint whose data file (7.5 MiB, one tensor of 6 MiB) exceeds the 5 MiB block,
    streamed through RemoteCommit, reads back with load_checkpoint on the URL, every
    value bit for bit, and the store holds exactly its two objects (no temporaries)."""
    assert ckpt_a.data_size > BLOCK and ckpt_a.tensors["big"].nbytes > BLOCK
    _save(target, ckpt_a)
    assert target.objects() == ["model.data-00000-of-00001", "model.index"]
    _assert_values(target.load(), ckpt_a)
    reader = target.reader()
    assert same_value(reader.get_tensor("big"), ckpt_a.tensors["big"])


def test_adopted_local_files_are_uploaded_in_order(target, ckpt_a):
    """Commit.adopt: complete local files (a merge's parts) are streamed up by publish,
    the data shard before the index, and left in place locally."""
    commit = target.commit()
    commit.adopt(str(ckpt_a.file(DATA)), target.url + DATA)
    commit.adopt(str(ckpt_a.file(INDEX)), target.url + INDEX)
    commit.publish()
    assert ckpt_a.file(DATA).exists()
    _assert_values(target.load(), ckpt_a)


def test_uploads_stream_in_blocks_and_nothing_shows_before_publish(store_target, ckpt_a):
    """The data file goes up in parts of at most one block while it is written (the first
    block before the index is even created), never in one request of the whole file; the
    store lists nothing until publish; then the data file is finished before the index is
    uploaded."""
    target = store_target
    commit = target.commit()
    _write(commit, ckpt_a, target.url)
    sent_before_publish = sum(e.sent for e in _uploads(target))
    assert sent_before_publish >= BLOCK  # the first block went up while writing
    assert target.objects() == []  # ... and is not visible
    commit.publish()
    log = target.store.recorder.log()
    uploads = _uploads(target)
    assert max(e.sent for e in uploads) <= BLOCK + 4096  # (a GCS multipart adds its header)
    part = "partNumber=" if target.kind == "s3" else "upload_id="  # (not start, completion)
    data_parts = [e for e in uploads if ".data-" in e.target and part in e.target]
    assert len(data_parts) >= 2
    assert sum(e.sent for e in data_parts) == ckpt_a.data_size
    last_data = max(i for i, e in enumerate(log) if ".data-" in e.target)
    index_upload = log.index(uploads[-1])
    assert last_data < index_upload  # data finished, then the index (the commit point)
    assert not any(e.method == "DELETE" for e in log)  # a new prefix: nothing deleted


def test_the_state_file_is_written_and_read_on_the_store(target, ckpt_a):
    """write_state on a URL writes the state file in one upload (replacing it never
    deletes first) after the checkpoint; read_state and latest_checkpoint read it back."""
    _save(target, ckpt_a)
    directory = target.url.rsplit("/", 1)[0]
    options = target.storage_options
    write_state(directory, "model", ["model"], [1.0], storage_options=options)
    write_state(directory, "model", ["other", "model"], [0.5, 2.0], storage_options=options)
    state = read_state(directory, storage_options=options)
    assert state is not None
    assert state.model_checkpoint_path == target.url
    assert state.all_model_checkpoint_paths == [f"{directory}/other", target.url]
    assert state.all_model_checkpoint_timestamps == [0.5, 2.0]
    assert tfckpt.latest_checkpoint(directory, storage_options=options) == target.url
    assert "checkpoint" in target.objects()
    if target.store is not None:
        state_log = [e for e in target.store.recorder.log() if "checkpoint" in e.target]
        assert not any(e.method == "DELETE" for e in state_log)


def test_remove_objects_deletes_the_index_first(target, ckpt_a):
    """remove_objects deletes in the order given (the index first: from then on nobody
    finds the checkpoint) and skips objects that are gone already."""
    _save(target, ckpt_a)
    storage, prefix = locate(target.url, storage_options=target.storage_options)
    paths = [prefix + INDEX, prefix + DATA, prefix + ".data-00000-of-00002"]
    remote_commit.remove_objects(storage, paths)
    assert target.objects() == []
    with pytest.raises(CheckpointNotFoundError):
        target.reader()
    remote_commit.remove_objects(storage.fs, paths)  # all gone: nothing to do
    if target.store is not None:
        deletes = [e.target for e in target.store.recorder.log() if e.method == "DELETE"]
        assert INDEX in deletes[0] and DATA in deletes[1]


# -- failures ---------------------------------------------------------------------------------


def test_abort_leaves_no_object_and_no_unfinished_upload(target, ckpt_a):
    """Aborting after blocks were uploaded (and the index created) leaves nothing: no
    object, no reader finds a checkpoint, and on S3 no unfinished multipart upload."""
    commit = target.commit()
    _write(commit, ckpt_a, target.url)
    commit.abort()
    commit.abort()  # twice: nothing more
    assert target.objects() == []
    with pytest.raises(CheckpointNotFoundError):
        target.reader()
    if target.kind == "s3":
        assert target.store.direct.list_multipart_uploads(BUCKET) == []
    if target.kind == "gcs":  # the resumable session was cancelled
        log = target.store.recorder.log()
        assert any(e.method == "DELETE" and "upload_id=" in e.target for e in log)


_KILLED_WRITER = """
import json, sys, time
from tfckpt.storage.location import commit_for
url, options, block = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
prefix, commit = commit_for(url, storage_options=options, block_size=block)
out = commit.create(prefix + ".data-00000-of-00001")
out.write(bytes(2 * block + 100))  # two blocks uploaded, the rest staged
print("uploading", flush=True)
time.sleep(120)
"""


def test_a_writer_killed_mid_upload_leaves_no_checkpoint(store_target):
    """A writer process SIGKILLed after two blocks of its data file went up leaves no
    object at all (readers see no checkpoint): on S3 an unfinished multipart upload
    remains, invisible, which AbortMultipartUpload (or a lifecycle rule) removes."""
    target = store_target
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _KILLED_WRITER,
            target.url,
            json.dumps(target.storage_options),
            str(BLOCK),
        ],
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"uploading\n"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert sum(e.sent for e in _uploads(target)) >= 2 * BLOCK
    assert target.objects() == []
    with pytest.raises(CheckpointNotFoundError):
        target.reader()
    if target.kind == "s3":
        direct = target.store.direct
        left = [u for u in direct.list_multipart_uploads(BUCKET) if target.name in u["Key"]]
        assert len(left) == 1
        direct.abort_mpu(BUCKET, left[0]["Key"], left[0]["UploadId"])


_DENIED = {
    "s3": (
        b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
        b"<Message>Access Denied</Message></Error>",
        "application/xml",
    ),
    "gs": (b'{"error": {"code": 403, "message": "Forbidden"}}', "application/json"),
}


@pytest.mark.parametrize("large", [True, False], ids=["streamed", "single-request"])
def test_a_403_raises_storage_error_naming_the_url(store_target, ckpt_a, large):
    """A store refusing uploads with 403 -- at the first block of a streamed file, or at
    publish for a small one -- raises StorageError (EACCES, "access denied") naming the
    object's URL, and leaves no object."""
    target = store_target
    body, content_type = _DENIED[target.kind if target.kind == "s3" else "gs"]
    target.store.recorder.refuse(
        lambda method, _: method in ("PUT", "POST"),
        status=403,
        body=body,
        content_type=content_type,
    )
    commit = target.commit()
    name = target.url + (DATA if large else INDEX)
    with pytest.raises(StorageError) as caught:
        out = commit.create(name)
        out.write(bytes(BLOCK + 1 if large else 100))
        commit.publish()
    commit.abort()
    error = caught.value
    assert error.path == name and repr(name) in str(error)
    assert error.errno == errno.EACCES
    assert "access denied" in str(error)
    target.store.reset()
    assert target.objects() == []


def test_server_errors_raise_storage_error_naming_the_url(s3_write_server, ckpt_a):
    """S3 answering 500 to every upload: StorageError naming the URL after the retries
    (gcsfs retries 5xx itself for half a minute, so GCS is tested for recovery below)."""
    target = Target("s3", s3_write_server)
    s3_write_server.reset()
    s3_write_server.recorder.refuse(
        lambda method, _: method in ("PUT", "POST"),
        status=500,
        body=b"<Error><Code>InternalError</Code><Message>boom</Message></Error>",
    )
    commit = target.commit()
    with pytest.raises(StorageError) as caught:
        _write(commit, ckpt_a, target.url)
        commit.publish()
    commit.abort()
    assert caught.value.path == target.url + DATA
    assert "HTTP 500" in str(caught.value)
    assert caught.value.errno in (errno.EIO, errno.EREMOTEIO)  # (s3fs's for a 5xx)
    s3_write_server.reset()
    assert target.objects() == []


def test_a_transient_server_error_is_retried(store_target, ckpt_a):
    """One 500 answering the small file's upload is retried: the checkpoint is complete."""
    target = store_target

    def small_upload(method: str, path: str) -> bool:
        if target.kind == "s3":
            return method == "PUT" and path.endswith(INDEX)
        return method == "POST" and "uploadType=multipart" in path

    target.store.recorder.refuse(
        small_upload,
        status=500,
        times=1,
        body=b"<Error><Code>InternalError</Code><Message>boom</Message></Error>",
    )
    _save(target, ckpt_a)
    assert any(e.status == 500 for e in target.store.recorder.log())
    _assert_values(target.load(), ckpt_a)


def test_a_missing_bucket_raises_storage_error(s3_write_server):
    """Writing into a bucket that does not exist: StorageError (ENOENT) naming the URL."""
    url = f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/model.index"
    _, commit = commit_for(url, storage_options=s3_write_server.storage_options)
    commit.create(url).write(b"x")
    with pytest.raises(StorageError) as caught:
        commit.publish()
    assert caught.value.path == url and caught.value.errno == errno.ENOENT


# -- overwriting ------------------------------------------------------------------------------


def test_an_overwrite_never_pairs_new_data_with_the_old_index(target, ckpt_a, ckpt_b):
    """Overwriting A with B (same layout, other values): the old index is deleted before
    the new data is finished; readers that opened A before read A's values or fail with
    DataLossError, never B's values under A's index; a new reader reads B whole."""
    _save(target, ckpt_a)
    opened = target.reader()  # A's index
    started = target.reader()
    assert same_value(started.get_tensor("layer_0/kernel"), ckpt_a.tensors["layer_0/kernel"])
    if target.store is not None:
        target.store.reset()
    _save(target, ckpt_b)
    if target.store is not None:
        log = target.store.recorder.log()
        delete = next(i for i, e in enumerate(log) if e.method == "DELETE")
        assert unquote(log[delete].target).endswith(INDEX)
        last_data = max(i for i, e in enumerate(log) if ".data-" in e.target)
        assert delete < last_data  # the old index went before the new data appeared
    for reader in (opened, started):
        for name, old in ckpt_a.tensors.items():
            try:
                value = reader.get_tensor(name)
            except DataLossError:
                continue
            assert same_value(value, old), name
            assert not same_value(value, ckpt_b.tensors[name]), name
    _assert_values(target.load(), ckpt_b)


def test_a_reader_during_overwrites_sees_one_whole_checkpoint_or_none(target, ckpt_a, ckpt_b):
    """A reader loading the prefix in a loop while it is overwritten A, B, A, B gets, each
    time, every value of A, every value of B, or an error (no checkpoint, or a changed
    object): never a mixture."""
    _save(target, ckpt_a)
    stop = threading.Event()
    outcomes: list[str] = []
    failures: list[BaseException] = []

    def poll() -> None:
        while not stop.is_set():
            try:
                got = target.load()
            except (CheckpointNotFoundError, DataLossError) as exc:
                outcomes.append(type(exc).__name__)
                continue
            except BaseException as exc:  # anything else fails the test
                failures.append(exc)
                return
            for label, want in (("A", ckpt_a), ("B", ckpt_b)):
                if all(same_value(got[n], v) for n, v in want.tensors.items()):
                    outcomes.append(label)
                    break
            else:
                failures.append(AssertionError("a mixture of A and B"))
                return

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        for local in (ckpt_b, ckpt_a, ckpt_b):
            _save(target, local)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not failures, failures
    assert outcomes
    _assert_values(target.load(), ckpt_b)


# -- where writes go --------------------------------------------------------------------------


def test_local_targets_keep_the_local_commit(tmp_path):
    """Local paths, file:// URLs and fsspec's local filesystem get LocalCommit and the
    local path, exactly as before."""
    local = str(tmp_path / "model")
    for given, kwargs in (
        (local, {}),
        (tmp_path / "model", {}),
        ("file://" + local, {}),
        (local, {"fs": need_module("fsspec").filesystem("file")}),
    ):
        prefix, commit = commit_for(given, durable=True, **kwargs)
        assert prefix == local and isinstance(commit, LocalCommit) and commit.durable


def test_http_is_read_only(http):
    """An http(s):// URL cannot be written: StorageError (EROFS) at once."""
    with pytest.raises(StorageError) as caught:
        commit_for(http.url("run/model"))
    assert caught.value.errno == errno.EROFS


def test_chained_urls_and_bad_block_sizes_are_refused():
    """A chained URL cannot publish safely, and blocks below 5 MiB or not a multiple of
    256 KiB do not fit S3 and GCS: InvalidArgumentError."""
    with pytest.raises(InvalidArgumentError):
        commit_for("simplecache::memory://x/model")
    with pytest.raises(InvalidArgumentError):
        commit_for("memory://x/model", block_size=1 << 20)
    with pytest.raises(InvalidArgumentError):
        commit_for("memory://x/model", block_size=(5 << 20) + 1)


# -- BundleWriter / save_tensors on a store -----------------------------------------------


def test_save_tensors_to_a_store_sharded_reads_back(write_store: Any) -> None:
    """save_tensors writes straight to the store (no local file), sharded as locally: the
    same objects as a local save, values read back bit for bit from the URL."""
    tensors = {
        "big": np.arange(600_000, dtype=np.float32),
        "s": np.array([b"a", b"", b"xyz" * 50], dtype=object),
        "w": np.ones((3, 4), np.float64),
    }
    prefix = write_store.url(f"bw-{uuid.uuid4().hex}/ckpt")
    returned = tfckpt.save_tensors(
        prefix, tensors, max_shard_size=1 << 20, storage_options=write_store.storage_options
    )
    assert returned == prefix
    reader = tfckpt.load_checkpoint(prefix, storage_options=write_store.storage_options)
    for name, value in tensors.items():
        assert same_value(reader.get_tensor(name), value)
    under = prefix.split(f"{BUCKET}/", 1)[1].rsplit("/", 1)[0]
    names = write_store.objects(under)
    assert "ckpt.index" in names
    assert len([n for n in names if ".data-" in n]) > 1


def test_bundle_writer_failure_on_a_store_leaves_nothing(write_store: Any) -> None:
    """A value that cannot be written aborts the remote writer: no object is left and no
    reader finds a checkpoint."""
    prefix = write_store.url(f"bw-{uuid.uuid4().hex}/ckpt")
    with pytest.raises(InvalidArgumentError), tfckpt.bundle.BundleWriter(
        prefix, storage_options=write_store.storage_options
    ) as writer:
        writer.add("w", np.ones(1000, np.float32))
        writer.add("bad", object())
    under = prefix.split(f"{BUCKET}/", 1)[1].rsplit("/", 1)[0]
    assert write_store.objects(under) == []
    with pytest.raises(CheckpointNotFoundError):
        tfckpt.load_checkpoint(prefix, storage_options=write_store.storage_options)
