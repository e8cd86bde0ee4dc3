"""The demo's "mini web": a local HTTP mirror on 127.0.0.1 answering every image URL from bundled files.

The downloader's `--mirror URL` sends a request for `https://host/path?q` to `{mirror}/https/host/path?q`.
The mini web answers each such request deterministically from the original URL: a stable hash picks a
bucket (404, 500, garbage bytes, an HTML page, a tiny image, a truncated image, `X-Robots-Tag: noai`, a
redirect) or, for most URLs, one bundled photo-like image. So the demo's funnel shows every kind of drop.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from types import TracebackType
from urllib.parse import unquote

from openpairs.demo.captions import CaptionedImages

IMAGES = "data/images"
REDIRECTED = "/__moved__"
POLICY_FILES = ("/robots.txt", "/.well-known/tdmrep.json", "/ai.txt")  # the mini web has none: 404
MIME = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
# Buckets of sha256(url) % 100: the kind of answer a URL gets. The rest get an image.
BUCKETS = (
    (range(0, 4), "http_404"),
    (range(4, 6), "http_500"),
    (range(6, 8), "garbage"),
    (range(8, 10), "html"),
    (range(10, 12), "tiny"),
    (range(12, 14), "truncated"),
    (range(14, 17), "noai"),
    (range(17, 19), "redirect"),
)
HTML_PAGE = (  # over 5 KB, like a real page, so it fails at decoding rather than at the size check
    b"<!doctype html><html><head><title>Not an image</title></head><body>"
    + b"<p>This address serves a web page, not the image its link promised.</p>" * 80
    + b"</body></html>"
)


def outcome(url: str) -> str:
    """What the mini web answers for the original `url`: a bucket name or `image`."""
    bucket = int.from_bytes(hashlib.sha256(url.encode("utf-8")).digest()[:8], "big") % 100
    for numbers, kind in BUCKETS:
        if bucket in numbers:
            return kind
    return "image"


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, headers and body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


class Files:
    """The bundled images: the pool of normal ones and the special tiny / truncated ones."""

    def __init__(self, captions: CaptionedImages | None = None) -> None:
        self.captions = captions

    @cached_property
    def pool(self) -> list[tuple[str, bytes]]:
        """(name, bytes) of the normal images, sorted by name."""
        root = resources.files("openpairs.demo").joinpath(IMAGES)
        entries = [e for e in root.iterdir() if e.is_file() and e.name.rsplit(".", 1)[-1] in MIME]
        return [(e.name, e.read_bytes()) for e in sorted(entries, key=lambda e: e.name)]

    def special(self, name: str) -> bytes:
        """A file under images/special/."""
        return resources.files("openpairs.demo").joinpath(f"{IMAGES}/special/{name}").read_bytes()

    def image_for(self, url: str) -> tuple[str, bytes]:
        """The pool image a URL maps to (a stable hash of the URL)."""
        digest = int.from_bytes(hashlib.sha256(b"image:" + url.encode("utf-8")).digest()[:8], "big")
        return self.pool[digest % len(self.pool)]


def _image(name: str, data: bytes, extra: tuple[tuple[str, str], ...] = ()) -> Answer:
    mime = MIME[name.rsplit(".", 1)[-1]]
    return Answer(200, (("Content-Type", mime), *extra), data)


def answer(files: Files, url: str) -> Answer:
    """The mini web's answer for the original `url` (pure: the same URL always gets the same answer)."""
    kind = outcome(url.replace(REDIRECTED, "", 1))
    if REDIRECTED in url:  # the target of a redirect is always a plain image
        kind = "image"
    if kind == "http_404":
        return Answer(404, (("Content-Type", "text/plain"),), b"not found")
    if kind == "http_500":
        return Answer(500, (("Content-Type", "text/plain"),), b"internal error")
    if kind == "garbage":
        body = hashlib.sha256(url.encode()).digest() * 400  # 12.8 KB that decode as nothing
        return Answer(200, (("Content-Type", "image/jpeg"),), body)
    if kind == "html":
        return Answer(200, (("Content-Type", "text/html; charset=utf-8"),), HTML_PAGE)
    if kind == "tiny":
        return _image("tiny.jpg", files.special("tiny-48x36.jpg"))
    if kind == "truncated":
        return _image("truncated.jpg", files.special("truncated-640x480.jpg"))
    if kind == "redirect":
        scheme, rest = url.split("://", 1)
        host, _, path = rest.partition("/")
        return Answer(302, (("Location", f"{scheme}://{host}{REDIRECTED}/{path}"),), b"")
    name, data = files.image_for(url)
    if files.captions is not None:
        data = files.captions.render(url.replace(REDIRECTED, "", 1), name, data)
    extra = (("X-Robots-Tag", "noai"),) if kind == "noai" else ()
    return _image(name, data, extra)


def original_url(path: str) -> str | None:
    """`/https/host/path?q` (a mirror request path) back to `https://host/path?q`; None if malformed."""
    scheme, _, rest = path.lstrip("/").partition("/")
    if scheme not in ("http", "https") or not rest or rest.startswith("/"):
        return None
    return f"{scheme}://{rest}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        """Answer a mirror request from the original URL it encodes."""
        url = original_url(self.path)
        if url is None:
            result = Answer(400, (("Content-Type", "text/plain"),), b"expected /{scheme}/{host}/{path}")
        elif unquote(url.split("?", 1)[0]).endswith(POLICY_FILES):
            result = Answer(404, (("Content-Type", "text/plain"),), b"no such policy file")
        else:
            result = answer(self.server.files, url)
        self.send_response(result.status)
        for name, value in result.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(result.body)))
        self.end_headers()
        self.wfile.write(result.body)
        self.server.count(result.status)

    def log_message(self, format: str, *args: object) -> None:
        """Silence per-request logging."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, files: Files) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files = files
        self.requests: dict[int, int] = {}
        self._lock = threading.Lock()

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up mid-request is normal (the downloader cancels); stay quiet."""

    def count(self, status: int) -> None:
        """Count one answered request by status."""
        with self._lock:
            self.requests[status] = self.requests.get(status, 0) + 1


class MiniWeb:
    """`with MiniWeb() as web:` serves the mirror at `web.url` (127.0.0.1, an ephemeral port).

    With `captions_from=DIR`, images carry the caption extract found for their URL (see captions.py)."""

    def __init__(self, captions_from: str | None = None) -> None:
        self.files = Files(CaptionedImages(captions_from) if captions_from else None)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The mirror's base URL, e.g. http://127.0.0.1:41234."""
        if self._server is None:
            raise RuntimeError("the mini web is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> dict[int, int]:
        """Requests answered so far, by HTTP status."""
        return dict(self._server.requests) if self._server else {}

    def start(self) -> MiniWeb:
        """Start serving in a background thread."""
        self._server = _Server(self.files)
        self._thread = threading.Thread(target=self._server.serve_forever, name="miniweb", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> MiniWeb:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
