"""Fixtures for the remote-storage tests: servers on 127.0.0.1 and checkpoints to serve.

Each server is started once per session on a free port and stopped at the end.  A
server's tests are skipped when its packages (or fsspec's backend for it) are missing,
unless ``TFCKPT_REQUIRE_REMOTE=1``, where that is an error instead of a silent skip.
"""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tfckpt
from tests.storage.servers import (
    CountingProxy,
    RangeHTTPServer,
    RecordingProxy,
    free_port,
    start_gcs_emulator,
    start_moto,
)

# gcsfs's default filesystem probes the gRPC storage-control API for each bucket's layout,
# which an emulator does not serve (a minute of retries); its core filesystem is the JSON
# API alone.  Read when gcsfs is first imported, so set before any test imports it.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

BUCKET = "tfckpt-test"
REGION = "us-west-2"  # (moto refuses us-east-1 as an explicit location constraint)


def need(*modules: str) -> None:
    """Skips the test unless ``modules`` import (an error with TFCKPT_REQUIRE_REMOTE=1)."""
    for module in modules:
        need_module(module)


def need_module(name: str) -> Any:
    """The module ``name``; else skips the test, or the whole test module when called at
    import time (an error with TFCKPT_REQUIRE_REMOTE=1)."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        if os.environ.get("TFCKPT_REQUIRE_REMOTE") == "1":
            raise
        pytest.skip(
            f"{name} cannot be imported ({exc}); TFCKPT_REQUIRE_REMOTE=1 makes this an error",
            allow_module_level=True,
        )


def put_tree(fs: Any, root: Path, under: str) -> None:
    """Uploads every file below ``root`` to ``under/<relative path>`` on ``fs``."""
    for file in sorted(root.rglob("*")):
        if file.is_file():
            fs.pipe_file(f"{under}/{file.relative_to(root).as_posix()}", file.read_bytes())


def same_value(a: Any, b: Any) -> bool:
    """Equal tensor values, bit for bit (NaNs, -0.0 and ml_dtypes included)."""
    if isinstance(a, bytes) or isinstance(b, bytes):
        return bool(a == b)
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype == object:
        return bool(a.tolist() == b.tolist())
    return a.tobytes() == b.tobytes()


# -- checkpoints --------------------------------------------------------------------------


@dataclass
class Large:
    """A checkpoint of ~20 MiB in ``directory`` (prefix ``model``, state file beside it)."""

    directory: Path
    tensors: dict[str, Any]

    @property
    def prefix(self) -> Path:
        return self.directory / "model"

    def file_size(self, name: str) -> int:
        return (self.directory / name).stat().st_size

    @property
    def index_size(self) -> int:
        return self.file_size("model.index")

    @property
    def data_size(self) -> int:
        return self.file_size("model.data-00000-of-00001")


def large_tensors(seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    tensors: dict[str, Any] = {"big": rng.standard_normal((4096, 1024), dtype=np.float32)}
    for i in range(15):
        tensors[f"layer_{i:02d}/kernel"] = rng.standard_normal((256, 256), dtype=np.float32)
    tensors["names"] = np.array([b"alpha", b"beta", b"gamma"], object)
    tensors["step"] = np.int64(seed)
    return tensors


@pytest.fixture(scope="session")
def large(tmp_path_factory: pytest.TempPathFactory) -> Large:
    directory = tmp_path_factory.mktemp("large")
    tensors = large_tensors(1)
    tfckpt.save_tensors(directory / "model", tensors)
    (directory / "checkpoint").write_text('model_checkpoint_path: "model"\n')
    return Large(directory, tensors)


@pytest.fixture(scope="session")
def large_other(tmp_path_factory: pytest.TempPathFactory) -> Large:
    """The same names, shapes and layout as ``large``, other values (a rewrite)."""
    directory = tmp_path_factory.mktemp("large_other")
    tensors = large_tensors(2)
    tfckpt.save_tensors(directory / "model", tensors)
    (directory / "checkpoint").write_text('model_checkpoint_path: "model"\n')
    return Large(directory, tensors)


# -- servers ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def http_server() -> Any:
    need("fsspec", "aiohttp")
    server = RangeHTTPServer()
    yield server
    server.stop()


@pytest.fixture
def http(http_server: RangeHTTPServer) -> RangeHTTPServer:
    """The session's HTTP server with no answers logged and no faults pending."""
    http_server.reset()
    return http_server


@dataclass
class ObjectStore:
    """A server behind a counting proxy: ``direct`` (an fsspec filesystem talking to the
    server itself) uploads, readers go through ``proxy`` with ``storage_options``."""

    protocol: str
    proxy: CountingProxy
    direct: Any
    storage_options: dict[str, Any]

    def url(self, path: str) -> str:
        return f"{self.protocol}://{BUCKET}/{path}"

    def upload(self, root: Path, under: str) -> str:
        """Uploads the files below ``root`` to ``under`` in the bucket; returns its URL."""
        put_tree(self.direct, root, f"{BUCKET}/{under}")
        return self.url(under)

    def reader_fs(self) -> Any:
        """A new filesystem through the proxy (no connections or caches of other tests)."""
        cls = type(self.direct)
        return cls(**self.storage_options, skip_instance_cache=True)


