"""Real servers on 127.0.0.1 for the remote-storage tests, and what they answered.

- :class:`RangeHTTPServer`: an HTTP/1.1 server over objects held in memory, as static file
  servers and object stores answer: HEAD, GET with a single ``Range`` (206), strong ETags
  with ``If-Match`` (412), 416 past the end, no listing.  It logs every request it answers
  (method, path, status, body bytes) and can be told to fail: answer 500s, drop the
  connection halfway through a body, refuse paths with 403, ignore ``Range``, send no ETag.
- :class:`CountingProxy`: a TCP proxy in front of another server (moto's S3, the GCS
  emulator) that counts the bytes the server sent and logs the request lines the client
  sent.  Requests are told apart by the blank line ending their headers, so it is exact
  for requests without bodies (GET, HEAD: everything a reader sends); uploads go to the
  server directly.
- :class:`RecordingProxy`: an HTTP/1.1 reverse proxy in front of another server that logs
  every exchange with its request body size (what writers upload, request by request) and
  can answer in the server's place (403s, 500s) for the requests a test selects.
- :func:`start_moto` and :func:`start_gcs_emulator` start the S3 and GCS servers.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import re
import socket
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

LOCALHOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 a moment ago (for servers that cannot bind port 0)."""
    with socket.socket() as probe:
        probe.bind((LOCALHOST, 0))
        return int(probe.getsockname()[1])


@dataclass
class Answer:
    """One request a server answered."""

    method: str
    path: str
    status: int
    body_bytes: int
    range: str | None = None


@dataclass
class Fault:
    """How to answer the next ``times`` requests that ``matches`` (method, path) selects:
    ``status`` (e.g. 500) or, when ``drop``, half the body and a closed connection."""

    matches: Callable[[str, str], bool]
    times: int
    status: int = 500
    drop: bool = False


