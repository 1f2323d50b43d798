"""Checkpoints on object stores, against real servers on 127.0.0.1: moto's S3 server
(through s3fs) and the GCS JSON-API emulator gcp-storage-emulator (through gcsfs).

Each test runs on both stores (the ``store`` fixture).  Checkpoints are uploaded to the
server directly; the reader goes through a counting proxy, so the tests see every request
and byte the server answered: one tensor of a 20 MiB checkpoint costs its own size plus
the index, ``load_tensors`` a few large requests, ``get_slice`` the selected rows only.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest

import tfckpt
from tests.conftest import FIXTURES
from tests.storage.conftest import need_module, same_value

remote = need_module("tfckpt.storage.remote")  # (fsspec: skipped without it)
HEADERS_PER_REQUEST = 2048  # generous: what one response's headers may add


def _data_gets(store):
    """The requests that downloaded bytes of a data file (not metadata look-ups: S3's are
    HEADs and listings, gcsfs's JSON GETs without ``alt=media``)."""
    out = []
    for line in store.proxy.requests:
        method, target, _ = line.split(" ")
        if method != "GET" or ".data-" not in target:
            continue
        if ("alt=media" in target) if store.protocol == "gs" else ("?" not in target):
            out.append(line)
    return out


def _upload(store, root, name):
    return store.upload(root, f"{name}-{uuid.uuid4().hex[:8]}")


def test_one_tensor_costs_its_own_bytes_plus_the_index(store, large):
    """Opening a 20 MiB checkpoint and reading one 256 KiB tensor transfers that tensor,
    the index and the responses' headers, in one ranged GET for the tensor."""
    url = _upload(store, large.directory, "one")
    store.proxy.reset()
    reader = tfckpt.load_checkpoint(f"{url}/model", storage_options=store.storage_options)
    value = reader.get_tensor("layer_03/kernel")
    assert np.array_equal(value, large.tensors["layer_03/kernel"])
    tensor_bytes = value.nbytes
    assert len(_data_gets(store)) == 1
    requests = len(store.proxy.requests)
    assert requests <= 6  # look-ups (gcsfs's are two calls) and the two GETs
    payload = tensor_bytes + large.index_size
    assert payload <= store.proxy.bytes_down <= payload + HEADERS_PER_REQUEST * requests
    assert store.proxy.bytes_down < large.data_size / 50


def test_load_tensors_uses_few_large_requests(store, large):
    """load_tensors of every tensor fetches the data file in a few ranged GETs of at most
    REQUEST_BYTES each (neighbours coalesced), about one transfer of the file."""
    url = _upload(store, large.directory, "all")
    store.proxy.reset()
    values = tfckpt.load_tensors(f"{url}/model", storage_options=store.storage_options)
    for name, want in large.tensors.items():
        assert np.array_equal(values[name], want), name
    gets = _data_gets(store)
    assert len(gets) <= -(-large.data_size // remote.REQUEST_BYTES) + 1  # (+1: the strings)
    total = large.data_size + large.index_size
    assert total <= store.proxy.bytes_down <= total + 64 << 10


def test_get_slice_fetches_only_the_selected_rows(store, large):
    """get_slice of every 1024th row of a 16 MiB tensor transfers about 16 KiB: four
    4 KiB ranged GETs."""
    url = _upload(store, large.directory, "slice")
    reader = tfckpt.load_checkpoint(f"{url}/model", storage_options=store.storage_options)
    store.proxy.reset()
    assert np.array_equal(reader.get_slice("big")[::1024], large.tensors["big"][::1024])
    assert len(_data_gets(store)) == 4
    assert 4 * 4096 <= store.proxy.bytes_down <= 4 * (4096 + HEADERS_PER_REQUEST)


def test_a_filesystem_object_reads_like_a_url(store, large):
    """An fsspec filesystem passed as ``fs`` with a bucket path reads the same values as
    the URL with storage_options."""
    url = _upload(store, large.directory, "fs")
    path = url.split("://", 1)[1]
    with tfckpt.load_checkpoint(path, fs=store.reader_fs()) as reader:
        assert np.array_equal(reader.get_tensor("big"), large.tensors["big"])


def test_directories_and_latest_checkpoint(store, large):
    """A directory URL is resolved through its state file (latest_checkpoint returns the
    prefix's URL); list_variables and load_variable take it too."""
    url = _upload(store, large.directory, "dir")
    options = store.storage_options
    assert tfckpt.latest_checkpoint(url, storage_options=options) == f"{url}/model"
    assert tfckpt.load_checkpoint(url, storage_options=options).prefix == f"{url}/model"
    assert tfckpt.list_variables(url, storage_options=options) == tfckpt.list_variables(
        large.prefix
    )
    step = tfckpt.load_variable(url, "step", storage_options=options)
    assert step == large.tensors["step"]


def test_v1_shards_are_found_by_listing(store):
    """A V1 checkpoint whose state file names its shards by a glob pattern
    (model.ckpt-?????-of-00002) is found by listing the bucket, and reads as locally."""
    url = _upload(store, FIXTURES / "v1_sharded", "v1")
    local = tfckpt.load_checkpoint(FIXTURES / "v1_sharded")
    with tfckpt.load_checkpoint(url, storage_options=store.storage_options) as reader:
        assert reader.format == "v1"
        for name in local:
            assert same_value(reader.get_tensor(name), local.get_tensor(name)), name


def test_a_missing_data_file_names_the_file_and_the_tensor(store, tmp_path):
    """With one of two data files missing, tensors of the other still read, and a tensor
    of the missing one raises CheckpointNotFoundError naming the file and the tensor."""
    for name in ("ckpt.index", "ckpt.data-00000-of-00002"):
        (tmp_path / name).write_bytes((FIXTURES / "sharded" / name).read_bytes())
    url = _upload(store, tmp_path, "missing")
    reader = tfckpt.load_checkpoint(f"{url}/ckpt", storage_options=store.storage_options)
    local = tfckpt.load_checkpoint(FIXTURES / "sharded/ckpt")
    assert np.array_equal(reader.get_tensor("dense/kernel"), local.get_tensor("dense/kernel"))
    with pytest.raises(tfckpt.CheckpointNotFoundError) as info:
        reader.get_tensor("dev1_counts")
    assert info.value.path == f"{url}/ckpt.data-00001-of-00002"
    assert info.value.tensor == "dev1_counts"


def test_a_checkpoint_rewritten_after_its_index_was_read_is_detected(store, large, large_other):
    """A checkpoint overwritten at the same place after the reader read its index (same
    names and offsets, other values) never yields the new bytes under the old index: the
    whole-tensor read raises DataLossError saying the object changed since it was opened
    (S3: the IfMatch pin fails; the GCS emulator ignores the generation pin, unlike GCS,
    and the checksum catches it, naming the generations)."""
    url = _upload(store, large.directory, "rewrite")
    under = url.split(f"{store.protocol}://", 1)[1]
    reader = tfckpt.load_checkpoint(f"{url}/model", storage_options=store.storage_options)
    for name in ("model.index", "model.data-00000-of-00001"):
        store.direct.pipe_file(f"{under}/{name}", (large_other.directory / name).read_bytes())
    with pytest.raises(tfckpt.DataLossError, match="changed") as info:
        reader.get_tensor("layer_01/kernel")
    assert "ETag" in str(info.value) or "generation" in str(info.value)


def test_partial_reads_of_a_rewritten_s3_object_fail(s3_server, large, large_other):
    """On S3 partial reads (which no checksum covers) are pinned too: get_slice of an
    object replaced since the reader opened raises DataLossError (412 on IfMatch)."""
    s3_server.proxy.reset()
    url = _upload(s3_server, large.directory, "rewrite-slice")
    under = url.split("s3://", 1)[1]
    reader = tfckpt.load_checkpoint(f"{url}/model", storage_options=s3_server.storage_options)
    name = "model.data-00000-of-00001"
    s3_server.direct.pipe_file(f"{under}/{name}", (large_other.directory / name).read_bytes())
    with pytest.raises(tfckpt.DataLossError, match="changed while it was read"):
        reader.get_slice("big")[0:4]
