"""Checkpoints on object stores and web servers, read through fsspec.

Imported only for URLs or an fsspec filesystem passed in (``import tfckpt`` never imports
fsspec).  :class:`RemoteFile` is the :class:`~tfckpt.storage.source.ByteSource` of one
object:

- its size and version (ETag, GCS generation) are asked once, when it is opened;
- reads are planned by :mod:`tfckpt.storage.ranges` (ranges less than ``GAP_BYTES`` apart
  fetched together, long ones cut into ``REQUEST_BYTES`` pieces) and the pieces fetched
  concurrently, at most ``CONCURRENCY`` at a time, each copied into its destination as it
  arrives, so the memory in flight stays below ``CONCURRENCY * REQUEST_BYTES`` (fsspec's
  async API; ``cat_ranges`` in batches for synchronous filesystems);
- reads are pinned to the version seen at open where the backend allows it (HTTP
  ``If-Match``, the GCS generation, S3 ``IfMatch``): an object replaced meanwhile fails
  with DataLossError instead of mixing two versions (elsewhere the tensors' checksums
  catch it);
- transient failures (HTTP 5xx, 408, 429, dropped connections, short responses) are
  retried ``ATTEMPTS`` times with exponential backoff, then raise CheckpointError; refusals
  (401, 403 and other 4xx) are not retried.

There is no memory map: :meth:`RemoteFile.view` returns None and readers fill owned
buffers.  Lookups (``isfile``, ``open``...) drop fsspec's cached listing of the path first,
so that a checkpoint written since is seen (``latest_checkpoint`` in a polling loop).
"""

from __future__ import annotations

import asyncio
import importlib
import posixpath
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import numpy as np

from tfckpt.errors import (
    CheckpointError,
    CheckpointNotFoundError,
    DataLossError,
    InvalidArgumentError,
    UnsupportedError,
)
from tfckpt.storage.base import LOCAL, Storage, install_hint, protocol_of
from tfckpt.storage.ranges import Request, plan
from tfckpt.storage.source import ByteSource

ATTEMPTS = 4  # tries of each request before giving up on a transient failure
BACKOFF_SECONDS = 0.2  # before the first retry; doubled for each next one
REQUEST_BYTES = 8 << 20  # the longest single ranged read
CONCURRENCY = 16  # requests in flight at once, per read
GAP_BYTES = 1 << 20  # ranges closer than this are fetched by one request
# A file found by a lookup this recent is opened without asking again (path resolution
# looks the index up just before the reader opens it).
FRESH_SECONDS = 1.0

_TRANSIENT_STATUS = frozenset({408, 425, 429})

# How fsspec backends describe an object's version, most specific first: the first key
# present in a file's info identifies what was read (with the size).
_VERSION_KEYS = ("generation", "VersionId", "ETag", "etag", "LastModified", "Last-Modified")
_VERSION_FALLBACK = ("mtime", "updated", "modified")

Getter = Callable[[int, int], Awaitable[bytes]]

# fsspec has no type information: its modules are Any here (ImportError when missing).
fsspec: Any = importlib.import_module("fsspec")
_fsspec_asyn: Any = importlib.import_module("fsspec.asyn")
_fsspec_core: Any = importlib.import_module("fsspec.core")
_fsspec_local: Any = importlib.import_module("fsspec.implementations.local")


def storage_for_url(url: str, storage_options: dict[str, Any]) -> tuple[Storage, str]:
    """The storage of an fsspec URL and the path on it (see
    :func:`tfckpt.storage.location.locate`)."""
    protocol = protocol_of(url)
    try:
        fs, fs_path = _fsspec_core.url_to_fs(url, **storage_options)
    except ImportError as exc:
        raise UnsupportedError(
            f"reading {protocol}:// URLs needs a backend that is not installed ({exc}): "
            f"{install_hint(protocol)}",
            path=url,
        ) from None
    except ValueError as exc:  # "Protocol not known"
        raise UnsupportedError(f"fsspec cannot open this URL: {exc}", path=url) from None
    return _storage(fs, url, fs_path)


def storage_for_filesystem(fs: Any, path: str) -> tuple[Storage, str]:
    """The storage of ``path`` on the fsspec filesystem ``fs``."""
    if not isinstance(fs, fsspec.AbstractFileSystem):
        raise InvalidArgumentError(
            f"fs must be an fsspec filesystem, got {type(fs).__name__}", path=path
        )
    return _storage(fs, path, fs._strip_protocol(path))


