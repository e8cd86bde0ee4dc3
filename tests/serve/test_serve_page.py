"""The web page, driven end to end in headless Debian Chromium through Playwright."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.serve.conftest import LiveServer

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _unsafe(item: int) -> bool:
    """The fixture's unsafe rows (punsafe 0.9 or tagged NSFW)."""
    return item % 7 == 3 or item % 11 == 5


@pytest.fixture(scope="module")
def page() -> Iterator[object]:
    """A fresh Chromium page (Debian's chromium, never a downloaded browser)."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (make system-deps)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        yield context.new_page()
        browser.close()


def _ids(page: object) -> list[int]:
    cards = page.locator(".result")  # type: ignore[attr-defined]
    return [int(x) for x in cards.evaluate_all("cards => cards.map(c => c.dataset.id)")]


def _wait_results(page: object, before: str | None = None) -> None:
    page.wait_for_function(  # type: ignore[attr-defined]
        "before => document.querySelectorAll('.result').length > 0 && "
        "document.getElementById('status').textContent.includes('results') && "
        "(before === null || document.getElementById('results').innerHTML !== before)",
        arg=before,
    )


def test_search_page_end_to_end(page: object, live_server: LiveServer, tmp_path: Path) -> None:
    p = page  # playwright Page
    external: list[str] = []
    p.on(
        "request",
        lambda r: (
            external.append(r.url)
            if r.url.startswith(("https://", "http://"))
            and live_server.url not in r.url
            and "/img/" not in r.url
            else None
        ),
    )  # type: ignore[attr-defined]
    p.goto(live_server.url + "/")  # type: ignore[attr-defined]
    assert p.locator("#safe").is_checked()  # type: ignore[attr-defined]

    # type a query, see results; the query is kept in the URL
    p.fill("#q", "a photo of a dog")  # type: ignore[attr-defined]
    p.press("#q", "Enter")  # type: ignore[attr-defined]
    _wait_results(p)
    assert "q=a+photo+of+a+dog" in p.url  # type: ignore[attr-defined]
    safe_ids = _ids(p)
    assert len(safe_ids) == 40 and not any(_unsafe(i) for i in safe_ids)
    assert "similarity" in p.locator(".result .meta").first.inner_text()  # type: ignore[attr-defined]

    # toggle safe mode off: the same query is re-run and unsafe rows may appear; state goes to the URL
    before = p.locator("#results").inner_html()  # type: ignore[attr-defined]
    p.uncheck("#safe")  # type: ignore[attr-defined]
    _wait_results(p, before)
    assert "safe=0" in p.url and any(_unsafe(i) for i in _ids(p))  # type: ignore[attr-defined]
    p.check("#safe")  # type: ignore[attr-defined]

    # reloading the URL restores the query and its results
    p.reload()  # type: ignore[attr-defined]
    _wait_results(p)
    assert p.input_value("#q") == "a photo of a dog" and _ids(p) == safe_ids  # type: ignore[attr-defined]

    # upload an image with the file picker
    image = tmp_path / "query.png"
    Image.new("RGB", (64, 48), (30, 160, 90)).save(image)
    before = p.locator("#results").inner_html()  # type: ignore[attr-defined]
    p.set_input_files("#file", str(image))  # type: ignore[attr-defined]
    _wait_results(p, before)
    uploaded = _ids(p)
    assert uploaded and not any(_unsafe(i) for i in uploaded)

    # drag and drop an image onto the drop zone
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (220, 40, 40)).save(buffer, "PNG")
    transfer = p.evaluate_handle(  # type: ignore[attr-defined]
        "bytes => { const dt = new DataTransfer();"
        " dt.items.add(new File([new Uint8Array(bytes)], 'drop.png', {type: 'image/png'})); return dt; }",
        list(buffer.getvalue()),
    )
    before = p.locator("#results").inner_html()  # type: ignore[attr-defined]
    p.dispatch_event("#drop", "drop", {"dataTransfer": transfer})  # type: ignore[attr-defined]
    _wait_results(p, before)

    # click a result image: search by that image (its id is first), state in the URL
    clicked = _ids(p)[2]
    before = p.locator("#results").inner_html()  # type: ignore[attr-defined]
    p.locator(".result img").nth(2).click()  # type: ignore[attr-defined]
    _wait_results(p, before)
    assert f"id={clicked}" in p.url and _ids(p)[0] == clicked  # type: ignore[attr-defined]

    # click a caption: search by that caption as text
    caption = p.locator(".result .caption").nth(1).inner_text()  # type: ignore[attr-defined]
    before = p.locator("#results").inner_html()  # type: ignore[attr-defined]
    p.locator(".result .caption").nth(1).click()  # type: ignore[attr-defined]
    _wait_results(p, before)
    assert p.input_value("#q") == caption  # type: ignore[attr-defined]

    ARTIFACTS.mkdir(exist_ok=True)
    p.screenshot(path=str(ARTIFACTS / "serve_page.png"), full_page=True)  # type: ignore[attr-defined]
    assert (ARTIFACTS / "serve_page.png").stat().st_size > 10_000
    assert external == [], f"the page requested external assets: {external[:5]}"
