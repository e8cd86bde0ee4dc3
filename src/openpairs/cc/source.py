"""Open WAT inputs as byte streams: local paths, s3:// (fsspec) and http(s):// with retries and resume.

Common Crawl answers busy periods with 503 SlowDown (and sometimes 403); we back off exponentially and
resume an interrupted body with a Range request from the byte we had reached, so a WAT is streamed once,
never held in memory whole.
"""

from __future__ import annotations

import io
import random
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.client import HTTPResponse
from typing import BinaryIO

from openpairs.io import fs as ofs

USER_AGENT = "openpairs/0.1 (+https://github.com/openpairs/openpairs)"
RETRY_STATUSES = frozenset({403, 408, 429, 500, 502, 503, 504})
CC_DATA = "https://data.commoncrawl.org/"


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts per request and the exponential backoff between them."""

    attempts: int = 8
    base_delay: float = 1.0
    max_delay: float = 60.0
    timeout: float = 60.0

    def delay(self, attempt: int) -> float:
        """Backoff before retry number `attempt` (1-based), with jitter."""
        return min(self.max_delay, self.base_delay * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)


class InputError(Exception):
    """A whole input could not be read (missing file, HTTP error after retries, ...)."""


@contextmanager
def open_input(path: str, policy: RetryPolicy | None = None) -> Iterator[BinaryIO]:
    """A binary stream over `path`, whatever its scheme; InputError when it cannot be opened."""
    if path.startswith(ofs.REMOTE_PREFIXES):
        stream: BinaryIO = ResumingHTTPStream(path, policy or RetryPolicy())  # type: ignore[assignment]
    else:
        try:
            stream = ofs.open_file(path, "rb")  # type: ignore[assignment]
        except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            raise InputError(f"cannot open {path}: {exc}") from exc
    try:
        yield stream
    finally:
        stream.close()


class ResumingHTTPStream(io.RawIOBase):
    """A streamed HTTP GET that retries with backoff and resumes where it stopped with a Range header."""

    def __init__(self, url: str, policy: RetryPolicy) -> None:
        self.url = url
        self.policy = policy
        self.position = 0
        self.retries = 0
        self._response: HTTPResponse | None = None

    def readable(self) -> bool:
        """Always readable."""
        return True

    def read(self, size: int = -1) -> bytes:
        """Read up to `size` bytes, reconnecting and resuming on transient failures."""
        while True:
            try:
                response = self._response or self._connect()
                data = response.read() if size < 0 else response.read(size)
                if not data and response.length:  # closed before Content-Length was reached
                    raise ConnectionError(f"connection closed with {response.length} bytes to go")
                self.position += len(data)
                self.retries = 0
                return data
            except (OSError, urllib.error.URLError) as exc:
                self._drop()
                self._wait(f"read failed at byte {self.position}: {exc}")

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        """Fill `buffer` from the stream."""
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        """Close the connection."""
        self._drop()
        super().close()

    def _connect(self) -> HTTPResponse:
        headers = {"User-Agent": USER_AGENT}
        if self.position:
            headers["Range"] = f"bytes={self.position}-"
        while True:
            request = urllib.request.Request(self.url, headers=headers)
            try:
                response: HTTPResponse = urllib.request.urlopen(request, timeout=self.policy.timeout)
            except urllib.error.HTTPError as exc:
                if exc.code not in RETRY_STATUSES:
                    raise InputError(f"{self.url}: HTTP {exc.code} {exc.reason}") from None
                self._wait(f"HTTP {exc.code}")
                continue
            except (OSError, urllib.error.URLError) as exc:
                self._wait(f"connection failed: {exc}")
                continue
            if self.position and response.status != 206:
                response.close()
                raise InputError(f"{self.url}: server ignored the Range request; cannot resume")
            self._response = response
            return response

    def _wait(self, why: str) -> None:
        self.retries += 1
        if self.retries >= self.policy.attempts:
            raise InputError(f"{self.url}: giving up after {self.retries} attempts ({why})")
        time.sleep(self.policy.delay(self.retries))

    def _drop(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None


def crawl_wat_urls(
    crawl: str, count: int | None, wat_range: tuple[int, int] | None, base: str = CC_DATA
) -> list[str]:
    """WAT URLs of a crawl (e.g. CC-MAIN-2024-22) from its wat.paths.gz: the first `count` or a range A:B."""
    import gzip

    base = base if base.endswith("/") else base + "/"
    listing = f"{base}crawl-data/{crawl}/wat.paths.gz"
    with open_input(listing) as stream:
        lines = gzip.decompress(stream.read()).decode("utf-8").split()
    start, stop = wat_range if wat_range else (0, count if count is not None else len(lines))
    return [base + line for line in lines[start:stop]]
