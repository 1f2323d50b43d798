"""The remote benchmark's servers, each run in its own process and counting what it sends.

``python remote_servers.py s3 PORT``: moto's S3 server (its WSGI application, as
``moto_server`` runs it) behind a counting middleware.
``python remote_servers.py http PORT ROOT``: a static file server over the directory ROOT,
answering as static servers and object stores do: HEAD, GET with one ``Range`` (206, sent
with ``sendfile``), strong ETags from size and modification time (as nginx makes them),
``If-Match`` (412).

Both answer ``GET /__bench__/counts`` with JSON (requests answered, body bytes sent, the
largest body) and ``POST /__bench__/reset`` to start counting again; neither path reaches
the store.  A separate process, so that the server's work does not share the client's GIL:
on this machine the two still share two cores.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

COUNTS = "/__bench__/counts"
RESET = "/__bench__/reset"


class Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.requests: dict[str, int] = {}
        self.body_bytes = 0
        self.largest = 0

    def record(self, method: str, body_bytes: int) -> None:
        with self.lock:
            self.requests[method] = self.requests.get(method, 0) + 1
            self.body_bytes += body_bytes
            self.largest = max(self.largest, body_bytes)

    def as_json(self) -> bytes:
        with self.lock:
            counts = {
                "requests": sum(self.requests.values()),
                "by_method": dict(self.requests),
                "body_bytes": self.body_bytes,
                "largest_body": self.largest,
            }
        return json.dumps(counts).encode()


class CountingMiddleware:
    """WSGI: counts each answer's body bytes; serves the two ``/__bench__`` paths."""

    def __init__(self, app: Callable[..., Iterable[bytes]], counter: Counter) -> None:
        self.app = app
        self.counter = counter

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == COUNTS:
            body = self.counter.as_json()
            start_response("200 OK", [("Content-Length", str(len(body)))])
            return [body]
        if path == RESET:
            with self.counter.lock:
                self.counter.reset()
            start_response("204 No Content", [])
            return []
        return self._counted(environ["REQUEST_METHOD"], self.app(environ, start_response))

    def _counted(self, method: str, body: Iterable[bytes]) -> Iterator[bytes]:
        sent = 0
        try:
            for chunk in body:
                sent += len(chunk)
                yield chunk
        finally:
            self.counter.record(method, sent)
            close = getattr(body, "close", None)
            if close is not None:
                close()


def serve_s3(port: int) -> None:
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    # As moto's ThreadedMotoServer serves, in this process's main thread.
    app = CountingMiddleware(DomainDispatcherApplication(create_backend_app), Counter())
    make_server("127.0.0.1", port, app, True, request_handler=MotoRequestHandler).serve_forever()


_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class _StaticHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    root = ""
    counter = Counter()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        if self.path == RESET:
            with self.counter.lock:
                self.counter.reset()
        self._send(204 if self.path == RESET else 404, {}, 0)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        if self.path == COUNTS:
            body = self.counter.as_json()
            self._send(200, {}, len(body))
            self.wfile.write(body)
            return
        self._serve(head=False)

    def _send(self, status: int, headers: dict[str, str], length: int) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def _serve(self, head: bool) -> None:
        relative = unquote(urlsplit(self.path).path).lstrip("/")
        path = os.path.realpath(os.path.join(self.root, relative))
        if not path.startswith(self.root + os.sep) or not os.path.isfile(path):
            self.counter.record(self.command, 0)
            return self._send(404, {}, 0)
        with open(path, "rb") as file:
            stat = os.fstat(file.fileno())
            etag = f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'
            wanted = self.headers.get("If-Match")
            if wanted is not None and wanted not in (etag, "*"):
                self.counter.record(self.command, 0)
                return self._send(412, {}, 0)
            start, end, status = 0, stat.st_size, 200
            match = _RANGE.match(self.headers.get("Range") or "")
            if match:
                first, last = match.groups()
                if first:
                    start = int(first)
                    end = min(stat.st_size, int(last) + 1 if last else stat.st_size)
                else:
                    start = max(0, stat.st_size - int(last))
                if start >= stat.st_size:
                    self.counter.record(self.command, 0)
                    return self._send(416, {"Content-Range": f"bytes */{stat.st_size}"}, 0)
                status = 206
            headers = {"Accept-Ranges": "bytes", "ETag": etag}
            if status == 206:
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{stat.st_size}"
            self._send(status, headers, end - start)
            if not head:
                self.wfile.flush()
                self.connection.sendfile(file, start, end - start)
            self.counter.record(self.command, 0 if head else end - start)


def serve_http(port: int, root: str) -> None:
    handler = type("Handler", (_StaticHandler,), {"root": os.path.realpath(root)})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    kind, port_text, *rest = sys.argv[1:]
    if kind == "s3":
        serve_s3(int(port_text))
    elif kind == "http":
        serve_http(int(port_text), rest[0])
    else:
        raise SystemExit(f"unknown server {kind!r}: s3 or http")
