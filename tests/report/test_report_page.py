"""report: the HTML page opens in headless Chromium with every plot loaded; the card has its YAML header."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from openpairs.report import build_report
from tests.fixtures.pipeline_output import PipelineOutput

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
IMAGES_JS = "els => els.map(e => ({src: e.getAttribute('src'), ok: e.complete && e.naturalWidth > 0}))"
WARNING = "similarities computed with random weights are meaningless"


def _check_page(html: Path) -> dict[str, object]:
    from playwright import sync_api

    assert Path(CHROMIUM).exists(), "Debian chromium is not installed: run `make system-deps`"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(html.as_uri())
            page.wait_for_load_state("load")
            images = page.eval_on_selector_all("img", IMAGES_JS)
            banner = page.inner_text(".warning") if page.query_selector(".warning") else ""
            text = page.inner_text("body")
        finally:
            browser.close()
    return {"images": images, "banner": banner, "text": text}


def test_page_loads_every_plot_and_shows_the_warning(pipeline: PipelineOutput) -> None:
    result = build_report(str(pipeline.root), warnings=(WARNING,), title="tiny")
    seen = _check_page(Path(result.html))
    images = seen["images"]
    assert isinstance(images, list) and len(images) == len(result.plots) >= 8
    assert all(image["ok"] for image in images), images
    assert WARNING in str(seen["banner"])
    text = str(seen["text"])
    drops = set(pipeline.download_statuses()) - {"ok"}
    for expected in ("candidates", "downloaded", "kept", "Number with height or width >= 1024", *drops):
        assert expected in text


def test_missing_stages_show_no_data(built_pipeline: PipelineOutput, tmp_path: Path) -> None:
    root = tmp_path / "partial"
    shutil.copytree(built_pipeline.root / "extract", root / "extract")
    result = build_report(str(root))
    assert result.data is not None and result.data.aggregates is None
    assert [s.count for s in result.data.funnel] == [built_pipeline.extracted(), None, None, None]
    html = Path(result.html).read_text()
    assert html.count("no data") >= 5
    seen = _check_page(Path(result.html))
    assert all(image["ok"] for image in seen["images"])  # type: ignore[attr-defined]


def test_card_yaml_header_and_tables(pipeline: PipelineOutput) -> None:
    result = build_report(str(pipeline.root), warnings=(WARNING,), title="tiny")
    card = Path(result.card).read_text()
    assert card.startswith("---\n")
    header = yaml.safe_load(card.split("---\n")[1])
    kept = pipeline.kept_rows()
    assert len(kept) < 1000 and header["size_categories"] == ["n<1K"]
    assert header["pretty_name"] == "tiny"
    assert header["language"] == sorted({row["language"] for row in kept} - {""})
    assert f"> **Warning:** {WARNING}" in card
    of_candidates, of_downloaded = (
        100 * len(kept) / n for n in (pipeline.extracted(), pipeline.downloaded())
    )
    assert f"| kept | {len(kept):,} | {of_candidates:.1f}% | {of_downloaded:.1f}% |" in card
    lines = [line for line in card.splitlines() if line.startswith("| Number")]
    rows = dict(line.strip("| ").split(" | ")[:2] for line in lines)
    assert rows["Number of unique samples"] == f"{len(kept):,}"
    sizes = [(row["original_width"], row["original_height"]) for row in kept]
    either, both = (int(rows[f"Number with height {op} width >= 1024"]) for op in ("or", "and"))
    assert (
        either
        == sum(max(size) >= 1024 for size in sizes)
        > both
        == sum(min(size) >= 1024 for size in sizes)
        > 0
    )


def test_damaged_stats_file_is_reported_not_fatal(pipeline: PipelineOutput) -> None:
    root = pipeline.root
    (root / "shards" / "00001_stats.json").write_text("{not json")
    result = build_report(str(root))
    assert result.data is not None
    assert ("download", "unreadable stats file 00001_stats.json: JSONDecodeError", 1) in result.data.errors()
    assert "unreadable stats file" in Path(result.html).read_text()
