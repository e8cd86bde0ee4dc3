"""The fetcher against a real hostile server on 127.0.0.1: guard at every hop, deadlines, caps, retries."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
from aiohttp import web

from openpairs.net.body import DRAIN_SECONDS
from openpairs.net.config import FetchConfig, FetchResult
from openpairs.net.fetch import Fetcher, mirror_url, unmirror_url
from tests.fixtures.images import fixture_bytes
from tests.fixtures.webserver import ImageServer, image_server_fixture

image_server = pytest.fixture(scope="module")(image_server_fixture)

FAST = {"timeout": 2.0, "read_timeout": 1.0, "deadline": 8.0, "backoff_base": 0.01, "host_max_failures": 1000}


def fetch_all(config: FetchConfig, urls: list[str]) -> list[FetchResult]:
    """Fetch `urls` concurrently with one Fetcher."""

    async def run() -> list[FetchResult]:
        async with Fetcher(config) as fetcher:
            return list(await asyncio.gather(*(fetcher.fetch(u) for u in urls)))

    return asyncio.run(run())


def local(**overrides: object) -> FetchConfig:
    """A config that may reach 127.0.0.1 only."""
    return FetchConfig(allow_addresses=("127.0.0.1",), **{**FAST, **overrides})  # type: ignore[arg-type]


def test_redirect_hop_to_another_loopback_address_is_refused(image_server: ImageServer) -> None:
    elsewhere = f"http://127.0.0.2:{image_server.port}/img/webp"
    direct, redirected, metadata = fetch_all(
        local(),
        [
            image_server.url("/img/webp"),
            image_server.url(f"/redirect-to?url={elsewhere}"),
            image_server.url("/redirect-to?url=http://169.254.169.254/latest/meta-data/"),
        ],
    )
    assert direct.status == "ok" and direct.body == fixture_bytes("webp")
    assert redirected.status == "blocked_address" and "127.0.0.2" in redirected.error
    assert metadata.status == "blocked_address" and "link-local" in metadata.error


def test_guard_without_allowance_refuses_loopback_before_any_request(image_server: ImageServer) -> None:
    image_server.reset_counts()
    port = image_server.port
    urls = [
        image_server.url("/img/webp"),
        f"http://localhost:{port}/img/webp",
        f"http://2130706433:{port}/img/webp",
        f"http://0177.0.0.1:{port}/img/webp",
        f"http://[::ffff:127.0.0.1]:{port}/img/webp",
    ]
    results = fetch_all(FetchConfig(**FAST), urls)  # type: ignore[arg-type]
    assert [r.status for r in results[:2]] == ["blocked_address"] * 2
    assert all(r.status in ("blocked_address", "invalid_url") for r in results)
    assert image_server.total() == 0


def test_redirects_are_followed_up_to_five(image_server: ImageServer) -> None:
    five, six = fetch_all(local(), [image_server.url("/redirect/5"), image_server.url("/redirect/6")])
    assert five.status == "ok" and five.redirects == 5
    assert six.status == "too_many_redirects"


def test_deadlines_end_slow_drip_and_hang(image_server: ImageServer) -> None:
    drip, hang, good = fetch_all(
        local(retries=0),
        [image_server.url("/slow-drip"), image_server.url("/hang"), image_server.url("/img/png_rgb")],
    )
    assert drip.status == "timeout" and hang.status == "timeout"
    assert good.status == "ok" and good.body == fixture_bytes("png_rgb")


def test_body_cap_aborts_with_and_without_length(image_server: ImageServer) -> None:
    sized, chunked = fetch_all(
        local(max_bytes=1_000_000), [image_server.url("/big"), image_server.url("/big-chunked")]
    )
    assert sized.status == "body_too_large" and "Content-Length" in sized.error
    assert chunked.status == "body_too_large" and chunked.body is None


def test_retries_transient_errors_but_not_404(image_server: ImageServer) -> None:
    image_server.reset_counts()
    flaky, throttled, missing, server_error = fetch_all(
        local(retries=2),
        [
            image_server.url("/flaky?id=f1"),
            image_server.url("/retry-after/2?id=r1"),
            image_server.url("/status/404"),
            image_server.url("/status/503"),
        ],
    )
    assert flaky.status == "ok" and flaky.attempts == 2
    assert throttled.status == "ok" and throttled.attempts == 3  # waited Retry-After: 1 twice
    assert missing.status == "http_404" and image_server.count("/status/404") == 1
    assert server_error.status == "http_503" and image_server.count("/status/503") == 3


def _one_by_one(config: FetchConfig, urls: list[str]) -> tuple[list[FetchResult], float]:
    """Fetch `urls` one after another with one Fetcher; the results and the seconds it took."""

    async def run() -> list[FetchResult]:
        async with Fetcher(config) as fetcher:
            return [await fetcher.fetch(url) for url in urls]

    start = time.monotonic()
    results = asyncio.run(run())
    return results, time.monotonic() - start


def test_a_refused_answer_with_a_short_body_leaves_its_connection_to_the_next_request() -> None:
    """~0.5 s: a 404 whose body comes 0.2 s after its headers, a redirect and an image go over one connection;
    a body later than DRAIN_SECONDS is not waited for: the answer keeps its status, its connection is closed."""
    with ImageServer() as server:
        late = server.url("/late-status/404?after=0.2")
        urls = [late, server.url("/redirect/1?image=webp"), server.url("/img/png_rgb")]
        results, _ = _one_by_one(local(per_host=1, connections=1, retries=0), urls)
        assert [r.status for r in results] == ["http_404", "ok", "ok"]
        assert server.connections_made == 1
        later = server.url(f"/late-status/503?after={DRAIN_SECONDS + 9}")
        results, seconds = _one_by_one(local(per_host=1, retries=0), [later, server.url("/img/webp")])
        assert [r.status for r in results] == ["http_503", "ok"]
        assert server.connections_made == 3 and seconds < DRAIN_SECONDS + 4


def test_retry_after_beyond_cap_is_not_waited_for(image_server: ImageServer) -> None:
    (result,) = fetch_all(local(retry_after_cap=0.5), [image_server.url("/retry-after/5?id=r2")])
    assert result.status == "http_429" and result.attempts == 1


def test_opt_out_headers(image_server: ImageServer) -> None:
    urls = [image_server.url(p) for p in ("/noai", "/noimageai", "/bot-noai", "/otherbot-noai")]
    urls.append(image_server.url("/x-robots-tag?value=mybot:%20noimageindex"))
    results = fetch_all(local(user_agent_token="mybot"), urls)
    assert [r.status for r in results] == ["opted_out", "opted_out", "opted_out", "ok", "opted_out"]
    assert all(r.body is None for r in results if r.status == "opted_out")


def test_robots_txt_is_fetched_once_and_applied(image_server: ImageServer) -> None:
    image_server.reset_counts()
    urls = [
        image_server.url("/private/webp"),
        image_server.url("/img/webp"),
        image_server.url("/private/png_rgb"),
    ]
    results = fetch_all(local(), urls)  # robots.txt is honoured by default
    assert [r.status for r in results] == ["opted_out", "ok", "opted_out"]
    assert [r.opt_out_signal for r in results] == ["robots.txt", None, "robots.txt"]
    assert image_server.count("/robots.txt") == 1
    assert image_server.count("/private/webp") == 0


@pytest.fixture
def mirror() -> Iterator[str]:
    """A tiny mirror origin: /http/example.com/... with an image and a redirect to another mirrored host."""

    async def image(request: web.Request) -> web.Response:
        return web.Response(body=fixture_bytes("jpeg_baseline"), content_type="image/jpeg")

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://other.example/img/a.jpg?x=1")

    app = web.Application()
    app.router.add_get("/http/example.com/img/a.jpg", image)
    app.router.add_get("/http/other.example/img/a.jpg", image)
    app.router.add_get("/http/example.com/moved", moved)
    runner = web.AppRunner(app)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)
    loop.close()


def test_mirror_serves_the_original_urls(mirror: str) -> None:
    direct, moved, missing = fetch_all(
        FetchConfig(mirror=mirror, **FAST),  # type: ignore[arg-type]
        ["http://example.com/img/a.jpg", "http://example.com/moved", "http://example.com/nothing"],
    )
    assert direct.status == "ok" and direct.body == fixture_bytes("jpeg_baseline")
    assert moved.status == "ok" and moved.redirects == 1
    assert missing.status == "http_404"


def test_mirror_url_mapping() -> None:
    from yarl import URL

    mapped = mirror_url("http://127.0.0.1:9/", URL("https://a.example:8443/p/q.jpg?s=1&t=%20"))
    assert str(mapped) == "http://127.0.0.1:9/https/a.example:8443/p/q.jpg?s=1&t=%20"
    assert str(unmirror_url("http://127.0.0.1:9", mapped)) == "https://a.example:8443/p/q.jpg?s=1&t=%20"
    assert unmirror_url("http://127.0.0.1:9", URL("http://elsewhere/x")) is None