@pytest.fixture(scope="session")
def s3_server() -> Any:
    need("moto.server", "s3fs")
    import s3fs

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = start_moto()
    host, port = server.get_host_and_port()
    proxy = CountingProxy((host, port))

    def options(endpoint: str) -> dict[str, Any]:
        return {
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"endpoint_url": endpoint, "region_name": REGION},
        }

    direct = s3fs.S3FileSystem(**options(f"http://{host}:{port}"), skip_instance_cache=True)
    direct.mkdir(BUCKET)
    yield ObjectStore("s3", proxy, direct, options(proxy.endpoint))
    proxy.stop()
    server.stop()


@pytest.fixture(scope="session")
def gcs_server() -> Any:
    need("gcp_storage_emulator", "gcsfs")
    import gcsfs

    logging.getLogger("gcp_storage_emulator").setLevel(logging.ERROR)
    port = free_port()
    server = start_gcs_emulator(port)
    proxy = CountingProxy(("127.0.0.1", port))

    def options(endpoint: str) -> dict[str, Any]:
        return {"endpoint_url": endpoint, "token": "anon", "project": "tfckpt-test"}

    direct = gcsfs.GCSFileSystem(**options(f"http://127.0.0.1:{port}"), skip_instance_cache=True)
    direct.mkdir(BUCKET)
    yield ObjectStore("gs", proxy, direct, options(proxy.endpoint))
    proxy.stop()
    server.stop()


@pytest.fixture(params=["s3", "gcs"])
def store(request: pytest.FixtureRequest) -> ObjectStore:
    """Each object store in turn (moto's S3, the GCS emulator), its counts reset."""
    server: ObjectStore = request.getfixturevalue(f"{request.param}_server")
    server.proxy.reset()
    return server


# -- writing ------------------------------------------------------------------------------


@dataclass
class WriteStore:
    """An object store for writers: ``storage_options`` talk to the server through
    ``recorder`` (a :class:`RecordingProxy`, which logs every upload and can refuse
    requests); ``direct`` talks to the server itself (to look behind the writer's back)."""

    protocol: str
    recorder: RecordingProxy
    direct: Any
    storage_options: dict[str, Any]

    def url(self, path: str) -> str:
        return f"{self.protocol}://{BUCKET}/{path}"

    def reset(self) -> None:
        """Forgets the recorder's log and refusals.  For GCS the recorder then answers a
        resumable session's cancellation (DELETE) as GCS does, 499, which the emulator
        does not implement (it answers 501, which gcsfs retries for half a minute)."""
        self.recorder.reset()
        if self.protocol == "gs":
            self.recorder.refuse(
                lambda method, target: method == "DELETE" and "upload_id=" in target,
                status=499,
                content_type="text/plain",
            )

    def objects(self, under: str) -> list[str]:
        """The names of the objects below ``under`` in the bucket, as the server lists
        them now."""
        self.direct.invalidate_cache()
        found = self.direct.find(f"{BUCKET}/{under}")
        return sorted(name.rsplit("/", 1)[-1] for name in found)


def _write_store(server: ObjectStore, options: Any) -> WriteStore:
    recorder = RecordingProxy(server.proxy.target)
    return WriteStore(server.protocol, recorder, server.direct, options(recorder.endpoint))


@pytest.fixture(scope="session")
def s3_write_server(s3_server: ObjectStore) -> Any:
    def options(endpoint: str) -> dict[str, Any]:
        return {
            "key": "testing",
            "secret": "testing",
            # One attempt per request: the tests' refusals are answered at once.
            "config_kwargs": {"retries": {"max_attempts": 1}},
            "client_kwargs": {"endpoint_url": endpoint, "region_name": REGION},
        }

    store = _write_store(s3_server, options)
    yield store
    store.recorder.stop()


@pytest.fixture(scope="session")
def gcs_write_server(gcs_server: ObjectStore) -> Any:
    def options(endpoint: str) -> dict[str, Any]:
        return {"endpoint_url": endpoint, "token": "anon", "project": "tfckpt-test"}

    store = _write_store(gcs_server, options)
    store.reset()
    yield store
    store.recorder.stop()


@pytest.fixture(params=["s3", "gcs"])
def write_store(request: pytest.FixtureRequest) -> WriteStore:
    """Each object store in turn, for writers (moto's S3, the GCS emulator), its log and
    refusals reset."""
    server: WriteStore = request.getfixturevalue(f"{request.param}_write_server")
    server.reset()
    return server
