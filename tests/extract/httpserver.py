"""A small HTTP server on 127.0.0.1 that serves files with Range support and scripted failures."""

from __future__ import annotations

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FlakyFileServer:
    """Serves `files` (path -> bytes); `fail[path]` = number of 503s to answer first; `cut[path]` = bytes
    after which the first full response is cut off (connection closed)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.fail: Counter[str] = Counter()
        self.cut: dict[str, int] = {}
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.requests.append((self.path, self.headers.get("Range")))
                server.answer(self)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        """http://127.0.0.1:PORT/"""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/"

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        """Serve one request according to the script."""
        path = handler.path.lstrip("/")
        if self.fail[path] > 0:
            self.fail[path] -= 1
            handler.send_response(503, "Slow Down")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        if path not in self.files:
            handler.send_error(404)
            return
        body = self.files[path]
        start = (
            int(handler.headers["Range"].split("=")[1].split("-")[0]) if handler.headers.get("Range") else 0
        )
        handler.send_response(206 if start else 200)
        handler.send_header("Content-Length", str(len(body) - start))
        handler.end_headers()
        limit = self.cut.pop(path, None)
        if limit is not None and not start:
            handler.wfile.write(body[:limit])
            handler.wfile.flush()
            handler.close_connection = True
            return
        handler.wfile.write(body[start:])

    def __enter__(self) -> FlakyFileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