def _storage(fs: Any, given: str, fs_path: str) -> tuple[Storage, str]:
    if isinstance(fs, _fsspec_local.LocalFileSystem):
        return LOCAL, fs_path  # memory maps and positional reads
    # Keep the caller's form (URLs stay URLs): find the text in front of the fs path.
    trimmed = given if fs_path.endswith("/") else given.rstrip("/")
    for candidate in (trimmed, fs.unstrip_protocol(fs_path)):
        if candidate.endswith(fs_path):
            prefix = candidate[: len(candidate) - len(fs_path)]
            return RemoteStorage(fs, prefix), candidate
    return RemoteStorage(fs, ""), fs_path


def _protocols(fs: Any) -> set[str]:
    protocol = fs.protocol
    return set(protocol) if isinstance(protocol, (tuple, list)) else {protocol}


class RemoteStorage:
    """:class:`~tfckpt.storage.location.Storage` on an fsspec filesystem.

    Paths are the caller's (``prefix`` + the filesystem's path): ``gs://b/x`` is ``b/x``
    to gcsfs.
    """

    remote = True

    def __init__(self, fs: Any, prefix: str) -> None:
        self.fs = fs
        self.prefix = prefix
        self.can_list = not (_protocols(fs) & {"http", "https"})
        self._found: dict[str, tuple[float, dict[str, Any]]] = {}  # path: (when, info)

    def fs_path(self, path: str) -> str:
        if path.startswith(self.prefix):
            return path[len(self.prefix) :]
        return str(self.fs._strip_protocol(path))

    def user_path(self, fs_path: str) -> str:
        return self.prefix + fs_path

    def open(self, path: str) -> ByteSource:
        return RemoteFile(self, path)

    def info(self, path: str) -> dict[str, Any]:
        """The filesystem's fresh info on ``path`` (CheckpointNotFoundError when absent)."""
        fs_path = self.fs_path(path)
        self.fs.invalidate_cache(fs_path)
        return dict(call(self.fs.info, fs_path, what="looking up the file", path=path))

    def recent_info(self, path: str) -> dict[str, Any]:
        """:meth:`info`, or what :meth:`isfile` found less than FRESH_SECONDS ago."""
        found = self._found.pop(path, None)
        if found is not None and time.monotonic() - found[0] < FRESH_SECONDS:
            return found[1]
        return self.info(path)

    def isfile(self, path: str) -> bool:
        try:
            info = self.info(path)
        except CheckpointNotFoundError:
            return False
        if len(self._found) > 64:  # (lookups nobody opened: forget them)
            self._found.clear()
        self._found[path] = (time.monotonic(), info)
        return info.get("type") == "file"

    def isdir(self, path: str) -> bool:
        if not self.can_list:
            return False
        fs_path = self.fs_path(path)
        self.fs.invalidate_cache(fs_path)
        return bool(call(self.fs.isdir, fs_path, what="looking up the directory", path=path))

    def glob_files(self, pattern: str) -> list[str]:
        if not self.can_list:
            return []
        fs_pattern = self.fs_path(pattern)
        self.fs.invalidate_cache(posixpath.dirname(fs_pattern))
        found = call(self.fs.glob, fs_pattern, detail=True, what="listing", path=pattern)
        return sorted(
            self.user_path(name) for name, info in found.items() if info.get("type") == "file"
        )

    def read_small(self, path: str, limit: int) -> bytes | None:
        fs_path = self.fs_path(path)
        try:
            data = call(self.fs.cat_file, fs_path, start=0, end=limit, what="reading", path=path)
        except CheckpointNotFoundError:
            return None
        except CheckpointError as exc:
            if exc.__cause__ is not None and http_status(exc.__cause__) == 416:
                return b""  # an empty file has no byte 0 to range over
            raise
        return bytes(data[:limit])  # (a server that ignores Range sends it all)

    def join(self, directory: str, name: str) -> str:
        return posixpath.join(directory, name)

    def isabs(self, path: str) -> bool:
        return "://" in path or "::" in path or path.startswith("/")


