"""Restoring from a remote checkpoint fetches its values in bulk: a few requests, not one
per variable.

Against a real HTTP server on 127.0.0.1 that logs every request (tests/storage/servers.py):
``Checkpoint.restore`` of an object-based checkpoint of 200 variables, of a name-based
one, and ``load_tree`` each fetch the data file with a handful of ranged GETs (the
restoration collects every key first and reads them with the reader's many-tensor read,
so that neighbouring ranges coalesce), transfer about the data file once, and restore the
right values.
"""

from __future__ import annotations

import numpy as np
import pytest

import tfckpt
from tests.storage.conftest import need_module
from tests.storage.servers import RangeHTTPServer

need_module("fsspec")
need_module("aiohttp")
remote = need_module("tfckpt.storage.remote")

N = 200  # variables
DATA = ".data-00000-of-00001"


@pytest.fixture(scope="module")
def http():
    server = RangeHTTPServer()
    yield server
    server.stop()


def _values() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(13)
    return {f"v{i:03d}": rng.standard_normal(64 + i, dtype=np.float32) for i in range(N)}


def _data_gets(http: RangeHTTPServer) -> list:
    return [a for a in http.answers if a.method == "GET" and a.path.endswith(DATA)]


def _serve(http: RangeHTTPServer, directory, under: str) -> None:
    http.reset()
    http.put_tree(directory, under)


def test_object_based_restore_of_n_variables_costs_a_few_requests(http, tmp_path):
    """200 variables and a NumpyState attribute restored over HTTP: at most a few ranged
    GETs of the data file (one for the coalesced variables, one for the NumpyState's
    bytes), not 200; the bytes transferred are about the data file's."""
    values = _values()
    state = tfckpt.NumpyState()
    state.table = np.arange(12).reshape(3, 4)
    written = tfckpt.Checkpoint(model={k: v.copy() for k, v in values.items()}, state=state)
    path = written.save(tmp_path / "ckpt")
    _serve(http, tmp_path, "obj")
    targets = {k: np.zeros_like(v) for k, v in values.items()}
    fresh_state = tfckpt.NumpyState()
    checkpoint = tfckpt.Checkpoint(model=targets, state=fresh_state)
    http.answers.clear()
    status = checkpoint.restore(http.url("obj/ckpt-1"))
    status.assert_consumed()
    for key, want in values.items():
        assert np.array_equal(targets[key], want), key
    assert fresh_state.table.tolist() == state.table.tolist()
    assert checkpoint.save_counter == 1
    gets = _data_gets(http)
    assert 1 <= len(gets) <= 4, [a.range for a in gets]
    data_size = (tmp_path / ("ckpt-1" + DATA)).stat().st_size
    assert sum(a.body_bytes for a in gets) <= data_size + 1024
    assert len(http.answers) < 12, [(a.method, a.path) for a in http.answers]
    del path


def test_name_based_restore_of_n_variables_costs_a_few_requests(http, tmp_path):
    values = _values()
    tfckpt.save_tensors(tmp_path / "model", values)
    _serve(http, tmp_path, "tf1")
    targets = {k: np.zeros_like(v) for k, v in values.items()}
    status = tfckpt.Checkpoint(**targets).restore(http.url("tf1/model"))
    status.assert_consumed()
    for key, want in values.items():
        assert np.array_equal(targets[key], want), key
    assert 1 <= len(_data_gets(http)) <= 2


def test_load_tree_of_n_variables_costs_a_few_requests(http, tmp_path):
    values = _values()
    tfckpt.Checkpoint(model={k: v.copy() for k, v in values.items()}).write(tmp_path / "ckpt")
    _serve(http, tmp_path, "tree")
    tree = tfckpt.load_tree(http.url("tree/ckpt"))
    for key, want in values.items():
        assert np.array_equal(tree["model"][key], want), key
    assert 1 <= len(_data_gets(http)) <= 2


def test_a_large_restore_is_cut_into_bounded_requests(http, tmp_path):
    """A 24 MiB restore over HTTP: no GET larger than REQUEST_BYTES (memory in flight
    bounded by the reader's plan), the values right."""
    rng = np.random.default_rng(5)
    values = {f"big{i}": rng.standard_normal((1024, 1024), dtype=np.float32) for i in range(6)}
    tfckpt.Checkpoint(**values).write(tmp_path / "ckpt")
    _serve(http, tmp_path, "large")
    targets = {k: np.zeros_like(v) for k, v in values.items()}
    tfckpt.Checkpoint(**targets).read(http.url("large/ckpt")).assert_consumed()
    for key, want in values.items():
        assert np.array_equal(targets[key], want), key
    gets = _data_gets(http)
    assert max(a.body_bytes for a in gets) <= remote.REQUEST_BYTES
    assert len(gets) <= -(-24 * 2**20 // remote.REQUEST_BYTES) + 1
