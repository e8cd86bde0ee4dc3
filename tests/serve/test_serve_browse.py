"""The dataset browser (`GET /api/browse`, its facets and images, and the page's Browse view) over the
session's real pipeline build, served by uvicorn on 127.0.0.1 and driven in Debian Chromium.

What each row should say comes from the stages' own files (tests/fixtures/pipeline_output.py): its status
is the filter's, or where the filter says `not_downloaded`, the download's; its reason is the download's
error message or opt-out signal.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image, ImageStat

from openpairs.index.build import IndexConfig, build_index
from openpairs.serve.app import create_app
from openpairs.serve.browse import DatasetBrowser
from openpairs.serve.browse_schemas import BrowseQuery
from openpairs.serve.config import ServeConfig
from tests.fixtures.pipeline_output import PipelineOutput
from tests.serve.conftest import LiveServer
from tests.serve.test_serve_page import ARTIFACTS, page  # noqa: F401  (pytest fixture)

Row = dict[str, Any]


@pytest.fixture(scope="module")
def served(built_pipeline: PipelineOutput, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`openpairs serve`'s app over an index of the shared build (written outside the build DIR)."""
    index = tmp_path_factory.mktemp("browse-index") / "index"
    build_index(str(built_pipeline.root), str(index), IndexConfig(tune_queries=20))
    with LiveServer(create_app(ServeConfig(index_dir=str(index)))) as server:
        yield server


@pytest.fixture(scope="module")
def expected(built_pipeline: PipelineOutput) -> list[Row]:
    """Every candidate as the browser should show it, in (shard, key) order."""
    rows = []
    for shard, downloads in built_pipeline.shards.items():
        for down in sorted(downloads, key=lambda r: r["key"]):
            decided = built_pipeline.statuses[down["key"]]
            by_download = decided == "not_downloaded" and down["status"] != "ok"
            status = down["status"] if by_download else decided
            clip = built_pipeline.clip.get(down["key"], {})
            rows.append({
                "key": down["key"], "shard": shard, "status": status, "language": down["language"],
                "dropped_at": None if status == "ok" else "download" if by_download else "filter",
                "reason": (down["opt_out_signal"] or down["error"]) if by_download else None,
                "caption": down["caption"], "url": down["url"], "license": down["license"],
                "width": down["width"], "similarity": clip.get("similarity"), "punsafe": clip.get("punsafe"),
            })  # fmt: skip
    return rows


def _all_pages(server: LiveServer, limit: int, **filters: Any) -> tuple[list[Row], int, int]:
    """Every row of a filtered listing, page after page: (rows, total the first page counted, pages)."""
    rows: list[Row] = []
    cursor, total, pages = None, -1, 0
    while True:
        params = {**filters, "limit": limit, **({"cursor": cursor} if cursor else {"count": "true"})}
        response = httpx.get(f"{server.url}/api/browse", params=params, timeout=60)
        assert response.status_code == 200, response.text
        page_ = response.json()
        assert len(page_["rows"]) == limit or page_["next"] is None
        total = page_["total"] if cursor is None else total
        rows += page_["rows"]
        pages += 1
        cursor = page_["next"]
        if cursor is None:
            return rows, total, pages