class RemoteFile:
    """One object of an fsspec filesystem, read by concurrent, pinned ranged requests.

    Raises CheckpointNotFoundError when the object does not exist, CheckpointError when
    access is denied or the store keeps failing, DataLossError for a directory.

    Example::

        storage, path = locate("s3://bucket/model.ckpt-1.index")
        index = storage.open(path).read_ranges([(0, 100)])[0]
    """

    def __init__(self, storage: RemoteStorage, path: str) -> None:
        self.path = path
        self.fs = storage.fs
        self._storage = storage
        self._fs_path = storage.fs_path(path)
        info = storage.recent_info(path)
        if info.get("type") not in (None, "file"):
            raise DataLossError(f"not a file but a {info.get('type')}", path=path)
        size = info.get("size")
        if not isinstance(size, int) or size < 0:
            raise UnsupportedError(
                "the store does not tell the file's size (no Content-Length?), which reading "
                "by ranges needs",
                path=path,
            )
        self._size = size
        self._version = version(info)
        self._async = bool(getattr(self.fs, "async_impl", False))
        self._get = _pinned_getter(self.fs, self._fs_path, info) if self._async else None

    def size(self) -> int:
        return self._size

    def view(self, offset: int, size: int) -> None:
        return None  # no memory map: readers fill owned buffers

    def readinto(self, offset: int, buffer: Any) -> None:
        self._fill([(offset, _writable_bytes(buffer))])

    def read_ranges(self, ranges: Sequence[tuple[int, int]]) -> list[bytearray]:
        out = [bytearray(size) for _, size in ranges]
        self._fill([(offset, memoryview(b)) for (offset, _), b in zip(ranges, out)])
        return out

    def changed(self) -> str | None:
        """How the object differs from when it was opened (None: the same, or unknown)."""
        try:
            now = self._storage.info(self.path)
        except CheckpointNotFoundError:
            return "it no longer exists"
        except CheckpointError:
            return None
        then, later = self._version, version(now)
        if then != later:
            return f"version {_describe(then)} when opened, now {_describe(later)}"
        return None

    def close(self) -> None:
        """Nothing to release (the filesystem, and its connections, are fsspec's)."""

    # -- fetching --------------------------------------------------------------------------

    def _fill(self, targets: list[tuple[int, memoryview]]) -> None:
        for offset, view in targets:
            if offset < 0 or offset + view.nbytes > self._size:
                raise DataLossError(
                    f"the file ends before byte {offset + view.nbytes} (it has {self._size})",
                    path=self.path,
                )
        requests = plan(
            [(offset, view.nbytes) for offset, view in targets],
            gap=GAP_BYTES,
            piece=REQUEST_BYTES,
        )
        if not requests:
            return  # only empty ranges

        def deliver(request: Request, data: bytes) -> None:
            source = memoryview(data)
            for part in request.copies:
                view = targets[part.target][1]
                view[part.into : part.into + part.size] = source[
                    part.start : part.start + part.size
                ]

        try:
            if self._async:
                _fsspec_asyn.sync(self.fs.loop, self._fetch_all, requests, deliver)
            else:
                self._fetch_batches(requests, deliver)
        except _Failure as failure:
            raise self._error(failure) from failure.cause

    async def _fetch_all(
        self, requests: list[Request], deliver: Callable[[Request, bytes], None]
    ) -> None:
        semaphore = asyncio.Semaphore(CONCURRENCY)

        async def one(request: Request) -> None:
            async with semaphore:
                deliver(request, await self._fetch(request.start, request.end))

        tasks = [asyncio.ensure_future(one(request)) for request in requests]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _fetch(self, start: int, end: int) -> bytes:
        assert self._get is not None
        for attempt in range(ATTEMPTS):
            try:
                outcome: bytes | Exception = await self._get(start, end)
            except Exception as exc:
                outcome = exc
            data = _judge(outcome, start, end, attempt)
            if data is not None:
                return data
            await asyncio.sleep(BACKOFF_SECONDS * 2**attempt)
        raise AssertionError("unreachable: the last attempt raises")

    def _fetch_batches(
        self, requests: list[Request], deliver: Callable[[Request, bytes], None]
    ) -> None:
        """Synchronous filesystems: ``cat_ranges`` in batches, failed pieces retried alone."""
        for first in range(0, len(requests), CONCURRENCY):
            batch = requests[first : first + CONCURRENCY]
            results = self.fs.cat_ranges(
                [self._fs_path] * len(batch),
                [r.start for r in batch],
                [r.end for r in batch],
                on_error="return",
            )
            for request, result in zip(batch, results):
                if isinstance(result, BaseException) or len(result) != request.size:
                    result = self._fetch_sync(request.start, request.end)
                deliver(request, result)

    def _fetch_sync(self, start: int, end: int) -> bytes:
        for attempt in range(ATTEMPTS):
            try:
                outcome: bytes | Exception = self.fs.cat_file(self._fs_path, start=start, end=end)
            except Exception as exc:
                outcome = exc
            data = _judge(outcome, start, end, attempt)
            if data is not None:
                return data
            time.sleep(BACKOFF_SECONDS * 2**attempt)
        raise AssertionError("unreachable: the last attempt raises")

    def _error(self, failure: _Failure) -> CheckpointError:
        span = f"bytes {failure.start}..{failure.end}"
        change = self.changed()  # a replaced object explains most failures
        if change is not None or failure.kind == _CHANGED:
            how = change or "the store says its version no longer matches"
            return DataLossError(
                f"the object changed while it was read ({how}): the checkpoint was replaced "
                "or is being written; open it again",
                path=self.path,
            )
        if failure.kind == _IGNORED_RANGE:
            return UnsupportedError(
                f"the server answered a request for {span} with {failure.got} bytes: it does "
                "not honour HTTP Range requests, which reading checkpoints by parts needs",
                path=self.path,
            )
        return _fail(failure.kind, failure.cause, f"reading {span}", self.path, failure.attempts)