class RangeHTTPServer:
    """An HTTP server on 127.0.0.1 serving ``objects`` (path -> bytes); see the module."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.answers: list[Answer] = []
        self.faults: deque[Fault] = deque()
        self.denied: set[str] = set()  # path prefixes answered with 403
        self.ignore_ranges = False
        self.send_etags = True
        self._lock = threading.Lock()
        handler = type("Handler", (_RangeHandler,), {"owner": self})
        self._server = ThreadingHTTPServer((LOCALHOST, 0), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str = "") -> str:
        return f"http://{LOCALHOST}:{self.port}/{path}"

    def put_tree(self, root: Path, under: str) -> None:
        """Serves every file below ``root`` at ``under/<relative path>``."""
        for file in root.rglob("*"):
            if file.is_file():
                self.objects[f"{under}/{file.relative_to(root).as_posix()}"] = file.read_bytes()

    def fail(
        self,
        matches: Callable[[str, str], bool],
        times: int,
        *,
        status: int = 500,
        drop: bool = False,
    ) -> None:
        self.faults.append(Fault(matches, times, status, drop))

    def reset(self) -> None:
        """Forgets the answers and faults (the objects stay)."""
        with self._lock:
            self.answers.clear()
            self.faults.clear()
            self.denied.clear()
            self.ignore_ranges = False
            self.send_etags = True

    def body_bytes(self) -> int:
        with self._lock:
            return sum(a.body_bytes for a in self.answers)

    def count(self, method: str | None = None, path_end: str = "") -> int:
        with self._lock:
            return sum(
                1
                for a in self.answers
                if (method is None or a.method == method) and a.path.endswith(path_end)
            )

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.matches(method, path):
                    fault.times -= 1
                    return fault
        return None

    def _record(self, answer: Answer) -> None:
        with self._lock:
            self.answers.append(answer)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class _RangeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as object stores serve
    owner: RangeHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _serve(self, head: bool) -> None:
        owner = self.owner
        method = "HEAD" if head else "GET"
        path = unquote(urlsplit(self.path).path).lstrip("/")
        asked = self.headers.get("Range")
        fault = owner._take_fault(method, path)
        if fault is not None and not fault.drop:
            return self._reply(method, path, fault.status, b"injected failure", head, asked)
        if any(path.startswith(prefix) for prefix in owner.denied):
            return self._reply(method, path, 403, b"forbidden", head, asked)
        data = owner.objects.get(path)
        if data is None:
            return self._reply(method, path, 404, b"not found", head, asked)
        etag = f'"{hashlib.sha1(data).hexdigest()}"'
        wanted = self.headers.get("If-Match")
        if wanted is not None and wanted not in (etag, "*"):
            return self._reply(method, path, 412, b"precondition failed", head, asked)
        status, start, end = 200, 0, len(data)
        match = _RANGE.match(asked or "")
        if match and not owner.ignore_ranges:
            first, last = match.groups()
            if first:
                start, end = int(first), min(len(data), int(last) + 1 if last else len(data))
            else:  # a suffix: the last N bytes
                start = max(0, len(data) - int(last))
            if start >= len(data):  # (an empty object has no byte to range over)
                extra = {"Content-Range": f"bytes */{len(data)}"}
                return self._reply(method, path, 416, b"", head, asked, extra)
            status = 206
        body = data[start:end]
        headers = {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        if owner.send_etags:
            headers["ETag"] = etag
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(data)}"
        if fault is not None and fault.drop and not head:
            half = body[: len(body) // 2]
            owner._record(Answer(method, path, -1, len(half), asked))
            self._send_head(status, len(body), headers)
            self.wfile.write(half)
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return None
        return self._reply(method, path, status, body, head, asked, headers)

    def _send_head(self, status: int, length: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def _reply(
        self,
        method: str,
        path: str,
        status: int,
        body: bytes,
        head: bool,
        asked: str | None,
        headers: dict[str, str] | None = None,
    ) -> None:
        # Recorded before it is sent: a client that has the answer finds it counted.
        self.owner._record(Answer(method, path, status, 0 if head else len(body), asked))
        self._send_head(status, len(body), headers or {})
        if not head:
            self.wfile.write(body)


class CountingProxy:
    """A TCP proxy on 127.0.0.1 in front of ``target``, counting what passes (see the
    module docstring)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.bytes_down = 0  # server -> client: response headers and bodies
        self.requests: list[str] = []  # request lines ("GET /path HTTP/1.1")
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener = socket.create_server((LOCALHOST, 0))
        self.port = self._listener.getsockname()[1]
        self._stopping = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    def reset(self) -> None:
        with self._lock:
            self.bytes_down = 0
            self.requests.clear()

    def _accept(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            threading.Thread(target=self._pump_up, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump_down, args=(upstream, client), daemon=True).start()

    def _pump_up(self, client: socket.socket, upstream: socket.socket) -> None:
        pending = b""
        try:
            while data := client.recv(1 << 16):
                pending += data
                while b"\r\n\r\n" in pending:
                    head, pending = pending.split(b"\r\n\r\n", 1)
                    line = head.split(b"\r\n", 1)[0].decode("latin-1")
                    with self._lock:
                        self.requests.append(line)
                upstream.sendall(data)  # (after counting: the answer cannot come first)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                upstream.shutdown(socket.SHUT_WR)

    def _pump_down(self, upstream: socket.socket, client: socket.socket) -> None:
        try:
            while data := upstream.recv(1 << 16):
                with self._lock:
                    self.bytes_down += len(data)
                client.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.close()

    def stop(self) -> None:
        self._stopping = True
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
        self._thread.join(timeout=5)


@dataclass
class Exchange:
    """One request the :class:`RecordingProxy` passed on (or answered itself)."""

    method: str
    target: str  # path and query
    status: int
    sent: int  # request body bytes (an upload's size)
    received: int  # response body bytes


@dataclass
class Refusal:
    """Answer the next ``times`` requests that ``matches(method, target)`` selects with
    ``status`` and ``body`` instead of passing them on."""

    matches: Callable[[str, str], bool]
    times: int
    status: int
    body: bytes
    content_type: str


_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "te", "upgrade"}


