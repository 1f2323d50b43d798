"""Checkpoints over HTTP, against a real server on 127.0.0.1 that supports Range requests
(tests/storage/servers.py) and logs every request it answers.

They prove what a read costs (one tensor of a 20 MiB checkpoint: its own bytes plus the
index; ``load_tensors``: a few large requests; ``get_slice``: the selected rows only) and
how failures surface: 500s and dropped connections retried, then a clear CheckpointError;
403 reported at once; files replaced between the index and the data reads detected (the
If-Match pin, or the checksums); a missing data file; a server that ignores Range.
"""

from __future__ import annotations

import numpy as np
import pytest

import tfckpt
from tests.conftest import FIXTURES
from tests.storage.conftest import need_module, same_value

remote = need_module("tfckpt.storage.remote")  # (fsspec: skipped without it)
DATA = "model.data-00000-of-00001"


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    """Retries back off for milliseconds here, not the library's fractions of a second."""
    monkeypatch.setattr(remote, "BACKOFF_SECONDS", 0.001)


@pytest.fixture
def served(http, large):
    """``large`` served at /large/ (prefix /large/model)."""
    http.put_tree(large.directory, "large")
    return http.url("large/model")


def _data_gets(http, path_end=DATA):
    return [a for a in http.answers if a.method == "GET" and a.path.endswith(path_end)]


def test_one_tensor_costs_its_own_bytes_plus_the_index(http, large, served):
    """Opening the reader and reading one 256 KiB tensor of a 20 MiB checkpoint makes four
    requests (a look-up and a GET of the index, a look-up of the data file, one ranged GET
    of the tensor) and transfers exactly the index and the tensor's bytes."""
    reader = tfckpt.load_checkpoint(served)
    value = reader.get_tensor("layer_03/kernel")
    assert np.array_equal(value, large.tensors["layer_03/kernel"])
    tensor_bytes = large.tensors["layer_03/kernel"].nbytes
    assert [(a.method, a.path.rsplit("/", 1)[-1]) for a in http.answers] == [
        ("HEAD", "model.index"),
        ("GET", "model.index"),
        ("HEAD", DATA),
        ("GET", DATA),
    ]
    assert http.body_bytes() == large.index_size + tensor_bytes
    assert http.body_bytes() < large.data_size / 50


