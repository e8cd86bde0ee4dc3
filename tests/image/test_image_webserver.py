"""The shared hostile image server (tests/fixtures/webserver.py) answers each route as documented."""

from __future__ import annotations

import http.client
import socket

import pytest

from tests.fixtures import images as fx
from tests.fixtures.webserver import ImageServer, image_server

__all__ = ["image_server"]


def get(server: ImageServer, path: str, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """One GET without following redirects: (status, headers, body)."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"User-Agent": "openpairs-test"})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("name", list(fx.FIXTURES))
def test_images_are_served_with_their_type(image_server: ImageServer, name: str) -> None:
    status, headers, body = get(image_server, f"/img/{name}")
    assert status == 200
    assert body == fx.fixture_bytes(name)
    assert headers["Content-Type"] == fx.content_type(name)


def test_status_retry_flaky_and_counts(image_server: ImageServer) -> None:
    assert get(image_server, "/status/404")[0] == 404
    assert get(image_server, "/status/500")[0] == 500
    codes = [get(image_server, "/retry-after/2?id=a")[:2] for _ in range(3)]
    assert [code for code, _ in codes] == [429, 429, 200]
    assert codes[0][1]["Retry-After"] == "1"
    assert [get(image_server, "/flaky?id=a")[0] for _ in range(2)] == [500, 200]
    assert get(image_server, "/flaky?id=b")[0] == 500  # separate state per query string
    assert image_server.count("/retry-after/2?id=a") == 3
    assert image_server.count("/flaky") == 3
    assert image_server.count("/never-asked") == 0


def test_redirects(image_server: ImageServer) -> None:
    status, headers, _ = get(image_server, "/redirect/3?image=webp")
    assert status == 302 and headers["Location"] == "/redirect/2?image=webp"
    status, headers, _ = get(image_server, "/redirect/1?image=webp")
    assert headers["Location"] == "/img/webp"
    assert get(image_server, "/redirect/0?image=webp")[2] == fx.webp()
    target = f"http://127.0.0.2:{image_server.port}/img/webp"
    status, headers, _ = get(image_server, f"/redirect-to?url={target}")
    assert status == 302 and headers["Location"] == target


@pytest.mark.parametrize(
    ("path", "tag"),
    [
        ("/noai", "noai"),
        ("/noimageai", "noimageai"),
        ("/bot-noai", "openpairs: noai"),
        ("/otherbot-noai", "otherbot: noai"),
        ("/x-robots-tag?value=noindex", "noindex"),
    ],
)
def test_robots_tags(image_server: ImageServer, path: str, tag: str) -> None:
    status, headers, body = get(image_server, path)
    assert (status, headers["X-Robots-Tag"], body) == (200, tag, fx.jpeg_baseline())


def test_robots_txt_and_private(image_server: ImageServer) -> None:
    status, _, body = get(image_server, "/robots.txt")
    assert status == 200 and b"Disallow: /private/" in body
    assert get(image_server, "/private/png_rgb")[2] == fx.png_rgb()


def test_big_body_announces_its_size(image_server: ImageServer) -> None:
    conn = http.client.HTTPConnection(image_server.host, image_server.port, timeout=5)
    conn.request("GET", "/big")
    response = conn.getresponse()
    assert int(response.headers["Content-Length"]) > 25_000_000
    assert len(response.read(1_000_000)) == 1_000_000
    conn.close()


def test_slow_drip_and_hang_hold_the_client() -> None:
    with ImageServer() as server:
        with pytest.raises(TimeoutError):
            get(server, "/hang", timeout=0.3)
        conn = http.client.HTTPConnection(server.host, server.port, timeout=0.3)
        conn.request("GET", "/slow-drip")
        response = conn.getresponse()
        assert response.status == 200
        with pytest.raises((TimeoutError, socket.timeout)):
            response.read()
        conn.close()
    assert not server._thread.is_alive()  # stop() returned with the serving thread finished
