"""A download mirror on 127.0.0.1 that answers each original URL with the body a test registered for it."""

from __future__ import annotations

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from openpairs.demo.miniweb import original_url


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: BodyServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        """The registered body of the original URL (200), else 404."""
        url = original_url(self.path) or ""
        body = self.server.owner.answered(url)
        self.send_response(404 if body is None else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet."""


class BodyServer:
    """`--mirror` target: `bodies[url]` for each original URL registered, 404 for any other."""

    def __init__(self) -> None:
        self.bodies: dict[str, bytes] = {}
        self.served: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05})

    @property
    def mirror(self) -> str:
        """The mirror URL to give the downloader."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def answered(self, url: str) -> bytes | None:
        """The body for `url` (counted as served), or None."""
        with self._lock:
            body = self.bodies.get(url)
            if body is not None:
                self.served[url] += 1
            return body

    def __enter__(self) -> BodyServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