# -- failures -----------------------------------------------------------------------------

_TRANSIENT = "transient"
_BUG = "bug"
_MISSING = "missing"
_DENIED = "denied"
_CHANGED = "changed"
_REFUSED = "refused"
_IGNORED_RANGE = "ignored-range"


class _Failure(Exception):
    """A request that failed for good (raised inside the fetch loop, mapped by the file)."""

    def __init__(
        self,
        kind: str,
        cause: BaseException | None,
        start: int,
        end: int,
        attempts: int,
        got: int = 0,
    ) -> None:
        super().__init__(kind)
        self.kind, self.cause, self.start, self.end = kind, cause, start, end
        self.attempts, self.got = attempts, got


class _ShortResponse(Exception):
    pass


def _judge(outcome: bytes | Exception, start: int, end: int, attempt: int) -> bytes | None:
    """The bytes of a good response; None to try again; raises _Failure to stop."""
    if isinstance(outcome, Exception):
        kind = classify(outcome)
        if kind == _BUG:
            raise outcome
        cause: BaseException = outcome
    elif len(outcome) == end - start:
        return outcome
    elif len(outcome) > end - start:
        raise _Failure(_IGNORED_RANGE, None, start, end, attempt + 1, got=len(outcome))
    else:
        kind = _TRANSIENT
        cause = _ShortResponse(f"{len(outcome)} of {end - start} bytes arrived")
    if kind != _TRANSIENT or attempt + 1 >= ATTEMPTS:
        raise _Failure(kind, cause, start, end, attempt + 1)
    return None


def http_status(exc: BaseException) -> int | None:
    """The HTTP status behind an fsspec backend's exception, following its causes
    (aiohttp's ``status``, gcsfs's ``code``, botocore's ``response``), or None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if type(current).__module__.startswith("aiohttp.http_exceptions"):
            # A response the client could not parse (a body cut short...): its ``code``
            # is the parser's, not the server's.
            current = current.__cause__ or current.__context__
            continue
        for attribute in ("status", "code", "status_code"):
            value = getattr(current, attribute, None)
            if isinstance(value, int) and 100 <= value < 600:
                return value
        response = getattr(current, "response", None)
        if isinstance(response, dict):
            value = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if isinstance(value, int):
                return value
        current = current.__cause__ or current.__context__
    return None


def classify(exc: BaseException) -> str:
    """What a backend's exception means for tfckpt: one of the kinds above."""
    if isinstance(exc, (TypeError, AttributeError, NameError)):
        return _BUG  # a programming error: raised as it is
    status = http_status(exc)
    if status is not None:
        if status in (401, 403):
            return _DENIED
        if status in (404, 410):
            return _MISSING
        if status == 412:
            return _CHANGED
        if status >= 500 or status in _TRANSIENT_STATUS:
            return _TRANSIENT
        if status >= 400:
            return _REFUSED
    if isinstance(exc, PermissionError):
        return _DENIED
    if isinstance(exc, FileNotFoundError):
        return _MISSING
    text = str(exc)
    if isinstance(exc, OSError) and text.startswith("Forbidden"):  # gcsfs's 403
        return _DENIED
    if "pre-condition" in text or "precondition" in text.lower():  # s3fs's 412
        return _CHANGED
    return _TRANSIENT  # connection resets, timeouts, payload errors


