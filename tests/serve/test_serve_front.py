"""clip-retrieval's own `front` page (from the installed package, unchanged) searching an openpairs server."""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from openpairs.index.build import IndexConfig, build_index
from openpairs.serve.app import create_app
from tests.fixtures.embeddings import make_dataset
from tests.fixtures.webserver import ImageServer
from tests.serve.conftest import DIM, Dataset, LiveServer
from tests.serve.test_serve_page import ARGS, ARTIFACTS, CHROMIUM


def _front_build() -> Path:
    spec = importlib.util.find_spec("clip_retrieval")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("clip-retrieval is not installed: pip install --no-deps clip-retrieval==2.45.0")
    build = Path(next(iter(spec.submodule_search_locations))).parent / "front" / "build"
    if not (build / "index.html").exists():
        pytest.fail(f"clip-retrieval's front build is missing at {build}")
    return build


class _FrontHandler(SimpleHTTPRequestHandler):
    config: bytes = b"{}"

    def do_GET(self) -> None:
        if self.path.split("?")[0] == "/config.json":
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(self.config)))
            self.end_headers()
            self.wfile.write(self.config)
            return
        super().do_GET()

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture(scope="module")
def backend(
    dataset: Dataset, image_server: ImageServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An openpairs server whose result URLs point at real images on the local image server."""
    root = tmp_path_factory.mktemp("front-data")
    template = image_server.url("/img/jpeg_baseline") + "?id={}"
    make_dataset(str(root), "openpairs", shards=1, rows=200, dim=DIM, url_template=template)
    build_index(str(root), str(root / "index"), IndexConfig(tune_queries=20))
    config = dataset.config(index_dir=str(root / "index"), name="front-test")
    with LiveServer(create_app(config)) as server:
        yield server.url


@pytest.fixture(scope="module")
def front(backend: str) -> Iterator[str]:
    """clip-retrieval's front build served as static files, its config.json pointing at `backend`."""
    handler = type("Handler", (_FrontHandler,), {"config": json.dumps({"defaultBackend": backend}).encode()})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(_front_build())))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_clip_retrieval_front_shows_our_results(front: str, backend: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        calls: list[str] = []
        page.on("request", lambda r: calls.append(r.url) if r.url.startswith(backend) else None)
        page.goto(f"{front}/?back={backend}&index=front-test&query=a+small+boat")
        page.wait_for_function(
            "() => { const f = document.querySelector('clip-front'); return f && f.shadowRoot &&"
            " f.shadowRoot.querySelectorAll('img[src*=\"jpeg_baseline\"]').length >= 5; }",
            timeout=30_000,
        )
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "clip_retrieval_front.png"))
        browser.close()
    assert any(url.endswith("/indices-list") for url in calls)
    assert any(url.endswith("/knn-service") for url in calls)
