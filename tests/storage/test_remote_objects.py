"""The object layer on object stores: ``Checkpoint.save/write``, ``CheckpointManager`` and
``merge_parts`` writing to fsspec URLs (or ``fs=``), against real servers on 127.0.0.1 --
moto's S3 server (s3fs), the GCS emulator (gcsfs) -- and fsspec's memory://.

Writers talk to the servers through the RecordingProxy of tests/storage/conftest.py, so the
tests see every request in order (which object is uploaded or deleted when) and can make
the server refuse requests (a real 403 answered over HTTP, not a mock of fsspec).  Every
checkpoint is small: each test takes well under a second of I/O.
"""

from __future__ import annotations

import errno
import subprocess
import sys
import uuid
import warnings
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote

import numpy as np
import pytest

import tfckpt
from tests.conftest import FIXTURES, REPO
from tests.storage.conftest import BUCKET, need_module, same_value
from tfckpt.bundle.sharding import MaxShardSizePolicy
from tfckpt.checkpoint_state import read_state, write_state
from tfckpt.compat.options import CheckpointOptions
from tfckpt.errors import CheckpointError, InvalidArgumentError, StorageError

need_module("tfckpt.storage.remote_commit")  # (fsspec: the module is skipped without it)

INDEX = ".index"
DATA = ".data-00000-of-00001"
_DENIED = {
    "s3": (
        b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
        b"<Message>Access Denied</Message></Error>",
        "application/xml",
    ),
    "gs": (b'{"error": {"code": 403, "message": "Forbidden"}}', "application/json"),
}


# -- where the tests write -------------------------------------------------------------------


class Place:
    """A fresh directory on one store: its URL, the storage_options to reach it, and a way
    to look at its objects behind the writer's back."""

    def __init__(self, kind: str, store: Any) -> None:
        self.kind = kind
        self.store = store  # a WriteStore (S3, GCS), or None for memory://
        self.name = f"o-{uuid.uuid4().hex[:10]}"
        if store is None:
            self.dir = f"memory://{BUCKET}/{self.name}"
            self.storage_options: dict[str, Any] = {}
        else:
            self.dir = store.url(self.name)
            self.storage_options = store.storage_options

    def url(self, name: str) -> str:
        return f"{self.dir}/{name}"

    def objects(self) -> list[str]:
        """The names (below the directory) of the objects there now."""
        if self.store is not None:
            self.store.direct.invalidate_cache()
            found = self.store.direct.find(f"{BUCKET}/{self.name}/")
        else:
            found = need_module("fsspec").filesystem("memory").find(f"/{BUCKET}/{self.name}/")
        # (a sibling directory "<name>-up" shares the prefix: only what is below "<name>/")
        home = f"{BUCKET}/{self.name}/"
        return sorted(p.split(home, 1)[1] for p in found if home in p)

    def read(self, name: str) -> bytes:
        """The bytes of the object ``name`` below the directory."""
        if self.store is not None:
            return bytes(self.store.direct.cat_file(f"{BUCKET}/{self.name}/{name}"))
        fs = need_module("fsspec").filesystem("memory")
        return bytes(fs.cat_file(f"/{BUCKET}/{self.name}/{name}"))

    def log(self) -> list[Any]:
        """Every request the writers sent, in order (servers only)."""
        return self.store.recorder.log() if self.store is not None else []

    def refuse_uploads(self, *, after: int = 0) -> None:
        """From the ``after + 1``-th upload request (PUT or POST) on, the server answers
        403 Forbidden to every upload."""
        assert self.store is not None
        body, content_type = _DENIED[self.store.protocol]
        seen = [0]

        def upload(method: str, _target: str) -> bool:
            if method not in ("PUT", "POST"):
                return False
            seen[0] += 1
            return seen[0] > after

        self.store.recorder.refuse(upload, status=403, body=body, content_type=content_type)


@pytest.fixture(params=["s3", "gcs", "memory"])
def place(request: pytest.FixtureRequest) -> Place:
    """A fresh directory on each store in turn (S3, GCS, memory://)."""
    if request.param == "memory":
        need_module("fsspec")
        return Place("memory", None)
    store = request.getfixturevalue(f"{request.param}_write_server")
    store.reset()
    return Place(request.param, store)