def test_load_tensors_uses_few_large_concurrent_requests(http, large, served):
    """load_tensors of every tensor fetches the 20 MiB data file with a handful of ranged
    GETs of at most REQUEST_BYTES (neighbouring tensors coalesced), not one per tensor,
    and transfers each byte about once."""
    values = tfckpt.load_tensors(served)
    for name, want in large.tensors.items():
        assert np.array_equal(values[name], want), name
    gets = _data_gets(http)
    assert len(gets) <= -(-large.data_size // remote.REQUEST_BYTES) + 1  # (+1: the strings)
    assert len(gets) < len(large.tensors) / 4
    assert max(a.body_bytes for a in gets) <= remote.REQUEST_BYTES
    assert sum(a.body_bytes for a in gets) <= large.data_size + 1024


def test_get_slice_fetches_only_the_selected_rows(http, large, served):
    """get_slice of a 16 MiB [4096, 1024] tensor fetches the bytes of the rows selected:
    10 contiguous rows in one 40 KiB request, every 1024th row in four 4 KiB requests."""
    reader = tfckpt.load_checkpoint(served)
    big = large.tensors["big"]
    http.reset()
    assert np.array_equal(reader.get_slice("big")[10:20], big[10:20])
    assert [a.body_bytes for a in _data_gets(http)] == [10 * 4096]
    http.reset()
    assert np.array_equal(reader.get_slice("big")[::1024, ::-1], big[::1024, ::-1])
    assert sorted(a.body_bytes for a in _data_gets(http)) == [4096] * 4


def test_transient_server_errors_are_retried(http, large, served):
    """Two 500 answers to the tensor's request are retried and the third attempt's bytes
    are returned (the failures are invisible to the caller)."""
    reader = tfckpt.load_checkpoint(served)
    http.fail(lambda method, path: method == "GET" and path.endswith(DATA), times=2)
    assert np.array_equal(reader.get_tensor("layer_00/kernel"), large.tensors["layer_00/kernel"])
    assert [a.status for a in _data_gets(http)] == [500, 500, 206]


def test_persistent_server_errors_are_a_clear_checkpoint_error(http, served):
    """A server that keeps answering 500 is asked ATTEMPTS times, then a CheckpointError
    names the file, the byte range and the last failure."""
    reader = tfckpt.load_checkpoint(served)
    http.fail(lambda method, path: method == "GET" and path.endswith(DATA), times=1000)
    with pytest.raises(tfckpt.CheckpointError) as info:
        reader.get_tensor("layer_00/kernel")
    assert not isinstance(info.value, tfckpt.DataLossError)
    assert info.value.path == served.rsplit("/", 1)[0] + "/" + DATA
    assert f"failed {remote.ATTEMPTS} times" in str(info.value)
    assert "500" in str(info.value)
    assert len(_data_gets(http)) == remote.ATTEMPTS


def test_a_connection_dropped_mid_transfer_is_retried(http, large, served):
    """A response cut off halfway through its body (connection closed) is retried; the
    value is whole and correct."""
    reader = tfckpt.load_checkpoint(served)
    http.fail(lambda method, path: method == "GET" and path.endswith(DATA), times=1, drop=True)
    assert np.array_equal(reader.get_tensor("layer_05/kernel"), large.tensors["layer_05/kernel"])
    assert [a.status for a in _data_gets(http)] == [-1, 206]  # (-1: dropped)


def test_connections_dropped_every_time_are_a_clear_checkpoint_error(http, served):
    """When every attempt is cut off, a CheckpointError says the read failed ATTEMPTS
    times; no partial value is returned."""
    reader = tfckpt.load_checkpoint(served)
    http.fail(lambda method, path: method == "GET" and path.endswith(DATA), times=1000, drop=True)
    with pytest.raises(tfckpt.CheckpointError, match=f"failed {remote.ATTEMPTS} times"):
        reader.get_tensor("layer_05/kernel")


def test_access_denied_is_reported_at_once_not_as_missing(http, served):
    """A 403 on the data file or on the index is a CheckpointError saying access was
    denied (not CheckpointNotFoundError, not retried)."""
    http.denied.add(f"large/{DATA}")
    with pytest.raises(tfckpt.CheckpointError) as info:
        tfckpt.load_checkpoint(served)
    assert not isinstance(info.value, tfckpt.CheckpointNotFoundError)
    assert "access denied (HTTP 403)" in str(info.value)
    # fsspec's look-up tries HEAD, then GET: one of each, no retries of ours.
    assert http.count(path_end=DATA) == 2
    http.reset()
    http.denied.add("large/model.index")
    with pytest.raises(tfckpt.CheckpointError, match="access denied") as info:
        tfckpt.load_checkpoint(served)
    assert not isinstance(info.value, tfckpt.CheckpointNotFoundError)


def test_files_replaced_after_the_index_was_read_are_detected(http, large, large_other, served):
    """A checkpoint rewritten at the same URL after the reader read its index (same names
    and offsets, other values) is never read mixed: the data reads are pinned to the
    ETag seen at open (If-Match), so whole and partial reads raise DataLossError."""
    reader = tfckpt.load_checkpoint(served)
    http.put_tree(large_other.directory, "large")
    with pytest.raises(tfckpt.DataLossError, match="changed while it was read"):
        reader.get_tensor("layer_01/kernel")
    with pytest.raises(tfckpt.DataLossError, match="changed while it was read"):
        reader.get_slice("big")[0:2]
    assert 412 in [a.status for a in _data_gets(http)]
    fresh = tfckpt.load_checkpoint(served)  # opened again: the new checkpoint, consistent
    assert np.array_equal(fresh.get_tensor("big"), large_other.tensors["big"])


def test_without_etags_a_replaced_file_fails_its_checksum(http, large_other, served):
    """A server that sends no ETag cannot be pinned: a whole tensor read from a replaced
    data file is caught by its CRC32C (DataLossError), never returned."""
    http.send_etags = False
    reader = tfckpt.load_checkpoint(served)
    http.put_tree(large_other.directory, "large")
    with pytest.raises(tfckpt.DataLossError, match="checksum mismatch"):
        reader.get_tensor("layer_01/kernel")


def test_a_missing_data_file_names_the_file_and_the_tensor(http, large):
    """With only the index served, the reader opens (as for local checkpoints) and
    reading a tensor raises CheckpointNotFoundError naming the data file and tensor."""
    http.objects["partial/model.index"] = (large.directory / "model.index").read_bytes()
    reader = tfckpt.load_checkpoint(http.url("partial/model"))
    with pytest.raises(tfckpt.CheckpointNotFoundError) as info:
        reader.get_tensor("layer_02/kernel")
    assert info.value.path == http.url(f"partial/{DATA}")
    assert info.value.tensor == "layer_02/kernel"


def test_a_server_that_ignores_range_is_unsupported(http, served):
    """A server answering a ranged request with the whole file (200) is refused with
    UnsupportedError instead of downloading whole files for every tensor."""
    reader = tfckpt.load_checkpoint(served)
    http.ignore_ranges = True
    with pytest.raises(tfckpt.UnsupportedError, match="does not honour HTTP Range"):
        reader.get_tensor("layer_00/kernel")


def test_directory_urls_are_found_through_their_state_file(http, large, served):
    """Without listing, a directory URL is resolved by fetching its ``checkpoint`` state
    file by URL: load_checkpoint and latest_checkpoint give the prefix's URL."""
    directory = served.rsplit("/", 1)[0]
    assert tfckpt.latest_checkpoint(directory) == served
    assert tfckpt.load_checkpoint(directory).prefix == served
    assert tfckpt.list_variables(directory) == tfckpt.list_variables(large.prefix)


def test_saved_models_and_v1_files_are_found_by_url(http):
    """A SavedModel directory URL (its variables/variables.index) and a V1 checkpoint
    file, by prefix or through its directory's state file, read as locally."""
    for name in ("saved_model", "v1_format"):
        http.put_tree(FIXTURES / name, name)
    for url, local in [
        (http.url("saved_model"), FIXTURES / "saved_model"),
        (http.url("v1_format/model.ckpt"), FIXTURES / "v1_format/model.ckpt"),
        (http.url("v1_format"), FIXTURES / "v1_format"),
    ]:
        remote_reader, local_reader = tfckpt.load_checkpoint(url), tfckpt.load_checkpoint(local)
        assert remote_reader.format == local_reader.format
        for name in local_reader:
            assert same_value(remote_reader.get_tensor(name), local_reader.get_tensor(name))


def test_a_url_without_a_checkpoint_says_http_cannot_list(http):
    """A URL with nothing behind it raises CheckpointNotFoundError explaining that HTTP
    servers cannot be listed, and what to give instead."""
    with pytest.raises(tfckpt.CheckpointNotFoundError, match="cannot be listed"):
        tfckpt.load_checkpoint(http.url("nothing/here"))


def test_an_empty_state_file_is_data_loss(http):
    """An empty ``checkpoint`` state file (no byte to range over: the server answers 416)
    is the same DataLossError as locally, not a server error."""
    http.objects["empty/checkpoint"] = b""
    with pytest.raises(tfckpt.DataLossError, match="model_checkpoint_path"):
        tfckpt.latest_checkpoint(http.url("empty"))