def _fail(
    kind: str, cause: BaseException | None, what: str, path: str, attempts: int
) -> CheckpointError:
    detail = f"{type(cause).__name__}: {cause}" if cause is not None else "no detail"
    status = http_status(cause) if cause is not None else None
    if kind == _MISSING:
        return CheckpointNotFoundError(f"{what}: the file does not exist", path=path)
    if kind == _DENIED:
        code = f" (HTTP {status})" if status else ""
        return CheckpointError(
            f"{what}: access denied{code}; check the credentials and permissions "
            f"(storage_options): {detail}",
            path=path,
        )
    if kind == _REFUSED:
        return CheckpointError(f"{what}: the server refused (HTTP {status}): {detail}", path=path)
    if kind == _CHANGED:
        return DataLossError(f"{what}: the object changed: {detail}", path=path)
    return CheckpointError(f"{what} failed {attempts} times, the last with {detail}", path=path)


def call(function: Callable[..., Any], *args: Any, what: str, path: str, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)`` (a filesystem's metadata call), retried on transient
    failures; failures raised as CheckpointError (CheckpointNotFoundError when absent)."""
    for attempt in range(ATTEMPTS):
        try:
            return function(*args, **kwargs)
        except Exception as exc:
            kind = classify(exc)
            if kind == _BUG:
                raise
            if kind != _TRANSIENT or attempt + 1 >= ATTEMPTS:
                raise _fail(kind, exc, what, path, attempt + 1) from exc
        time.sleep(BACKOFF_SECONDS * 2**attempt)
    raise AssertionError("unreachable: the last attempt raises")


# -- versions -----------------------------------------------------------------------------


def version(info: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """What identifies the version of an object in its fsspec info: its size and the most
    specific version field the backend gives."""
    found = [("size", info.get("size"))]
    for keys in (_VERSION_KEYS, _VERSION_FALLBACK):
        for key in keys:
            if info.get(key) is not None:
                found.append((key, info[key]))
                return tuple(found)
    return tuple(found)


def _describe(identity: tuple[tuple[str, Any], ...]) -> str:
    return ", ".join(f"{key} {value}" for key, value in identity)


def _pinned_getter(fs: Any, fs_path: str, info: dict[str, Any]) -> Getter:
    """A ranged read of ``fs_path`` that only succeeds on the version ``info`` describes,
    where the backend can ask for that (else a plain ranged read)."""
    protocols = _protocols(fs)
    etag = info.get("ETag")
    strong_etag = isinstance(etag, str) and not etag.startswith("W/")
    if protocols & {"http", "https"} and strong_etag:
        headers = {**(fs.kwargs.get("headers") or {}), "If-Match": etag}

        def http_get(start: int, end: int) -> Awaitable[bytes]:
            return fs._cat_file(fs_path, start=start, end=end, headers=headers)

        return http_get
    if protocols & {"gs", "gcs"} and info.get("generation"):
        generation = info["generation"]

        def gcs_get(start: int, end: int) -> Awaitable[bytes]:
            return fs._cat_file(fs_path, start=start, end=end, generation=generation)

        return gcs_get
    if protocols & {"s3", "s3a"} and strong_etag:
        bucket, key, version_id = fs.split_path(fs_path)
        pinned = {"IfMatch": etag, **({"VersionId": version_id} if version_id else {})}

        async def s3_get(start: int, end: int) -> bytes:
            response = await fs._call_s3(
                "get_object", Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}", **pinned
            )
            body = response["Body"]
            try:
                return bytes(await body.read())
            finally:
                body.close()

        return s3_get

    def plain_get(start: int, end: int) -> Awaitable[bytes]:
        return fs._cat_file(fs_path, start=start, end=end)

    return plain_get


def _writable_bytes(buffer: Any) -> memoryview:
    if isinstance(buffer, np.ndarray):  # (memoryview cannot take ml_dtypes' arrays)
        return buffer.reshape(-1).view(np.uint8).data
    return memoryview(buffer).cast("B")
