"""The mini web alone, on loopback: every bucket answers as documented, deterministically."""

from __future__ import annotations

import io
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from PIL import Image

from openpairs.demo.miniweb import MiniWeb, original_url, outcome

KINDS = ("http_404", "http_500", "garbage", "html", "tiny", "truncated", "noai", "redirect", "image")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


OPENER = urllib.request.build_opener(_NoRedirect)


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with OPENER.open(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _mirror(web: MiniWeb, url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{web.url}/{scheme}/{rest}"


def _decodes(body: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(body)) as img:
            img.load()
        return True
    except Exception:
        return False


@pytest.fixture(scope="module")
def web() -> Iterator[MiniWeb]:
    with MiniWeb() as server:
        yield server


@pytest.fixture(scope="module")
def examples() -> dict[str, str]:
    found: dict[str, str] = {}
    for i in range(2000):
        url = f"https://img{i % 7}.example.org/photos/{i}.jpg?size=l"
        found.setdefault(outcome(url), url)
    assert set(found) == set(KINDS)
    return found


def test_every_bucket_answers_as_documented(web: MiniWeb, examples: dict[str, str]) -> None:
    got = {kind: _get(_mirror(web, url)) for kind, url in examples.items()}
    assert got["http_404"][0] == 404 and got["http_500"][0] == 500
    status, headers, body = got["garbage"]
    assert status == 200 and headers["Content-Type"] == "image/jpeg" and not _decodes(body)
    assert got["html"][0] == 200 and got["html"][1]["Content-Type"].startswith("text/html")
    assert got["tiny"][0] == 200 and len(got["tiny"][2]) < 5000 and _decodes(got["tiny"][2])
    assert got["truncated"][0] == 200 and not _decodes(got["truncated"][2])
    assert got["noai"][1]["X-Robots-Tag"] == "noai" and _decodes(got["noai"][2])
    status, headers, body = got["image"]
    assert (
        status == 200 and headers["Content-Type"].startswith("image/") and len(body) > 5000 and _decodes(body)
    )
    assert int(headers["Content-Length"]) == len(body)


def test_redirect_leads_to_an_image_and_answers_repeat(web: MiniWeb, examples: dict[str, str]) -> None:
    status, headers, _ = _get(_mirror(web, examples["redirect"]))
    assert status == 302
    location = headers["Location"]  # a path on the mini web itself: a client that follows it stays local
    assert location.startswith("/https/") and "/__moved__/" in location
    status, _, body = _get(web.url + location)
    assert status == 200 and _decodes(body)
    assert _get(_mirror(web, examples["image"]))[2] == _get(_mirror(web, examples["image"]))[2]


def test_malformed_paths_and_robots(web: MiniWeb) -> None:
    assert _get(f"{web.url}/ftp/example.org/x.jpg")[0] == 400
    assert _get(f"{web.url}/https/example.org/robots.txt")[0] == 404
    assert original_url("/https/example.org/a/b.jpg?x=1") == "https://example.org/a/b.jpg?x=1"
    assert original_url("/nothing") is None
    assert web.requests.get(400, 0) >= 1


def test_stop_closes_the_port() -> None:
    web = MiniWeb().start()
    url = web.url
    assert url.startswith("http://127.0.0.1:")
    web.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url}/https/example.org/a.jpg", timeout=5)
    with pytest.raises(RuntimeError):
        _ = web.url