def test_paging_covers_every_row_once_with_its_status_and_reason(
    served: LiveServer, expected: list[Row], built_pipeline: PipelineOutput
) -> None:
    rows, total, pages = _all_pages(served, limit=37)  # pages end inside shards and across them
    assert [(r["shard"], r["key"]) for r in rows] == [(e["shard"], e["key"]) for e in expected]
    assert total == len(expected) == len(rows) and pages == -(-len(expected) // 37)
    fields = (
        "status",
        "dropped_at",
        "reason",
        "language",
        "caption",
        "url",
        "license",
        "width",
        "similarity",
    )
    assert [{f: r[f] for f in fields} for r in rows] == [{f: e[f] for f in fields} for e in expected]
    download_drops = {r["status"] for r in rows if r["dropped_at"] == "download"}
    assert len(download_drops) >= 3 and all(r["reason"] for r in rows if r["dropped_at"] == "download")
    assert any(r["status"] == "opted_out" and "noai" in r["reason"] for r in rows)
    kept = [r for r in rows if r["status"] == "ok"]
    assert all(r["image"] for r in kept) and not any(r["image"] for r in rows if r["status"] != "ok")
    image = httpx.get(served.url + kept[-1]["image"], timeout=30)
    assert image.headers["content-type"] == "image/jpeg"
    assert image.content == built_pipeline.stored(kept[-1]["key"])["jpg"]

    facets = httpx.get(f"{served.url}/api/browse/facets", timeout=60).json()
    assert facets["statuses"] == dict(Counter(e["status"] for e in expected))
    assert facets["languages"] == dict(Counter(e["language"] or "none" for e in expected))
    assert facets["rows"] == len(expected) and facets["shards"] == len(built_pipeline.shards)


def _similarity_bounds(expected: list[Row]) -> tuple[float, float]:
    scored = [e["similarity"] for e in expected if e["similarity"] is not None]
    return float(np.quantile(scored, 0.3)), float(np.quantile(scored, 0.8))


def test_filters_return_exactly_the_matching_rows_and_their_count(
    served: LiveServer, expected: list[Row]
) -> None:
    low, high = _similarity_bounds(expected)
    download_drop = next(e["status"] for e in expected if e["dropped_at"] == "download")

    def scored(e: Row, lo: float = low, hi: float = high) -> bool:
        return e["similarity"] is not None and lo <= e["similarity"] <= hi

    cases: list[tuple[dict[str, Any], Any]] = [
        ({"status": "ok"}, lambda e: e["status"] == "ok"),
        ({"status": "dropped"}, lambda e: e["status"] != "ok"),
        ({"status": "below_similarity"}, lambda e: e["status"] == "below_similarity"),
        ({"status": download_drop}, lambda e: e["status"] == download_drop),
        ({"language": "none"}, lambda e: not e["language"]),
        ({"min_similarity": low, "max_similarity": high}, scored),
        ({"status": "ok", "language": "ja", "min_similarity": low},
         lambda e: e["status"] == "ok" and e["language"] == "ja" and scored(e, hi=1.0)),
        ({"min_punsafe": 0.0}, lambda e: e["punsafe"] is not None),
        ({"status": "http_418"}, lambda e: False),
    ]  # fmt: skip
    found = []
    for filters, matches in cases:
        rows, total, _ = _all_pages(served, limit=200, **filters)
        keys = [e["key"] for e in expected if matches(e)]
        assert [r["key"] for r in rows] == keys and total == len(keys), filters
        found.append(len(keys))
    assert all(found[:7]), f"a filter the build has rows for matched nothing: {found}"


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"status": "no_such_status"}, "status"),
        ({"min_similarity": 0.5, "max_similarity": 0.1}, "min_similarity"),
        ({"max_aesthetic": "nan"}, "max_aesthetic"),
        ({"limit": 201}, "limit"),
        ({"cursor": "00001"}, "cursor"),
        ({"language": "<script>"}, "language"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_filters_get_a_422_naming_the_parameter(served: LiveServer, params: Row, names: str) -> None:
    response = httpx.get(f"{served.url}/api/browse", params=params, timeout=30)
    assert response.status_code == 422 and names in response.json()["detail"]


def test_unknown_images_are_404(served: LiveServer, expected: list[Row]) -> None:
    dropped = next(e for e in expected if e["dropped_at"] == "download")
    for path in (f"{dropped['shard']}/{dropped['key']}", f"99999/{dropped['key']}"):
        response = httpx.get(f"{served.url}/api/browse/image/{path}", timeout=30)
        assert response.status_code == 404 and response.json()["detail"]


GRID = "document.getElementById('browse-grid')"


def _wait_grid(p: Any, before: str | None = None) -> None:
    """Until the grid shows a new page whose images have all loaded."""
    p.wait_for_function(
        f"before => {{ const g = {GRID}; return g.children.length > 0 && g.innerHTML !== before &&"
        " [...g.querySelectorAll('img')].every(i => i.complete); }",
        arg=before,
    )


def _cards(p: Any) -> list[Row]:
    """Each card's key, texts and how its image decoded (size, mean and spread of each colour, read back
    through a canvas)."""
    return p.locator("#browse-grid .sample").evaluate_all(  # type: ignore[no-any-return]
        """cards => cards.map(card => {
          const img = card.querySelector('img');
          const canvas = document.createElement('canvas');
          [canvas.width, canvas.height] = [img.naturalWidth, img.naturalHeight];
          const context = canvas.getContext('2d');
          context.drawImage(img, 0, 0);
          const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
          const n = data.length / 4, mean = [0, 0, 0], std = [0, 0, 0];
          for (let c = 0; c < 3; c++) {
            let sum = 0, squares = 0;
            for (let i = c; i < data.length; i += 4) { sum += data[i]; squares += data[i] * data[i]; }
            mean[c] = sum / n;
            std[c] = Math.sqrt(Math.max(squares / n - mean[c] * mean[c], 0));
          }
          return {key: card.dataset.key, text: card.innerText, placeholder: img.className === 'placeholder',
                  width: img.naturalWidth, height: img.naturalHeight, mean, std};
        })"""
    )


def _api_page(server: LiveServer, **params: Any) -> Row:
    response = httpx.get(f"{server.url}/api/browse", params=params, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _check_cards(cards: list[Row], rows: list[Row], built: PipelineOutput) -> None:
    """The cards show the API's rows, in order, with their texts; kept images decode to the stored ones."""
    assert [c["key"] for c in cards] == [r["key"] for r in rows]
    for card, row in zip(cards, rows, strict=True):
        similarity = "–" if row["similarity"] is None else f"{row['similarity']:.3f}"
        assert row["caption"] in card["text"] and f"similarity {similarity}" in card["text"]
        assert (f"{row['width']}×{row['height']}" in card["text"]) == (row["width"] is not None)
        assert card["placeholder"] == (row["image"] is None) and card["width"] > 0
        if row["image"] is None:
            assert f"dropped at {row['dropped_at']}: {row['status']}" in card["text"]
            continue
        assert "kept" in card["text"] and (card["width"], card["height"]) == (row["width"], row["height"])
        stored = Image.open(io.BytesIO(built.stored(row["key"])["jpg"])).convert("RGB")
        stats = ImageStat.Stat(stored)
        assert min(card["std"]) > 5, f"{row['key']}: the decoded image is flat"
        assert np.allclose(card["mean"], stats.mean, atol=2.0) and np.allclose(
            card["std"], stats.stddev, atol=2.0
        )


def test_browse_view_filters_pages_and_shows_the_samples(
    page: Any,  # noqa: F811  (the fixture imported above)
    served: LiveServer,
    expected: list[Row],
    built_pipeline: PipelineOutput,
) -> None:
    p = page
    external: list[str] = []
    p.on("request", lambda r: None if r.url.startswith((served.url, "data:")) else external.append(r.url))
    p.goto(served.url + "/#browse")
    _wait_grid(p)
    assert p.locator("#search-view").is_hidden() and f"of {len(expected)}" in p.inner_text("#b-line")

    # a status filter and a score range, 24 a page
    low, _ = _similarity_bounds(expected)
    p.select_option("#b-status", "ok")
    p.fill("#b-min-similarity", f"{low:.4f}")
    p.select_option("#b-limit", "24")
    before = p.inner_html("#browse-grid")
    p.click("#b-apply")
    _wait_grid(p, before)
    assert "status=ok" in p.url and "min_similarity=" in p.url
    query = {"status": "ok", "min_similarity": f"{low:.4f}", "limit": 24}
    first = _api_page(served, **query, count="true")
    assert first["next"], "the filtered build should fill more than one page"
    _check_cards(_cards(p), first["rows"], built_pipeline)
    assert f"samples 1–24 of {first['total']}" in p.inner_text("#b-line")
    shot = Image.open(io.BytesIO(p.locator("#browse-grid").screenshot())).convert("RGB")
    assert min(ImageStat.Stat(shot).stddev) > 20, "the grid looks blank"

    # next page, then back
    before = p.inner_html("#browse-grid")
    p.click("#b-next")
    _wait_grid(p, before)
    second = _api_page(served, **query, cursor=first["next"])
    _check_cards(_cards(p), second["rows"], built_pipeline)
    assert "samples 25–" in p.inner_text("#b-line") and p.is_enabled("#b-prev")
    ARTIFACTS.mkdir(exist_ok=True)
    p.screenshot(path=str(ARTIFACTS / "serve_browse.png"), full_page=True)
    before = p.inner_html("#browse-grid")
    p.click("#b-prev")
    _wait_grid(p, before)
    assert [c["key"] for c in _cards(p)] == [r["key"] for r in first["rows"]]

    # dropped samples: a placeholder and the reason
    reason = next(e["status"] for e in expected if e["dropped_at"] == "download")
    p.fill("#b-min-similarity", "")
    p.select_option("#b-status", reason)
    before = p.inner_html("#browse-grid")
    p.click("#b-apply")
    _wait_grid(p, before)
    dropped = _api_page(served, status=reason, limit=24)
    _check_cards(_cards(p), dropped["rows"], built_pipeline)
    assert all(
        r["reason"] and r["reason"] in c["text"] for c, r in zip(_cards(p), dropped["rows"], strict=True)
    )
    p.screenshot(path=str(ARTIFACTS / "serve_browse_dropped.png"))
    assert external == [], f"the page requested external assets: {external[:5]}"


def test_an_unreadable_shard_is_named_and_the_rest_still_pages(
    pipeline: PipelineOutput, expected: list[Row]
) -> None:
    """A damaged filter parquet: its shard's rows are left out of pages and counts and named with why.
    (The build is named by a relative path: the other shards' files are still found beside it.)"""
    damaged = sorted(pipeline.shards)[1]
    target = pipeline.root / "filter" / f"{damaged}.parquet"
    target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    browser = DatasetBrowser(os.path.relpath(pipeline.root))
    first = browser.page(BrowseQuery(limit=10))
    assert first.skipped == {} and first.next, "a first page reads the first shard only, not the damaged one"
    keys, cursor, named = [], None, []
    while True:
        page_ = browser.page(BrowseQuery(limit=50, cursor=cursor, count=cursor is None))
        assert set(page_.skipped) <= {damaged} and (page_.total is None or page_.skipped)
        named += [why for why in page_.skipped.values()]
        keys += [(row.key, row.status, bool(row.image)) for row in page_.rows]
        cursor = page_.next
        if cursor is None:
            break
    assert keys == [(e["key"], e["status"], e["status"] == "ok") for e in expected if e["shard"] != damaged]
    assert page_.total is None and named and all("parquet" in why.lower() for why in named)
    facets = browser.facets()
    assert list(facets.skipped) == [damaged] and facets.rows == len(keys)