@pytest.fixture
def server_place(write_store: Any) -> Place:
    """A fresh directory on each server (S3, GCS) in turn, its recorder reset."""
    return Place(write_store.protocol, write_store)


def _model(seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "dense": {
            "kernel": rng.standard_normal((64, 32)).astype(np.float32),
            "bias": rng.standard_normal(32).astype(np.float32),
        },
        "embedding": rng.standard_normal((300, 16)).astype(np.float16),
        "steps": [np.array(seed, np.int64), np.arange(5, dtype=np.int32) * seed],
    }


def _checkpoint(seed: int) -> tuple[tfckpt.Checkpoint, dict[str, Any]]:
    model = _model(seed)
    return tfckpt.Checkpoint(model=model), model


def _same_model(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert same_value(got["dense"]["kernel"], want["dense"]["kernel"])
    assert same_value(got["dense"]["bias"], want["dense"]["bias"])
    assert same_value(got["embedding"], want["embedding"])
    for a, b in zip(got["steps"], want["steps"]):
        assert same_value(a, b)


def _zeroed(seed: int) -> tuple[tfckpt.Checkpoint, dict[str, Any]]:
    """A Checkpoint of the same structure as ``_checkpoint(seed)``, every value zero."""
    model = _model(seed)
    for array in (model["dense"]["kernel"], model["dense"]["bias"], model["embedding"]):
        array[...] = 0
    for array in model["steps"]:
        array[...] = 0
    return tfckpt.Checkpoint(model=model), model


def _targets(log: list[Any], method: str) -> list[str]:
    return [unquote(e.target) for e in log if e.method == method]


def _position(log: list[Any], predicate: Any) -> int:
    """The index in ``log`` of the last request that ``predicate(method, target)`` selects."""
    found = [i for i, e in enumerate(log) if predicate(e.method, unquote(e.target))]
    assert found, "no such request"
    return found[-1]


# -- Checkpoint.save / write -----------------------------------------------------------------


def test_save_and_restore_round_trip(place):
    """Checkpoint.save to a URL writes <prefix>-1 and -2 (data, index, state file) on the
    store; latest_checkpoint on the directory URL names the newest; Checkpoint.restore of
    that URL (and of the directory) and load_checkpoint read every value back bit for bit,
    with the save counter."""
    checkpoint, model = _checkpoint(1)
    options = place.storage_options
    first = checkpoint.save(place.url("model"), storage_options=options)
    assert first == place.url("model-1")
    second = checkpoint.save(place.url("model"), storage_options=options)
    assert second == place.url("model-2") and checkpoint.save_counter == 2
    assert place.objects() == [
        "checkpoint",
        "model-1.data-00000-of-00001",
        "model-1.index",
        "model-2.data-00000-of-00001",
        "model-2.index",
    ]
    assert tfckpt.latest_checkpoint(place.dir, storage_options=options) == second
    for source in (second, place.dir):
        restored, got = _zeroed(1)
        restored.restore(source, storage_options=options).assert_consumed()
        _same_model(got, model)
        assert restored.save_counter == 2
    with tfckpt.load_checkpoint(place.dir, storage_options=options) as reader:
        assert same_value(
            reader.get_tensor("model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE"),
            model["dense"]["kernel"],
        )


def test_write_and_read_round_trip_with_a_filesystem_object(place):
    """Checkpoint.write with ``fs=`` (an fsspec filesystem) and a path on it writes exactly
    that prefix (no counter, no state file); read with the same fs restores every value."""
    checkpoint, model = _checkpoint(2)
    fsspec = need_module("fsspec")
    if place.store is None:
        fs, path = fsspec.filesystem("memory"), f"/{BUCKET}/{place.name}/exact"
    else:
        fs = fsspec.filesystem(place.store.protocol, **place.storage_options)
        path = f"{BUCKET}/{place.name}/exact"
    assert checkpoint.write(path, fs=fs) == path
    assert place.objects() == ["exact.data-00000-of-00001", "exact.index"]
    restored, got = _zeroed(2)
    restored.read(path, fs=fs).assert_consumed()
    _same_model(got, model)


@pytest.mark.parametrize("max_shard_size", [None, 4096], ids=["one-shard", "sharded"])
def test_objects_are_byte_identical_to_a_local_save(place, tmp_path, max_shard_size):
    """The same Checkpoint saved locally and to the store gives the same objects, byte for
    byte: every data shard, the index and the state file (sharded with MaxShardSizePolicy
    too: the same shards as locally)."""
    checkpoint, _ = _checkpoint(3)
    options = (
        None
        if max_shard_size is None
        else SimpleNamespace(experimental_sharding_callback=MaxShardSizePolicy(max_shard_size))
    )
    local = tmp_path / "local"
    local.mkdir()
    checkpoint.save(str(local / "model"), options)
    checkpoint._counter()[()] = 0  # (the same number again)
    checkpoint.save(place.url("model"), options, storage_options=place.storage_options)
    names = sorted(p.name for p in local.iterdir())
    assert place.objects() == names
    assert len([n for n in names if ".data-" in n]) == (1 if max_shard_size is None else 5)
    for name in names:
        assert place.read(name) == (local / name).read_bytes(), name


def test_a_refused_save_keeps_the_previous_checkpoint_latest(server_place):
    """A store answering 403 to the uploads of the third save: save raises StorageError
    (a CheckpointError, EACCES) naming an object of that checkpoint's prefix; the save
    counter stays 2, nothing of model-3 is on the store, and latest_checkpoint still names
    model-2, which restores.  Once the store accepts again, the next save is model-3."""
    place = server_place
    checkpoint, model = _checkpoint(4)
    options = place.storage_options
    checkpoint.save(place.url("model"), storage_options=options)
    checkpoint.save(place.url("model"), storage_options=options)
    before = place.objects()
    place.refuse_uploads()
    with pytest.raises(CheckpointError) as caught:
        checkpoint.save(place.url("model"), storage_options=options)
    error = caught.value
    assert isinstance(error, StorageError) and error.errno == errno.EACCES
    assert error.path is not None and error.path.startswith(place.url("model-3"))
    assert repr(error.path) in str(error)
    assert checkpoint.save_counter == 2
    place.store.reset()
    assert place.objects() == before
    assert tfckpt.latest_checkpoint(place.dir, storage_options=options) == place.url("model-2")
    restored, got = _zeroed(4)
    restored.restore(place.dir, storage_options=options).assert_consumed()
    _same_model(got, model)
    assert checkpoint.save(place.url("model"), storage_options=options) == place.url("model-3")


def test_a_refused_state_file_deletes_the_unrecorded_checkpoint(server_place):
    """The data and index of the third save are uploaded, the state file's upload is
    refused (403): save raises StorageError naming the state file; the checkpoint it could
    not record is deleted again (index first), so the store holds what it held before and
    latest_checkpoint still names model-2."""
    place = server_place
    checkpoint, _ = _checkpoint(5)
    options = place.storage_options
    checkpoint.save(place.url("model"), storage_options=options)
    checkpoint.save(place.url("model"), storage_options=options)
    before = place.objects()
    place.store.reset()
    place.refuse_uploads(after=2)  # the data object and the index go up, the state file not
    with pytest.raises(StorageError) as caught:
        checkpoint.save(place.url("model"), storage_options=options)
    assert caught.value.path == place.url("checkpoint")
    assert caught.value.errno == errno.EACCES
    log = place.log()
    deletes = _targets(log, "DELETE")
    assert deletes[0].endswith("model-3.index") and deletes[1].endswith("model-3" + DATA)
    place.store.reset()
    assert place.objects() == before
    assert tfckpt.latest_checkpoint(place.dir, storage_options=options) == place.url("model-2")
    assert checkpoint.save_counter == 2


def test_an_asynchronous_save_completes_on_sync(place):
    """Checkpoint.save(asynchronous=True) to a URL returns the path at once; after sync()
    the checkpoint and the state file are on the store, and it restores the values as they
    were at the call (a later change to an array is not saved)."""
    checkpoint, model = _checkpoint(6)
    expected = {"kernel": model["dense"]["kernel"].copy()}
    options = place.storage_options
    path = checkpoint.save(place.url("model"), asynchronous=True, storage_options=options)
    assert path == place.url("model-1")
    model["dense"]["kernel"][...] = -1.0  # after the call: not in the checkpoint
    checkpoint.sync()
    assert checkpoint.save_counter == 1
    assert tfckpt.latest_checkpoint(place.dir, storage_options=options) == path
    with tfckpt.load_checkpoint(path, storage_options=options) as reader:
        got = reader.get_tensor("model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE")
    assert same_value(got, expected["kernel"])
    written = checkpoint.write(
        place.url("exact"), CheckpointOptions(enable_async=True), storage_options=options
    )
    checkpoint.sync()
    restored, got_model = _zeroed(6)
    restored.restore(written, storage_options=options).assert_consumed()  # (read: TF too
    # leaves the save_counter written by write() unresolved)
    _same_model(got_model, model)


def test_an_asynchronous_save_refused_raises_on_sync(server_place):
    """An asynchronous save whose uploads are refused (403): the call returns, sync()
    raises the StorageError naming the object, latest_checkpoint still names the previous
    checkpoint and the counter is unchanged."""
    place = server_place
    checkpoint, _ = _checkpoint(7)
    options = place.storage_options
    checkpoint.save(place.url("model"), storage_options=options)
    place.refuse_uploads()
    checkpoint.save(place.url("model"), asynchronous=True, storage_options=options)
    with pytest.raises(StorageError) as caught:
        checkpoint.sync()
    assert caught.value.path is not None and caught.value.path.startswith(place.url("model-2"))
    place.store.reset()
    assert checkpoint.save_counter == 1
    assert tfckpt.latest_checkpoint(place.dir, storage_options=options) == place.url("model-1")


def test_bad_targets_raise_at_the_call():
    """Both fs= and storage_options, or storage_options with a local path, raise
    InvalidArgumentError at the call, asynchronously too (nothing is started)."""
    fsspec = need_module("fsspec")
    checkpoint, _ = _checkpoint(8)
    with pytest.raises(InvalidArgumentError):
        checkpoint.save(
            "memory://x/model",
            asynchronous=True,
            fs=fsspec.filesystem("memory"),
            storage_options={"a": 1},
        )
    with pytest.raises(InvalidArgumentError):
        checkpoint.write("/tmp/model", storage_options={"anon": True})
    with pytest.raises(InvalidArgumentError):
        tfckpt.CheckpointManager(checkpoint, "/tmp/run", storage_options={"anon": True})
    assert checkpoint.save_counter == 0


# -- CheckpointManager -----------------------------------------------------------------------


def test_manager_keeps_max_to_keep_on_the_store(place):
    """CheckpointManager(max_to_keep=2) on a URL, four saves: the store holds exactly
    ckpt-3 and ckpt-4 (index and data) and the state file; latest_checkpoint (the manager's
    and tfckpt.latest_checkpoint) names ckpt-4 and checkpoints lists both.  On the servers
    the log shows each save's order: the data object, then the index, then the state file,
    then the old checkpoint deleted, its index before its data."""
    checkpoint, _ = _checkpoint(9)
    options = place.storage_options
    manager = tfckpt.CheckpointManager(
        checkpoint, place.dir, max_to_keep=2, storage_options=options
    )
    assert manager.latest_checkpoint is None
    for number in range(1, 5):
        assert manager.save() == place.url(f"ckpt-{number}")
    assert place.objects() == [
        "checkpoint",
        "ckpt-3.data-00000-of-00001",
        "ckpt-3.index",
        "ckpt-4.data-00000-of-00001",
        "ckpt-4.index",
    ]
    assert manager.latest_checkpoint == place.url("ckpt-4")
    assert manager.checkpoints == [place.url("ckpt-3"), place.url("ckpt-4")]
    assert tfckpt.latest_checkpoint(place.dir, storage_options=options) == place.url("ckpt-4")
    state = read_state(place.dir, storage_options=options)
    assert state is not None
    assert state.all_model_checkpoint_paths == [place.url("ckpt-3"), place.url("ckpt-4")]
    assert b'"ckpt-4"' in place.read("checkpoint")  # relative, as TensorFlow's manager
    if place.store is None:
        return
    log = place.log()
    uploaded = [e for e in log if e.method in ("PUT", "POST")]
    assert uploaded
    previous = -1
    for number in (3, 4):  # (the last two saves, each deleting ckpt-<number - 2>)
        deleted_index = _position(
            log, lambda m, t, n=number: m == "DELETE" and t.endswith(f"ckpt-{n - 2}.index")
        )
        deleted_data = _position(
            log, lambda m, t, n=number: m == "DELETE" and t.endswith(f"ckpt-{n - 2}{DATA}")
        )
        # The save's data object, index and state file were uploaded before it deleted
        # anything (GCS names a multipart upload's object in its body, so count them).
        uploads = [e for e in log[previous + 1 : deleted_index] if e.method in ("PUT", "POST")]
        assert len(uploads) >= 3
        assert deleted_index < deleted_data
        previous = deleted_data


def test_the_state_file_is_written_only_after_the_index(server_place):
    """On the servers, within one manager save, the state file's upload comes after the
    upload that completes the index (S3 names the object in the URL; on GCS the uploads
    come in the order data, index, state file, each one request)."""
    place = server_place
    checkpoint, _ = _checkpoint(10)
    manager = tfckpt.CheckpointManager(
        checkpoint, place.dir, max_to_keep=3, storage_options=place.storage_options
    )
    place.store.reset()
    manager.save()
    uploads = [unquote(e.target) for e in place.log() if e.method in ("PUT", "POST")]
    if place.kind == "s3":
        assert [t.rsplit("/", 1)[1] for t in uploads] == [
            "ckpt-1.data-00000-of-00001",
            "ckpt-1.index",
            "checkpoint",
        ]
    else:
        assert len(uploads) == 3  # data, index, state file: one request each


def test_manager_restore_or_initialize_and_a_second_manager(place):
    """A second manager on the same URL reads the state file: it names ckpt-2, lists the
    kept checkpoints, restore_or_initialize restores the values (no init_fn call), and its
    next save continues the numbering and pruning on the store."""
    checkpoint, model = _checkpoint(11)
    options = place.storage_options
    first = tfckpt.CheckpointManager(checkpoint, place.dir, max_to_keep=2, storage_options=options)
    first.save()
    first.save()
    restored, got = _zeroed(11)
    called = []
    second = tfckpt.CheckpointManager(
        restored,
        place.dir + "/",  # (a trailing slash is the same directory)
        max_to_keep=2,
        init_fn=lambda: called.append(1),
        storage_options=options,
    )
    assert second.latest_checkpoint == place.url("ckpt-2")
    assert second.checkpoints == [place.url("ckpt-1"), place.url("ckpt-2")]
    assert second.restore_or_initialize() == place.url("ckpt-2")
    assert not called
    _same_model(got, model)
    assert restored.save_counter == 2
    assert second.save() == place.url("ckpt-3")
    assert [n for n in place.objects() if n.endswith(INDEX)] == ["ckpt-2.index", "ckpt-3.index"]
    empty = tfckpt.CheckpointManager(
        tfckpt.Checkpoint(),
        place.url("nothing"),
        init_fn=lambda: called.append(2),
        storage_options=options,
    )
    assert empty.restore_or_initialize() is None and called == [2]


def test_a_refused_manager_save_names_the_previous_checkpoint(server_place):
    """A manager save refused by the store (403): StorageError naming an object of ckpt-3;
    latest_checkpoint and checkpoints still name ckpt-1 and ckpt-2 (the manager's and the
    state file's), nothing was deleted, nothing of ckpt-3 is left; the next save works."""
    place = server_place
    checkpoint, _ = _checkpoint(12)
    options = place.storage_options
    manager = tfckpt.CheckpointManager(
        checkpoint, place.dir, max_to_keep=2, storage_options=options
    )
    manager.save()
    manager.save()
    before = place.objects()
    place.refuse_uploads()
    with pytest.raises(StorageError) as caught:
        manager.save()
    assert caught.value.path is not None and caught.value.path.startswith(place.url("ckpt-3"))
    place.store.reset()
    assert place.objects() == before
    assert manager.latest_checkpoint == place.url("ckpt-2")
    assert manager.checkpoints == [place.url("ckpt-1"), place.url("ckpt-2")]
    assert tfckpt.latest_checkpoint(place.dir, storage_options=options) == place.url("ckpt-2")
    assert checkpoint.save_counter == 2
    assert manager.save() == place.url("ckpt-3")
    assert [n for n in place.objects() if n.endswith(INDEX)] == ["ckpt-2.index", "ckpt-3.index"]


def test_manager_asynchronous_saves_on_the_store(place):
    """Asynchronous manager saves to a URL: after sync() the store holds the last
    max_to_keep checkpoints and the state file, and latest_checkpoint names the newest."""
    checkpoint, _ = _checkpoint(13)
    options = place.storage_options
    manager = tfckpt.CheckpointManager(
        checkpoint, place.dir, max_to_keep=2, storage_options=options
    )
    for _ in range(3):
        manager.save(asynchronous=True)
    manager.sync()
    assert manager.latest_checkpoint == place.url("ckpt-3")
    assert [n for n in place.objects() if n.endswith(INDEX)] == ["ckpt-2.index", "ckpt-3.index"]
    assert tfckpt.latest_checkpoint(place.dir, storage_options=options) == place.url("ckpt-3")


def test_manager_never_deletes_outside_its_directory(place):
    """A state file naming checkpoints outside the manager's directory (``../`` and an
    absolute URL elsewhere in the bucket): pruning warns and leaves them; only the
    checkpoints inside the directory are deleted."""
    options = place.storage_options
    outside = f"{place.dir}-elsewhere/ckpt-0"
    # (saved under its normal name: the GCS emulator cannot store a key holding "../")
    up = f"{place.dir}-up/ckpt-0"
    for prefix in (outside, up):
        tfckpt.save_tensors(prefix, {"x": np.ones(3, np.float32)}, storage_options=options)
    write_state(
        place.dir,
        outside,
        [outside, f"../{place.name}-up/ckpt-0"],
        [1.0, 2.0],
        0.0,
        storage_options=options,
    )
    checkpoint, _ = _checkpoint(14)
    manager = tfckpt.CheckpointManager(
        checkpoint, place.dir, max_to_keep=1, storage_options=options
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        manager.save()
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    # (the "../" entry names the key "<dir>/../<name>-up/ckpt-0" literally, as stores do not
    # resolve "..": no checkpoint is there, so the manager drops it without a warning)
    assert messages and all("outside the manager's directory" in m for m in messages)
    assert any(outside in m for m in messages)
    for prefix in (outside, up):
        with tfckpt.load_checkpoint(prefix, storage_options=options) as reader:
            assert same_value(reader.get_tensor("x"), np.ones(3, np.float32))
    manager.save()
    assert [n for n in place.objects() if n.endswith(INDEX)] == ["ckpt-2.index"]


# -- merge_parts ---------------------------------------------------------------------------


def _part_tensors(shard: int) -> dict[str, Any]:
    rng = np.random.default_rng(100 + shard)
    return {
        f"host{shard}/w": rng.standard_normal((128, 64)).astype(np.float32),
        f"host{shard}/names": np.array([b"a", f"host {shard}".encode()], object),
    }


def test_merge_parts_on_the_store(place, tmp_path):
    """Two writers save their parts to part_prefix(url, i, 2); merge_parts on the URL
    gives one checkpoint whose objects are byte-identical to the same merge done locally,
    reading back every value, with nothing left under <prefix>_temp/.  On the servers the
    data objects are copied by the store: the bytes the merger sends are far fewer than the
    data's (only the merged index is uploaded)."""
    options = place.storage_options
    prefix = place.url("ckpt")
    local = str(tmp_path / "ckpt")
    tensors: dict[str, Any] = {}
    for shard in range(2):
        part = _part_tensors(shard)
        tensors.update(part)
        tfckpt.save_tensors(tfckpt.part_prefix(prefix, shard, 2), part, storage_options=options)
        tfckpt.save_tensors(tfckpt.part_prefix(local, shard, 2), part)
    assert tfckpt.part_prefix(prefix, 1, 2) == f"{prefix}_temp/part-00001-of-00002"
    if place.store is not None:
        place.store.reset()
    assert tfckpt.merge_parts(prefix, 2, storage_options=options) == prefix
    tfckpt.merge_parts(local, 2)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["ckpt.data-00000-of-00002", "ckpt.data-00001-of-00002", "ckpt.index"]
    assert place.objects() == names
    for name in names:
        assert place.read(name) == (tmp_path / name).read_bytes(), name
    got = tfckpt.load_tensors(prefix, storage_options=options)
    assert sorted(got) == sorted(tensors)
    for name, value in tensors.items():
        assert same_value(got[name], value), name
    if place.store is not None:
        data_bytes = sum((tmp_path / n).stat().st_size for n in names if ".data-" in n)
        sent = sum(e.sent for e in place.log())
        assert sent < (tmp_path / "ckpt.index").stat().st_size + 8192 < data_bytes
        deletes = _targets(place.log(), "DELETE")
        first_data = min(i for i, t in enumerate(deletes) if ".data-" in t)
        assert all(t.endswith(INDEX) for t in deletes[:first_data])  # indexes first


def test_merge_local_parts_into_the_store(place, tmp_path):
    """Parts written on local disk merge into a checkpoint on the store (their data files
    uploaded); the local parts are gone afterwards, as a local merge moves them."""
    options = place.storage_options
    parts = [str(tmp_path / f"part{i}") for i in range(2)]
    tensors: dict[str, Any] = {}
    for shard, part in enumerate(parts):
        tensors.update(_part_tensors(shard))
        tfckpt.save_tensors(part, _part_tensors(shard))
    merged = tfckpt.merge_bundles(parts, place.url("ckpt"), storage_options=options)
    assert merged == place.url("ckpt")
    got = tfckpt.load_tensors(merged, storage_options=options)
    for name, value in tensors.items():
        assert same_value(got[name], value), name
    assert list(tmp_path.iterdir()) == []


def test_merge_refuses_parts_on_another_store(tmp_path):
    """A bundle on another store than the merged checkpoint (memory:// into a local
    directory) is refused with InvalidArgumentError, nothing moved."""
    need_module("fsspec")
    part = f"memory://{BUCKET}/m-{uuid.uuid4().hex[:8]}/part"
    tfckpt.save_tensors(part, {"x": np.ones(2, np.float32)})
    with pytest.raises(InvalidArgumentError):
        tfckpt.merge_bundles([part], str(tmp_path / "merged"))
    assert tfckpt.load_tensors(part)["x"].tolist() == [1.0, 1.0]


# -- imports ---------------------------------------------------------------------------------


def test_local_object_saves_never_import_fsspec(tmp_path):
    """Checkpoint.save/write, CheckpointManager and merge_parts on local paths import
    neither fsspec nor its backends (they are for URLs only)."""
    script = f"""
import sys, os
import numpy as np
import tfckpt
d = {str(tmp_path)!r}
c = tfckpt.Checkpoint(w=np.ones(3, np.float32))
c.save(os.path.join(d, "a", "model")); c.write(os.path.join(d, "b", "exact"))
m = tfckpt.CheckpointManager(c, os.path.join(d, "m"), max_to_keep=1)
m.save(); m.save(); m.restore_or_initialize()
for i in range(2):
    tfckpt.save_tensors(tfckpt.part_prefix(os.path.join(d, "p"), i, 2), {{f"x{{i}}": np.ones(2)}})
tfckpt.merge_parts(os.path.join(d, "p"), 2)
tfckpt.latest_checkpoint({str(FIXTURES / "object_based")!r})
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("fsspec", "gcsfs", "s3fs", "aiohttp"))
assert not bad, bad
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