class RecordingProxy:
    """An HTTP/1.1 reverse proxy on 127.0.0.1 in front of ``target`` (see the module).

    Request bodies are read whole (Content-Length or chunked) and passed on with their
    length; responses are passed back whole.  ``Expect: 100-continue`` is answered by the
    proxy.  Object stores that return upload URLs built from the Host header (the GCS
    emulator's resumable sessions) keep the client talking to the proxy.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.exchanges: list[Exchange] = []
        self.refusals: deque[Refusal] = deque()
        self._lock = threading.Lock()
        self._upstreams: set[http.client.HTTPConnection] = set()
        handler = type("Handler", (_ProxyHandler,), {"owner": self})
        self._server = ThreadingHTTPServer((LOCALHOST, 0), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    def refuse(
        self,
        matches: Callable[[str, str], bool],
        *,
        status: int,
        times: int = 1 << 30,
        body: bytes = b"",
        content_type: str = "application/xml",
    ) -> None:
        with self._lock:
            self.refusals.append(Refusal(matches, times, status, body, content_type))

    def reset(self) -> None:
        """Forgets the exchanges and refusals."""
        with self._lock:
            self.exchanges.clear()
            self.refusals.clear()

    def log(self) -> list[Exchange]:
        with self._lock:
            return list(self.exchanges)

    def _take_refusal(self, method: str, target: str) -> Refusal | None:
        with self._lock:
            for refusal in self.refusals:
                if refusal.times > 0 and refusal.matches(method, target):
                    refusal.times -= 1
                    return refusal
        return None

    def _record(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        with self._lock:  # (servers that wait for their clients to hang up stop at once)
            upstreams, self._upstreams = list(self._upstreams), set()
        for connection in upstreams:
            connection.close()


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: RecordingProxy
    _upstream: http.client.HTTPConnection | None = None

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._proxy()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_GET

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _proxy(self) -> None:
        try:
            self._pass_on()
        except OSError:  # the client went away (a killed writer): nothing to answer
            self.close_connection = True

    def _pass_on(self) -> None:
        owner = self.owner
        method, target = self.command, self.path
        body = self._read_body()
        refusal = owner._take_refusal(method, target)
        if refusal is not None:
            owner._record(Exchange(method, target, refusal.status, len(body), 0))
            self.send_response(refusal.status)
            self.send_header("Content-Type", refusal.content_type)
            self.send_header("Content-Length", str(len(refusal.body)))
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(refusal.body)
            return
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP]
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        if body or method in ("PUT", "POST", "PATCH"):
            headers.append(("Content-Length", str(len(body))))
        for attempt in range(2):  # (a kept-alive upstream connection may have been closed)
            if self._upstream is None:
                self._upstream = http.client.HTTPConnection(*owner.target, timeout=60)
                with owner._lock:
                    owner._upstreams.add(self._upstream)
            try:
                self._upstream.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
                for key, value in headers:
                    self._upstream.putheader(key, value)
                self._upstream.endheaders(body or None)
                response = self._upstream.getresponse()
                data = response.read()
                break
            except (OSError, http.client.HTTPException):
                self._upstream.close()
                self._upstream = None
                if attempt:
                    raise
        owner._record(Exchange(method, target, response.status, len(body), len(data)))
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() in _HOP_BY_HOP or (key.lower() == "content-length" and method != "HEAD"):
                continue
            self.send_header(key, value)
        if method != "HEAD":
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            self.end_headers()


def start_moto() -> Any:
    """moto's S3 server (ThreadedMotoServer) on 127.0.0.1; ``.stop()`` it."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address=LOCALHOST, port=0, verbose=False)
    server.start()
    return server


def start_gcs_emulator(port: int) -> Any:
    """gcp-storage-emulator (in memory) on 127.0.0.1:``port``; ``.stop()`` it."""
    from gcp_storage_emulator.server import create_server

    server = create_server(LOCALHOST, port, in_memory=True)
    server.start()
    return server
