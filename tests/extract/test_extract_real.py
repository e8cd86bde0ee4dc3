"""Extraction on the real Common Crawl files in ../shared/data/commoncrawl (counts from its README)."""

from __future__ import annotations

import mmh3

from openpairs.core.stats import ShardStats
from tests.extract.conftest import candidates, extracted
from tests.extract.watfiles import DERIVED, FRAGMENT_1, WAT_2014, WHIRLWIND

CC_LICENSE = "http://creativecommons.org/licenses/by-sa/3.0/"
CC_IMAGE = "http://creativecommons.org/images/public/somerights20.png"
PAGE = "http://0pointer.de/photos/?gallery=Australia&photo=496"


def test_2014_page_laion5b_keeps_only_the_absolute_image(run, tmp_path) -> None:
    outcome = run([WAT_2014], preset="laion5b")
    rows = extracted(str(tmp_path / "out")).to_pylist()
    assert [(r["url"], r["caption"], r["license"], r["page_url"]) for r in rows] == [
        (CC_IMAGE, "Creative Commons License", CC_LICENSE, PAGE)
    ]
    total = outcome.extract.total
    assert total.statuses == {"relative_url": 3, "ok": 1}
    assert total.counters["img_links"] == 4 and total.counters["links"] == 31


def test_2014_page_laion400m_resolves_relative_urls_then_cld3_rejects_them(run, tmp_path) -> None:
    outcome = run([WAT_2014], preset="laion400m")
    # "496" and "Next" are under 5 characters; CLD3 is not reliable on "Previous" nor on the licence alt.
    assert outcome.extract.total.statuses == {"alt_too_short": 2, "not_english": 2}
    run([WAT_2014], preset="laion400m", out=str(tmp_path / "nolang"), language="off", english_only=False)
    rows = extracted(str(tmp_path / "nolang")).to_pylist()
    assert [(r["url"], r["caption"], r["license"]) for r in rows] == [
        ("http://0pointer.de/photos/galleries/Australia/thumbs/img-495.jpg", "Previous", CC_LICENSE),
        (CC_IMAGE, "Creative Commons License", CC_LICENSE),
    ]
    assert [r["key"] for r in rows] == ["0000000000000000", "0000000000000001"]


def test_derived_wat_counts_match_its_readme(run, tmp_path) -> None:
    outcome = run([DERIVED], preset="laion400m", language="off", english_only=False, drop_extensions=())
    total = outcome.extract.total
    assert total.counters["img_links"] == 1025
    assert total.counters["img_with_alt"] == 900
    assert total.statuses["ok"] == 890
    assert total.counters["links"] == 3691 and total.counters["html_pages"] == 20
    assert total.is_balanced()


def test_derived_wat_hashes_are_laion5b_join_keys(run, tmp_path) -> None:
    run([DERIVED], preset="laion400m", language="off", english_only=False, dedup="none")
    rows = extracted(str(tmp_path / "out")).to_pylist()
    assert len(rows) > 100
    assert [r["hash"] for r in rows] == [mmh3.hash64(r["url"] + r["caption"])[0] for r in rows]


def test_derived_wat_laion5b_languages_are_iso_codes(run, tmp_path) -> None:
    outcome = run([DERIVED], preset="laion5b")
    table = extracted(str(tmp_path / "out"))
    languages = set(table["language"].to_pylist())
    assert "zh" in languages and "" in languages
    assert all("-" not in code for code in languages)
    total = outcome.extract.total
    assert total.statuses["relative_url"] > 0 and total.statuses["ok"] == table.num_rows
    assert sum(v for k, v in total.counters.items() if k.startswith("language:")) == table.num_rows


def test_damaged_2019_fragment_is_recovered_by_line_scan(run, tmp_path) -> None:
    outcome = run([FRAGMENT_1], preset="laion400m", language="off", english_only=False)
    total = outcome.extract.total
    assert total.counters["records_recovered_by_line_scan"] == 5
    assert total.counters["img_links"] == 35
    assert total.statuses["ok"] == 9 and total.statuses["alt_too_short"] == 1
    assert any("recovered 5 WAT JSON payloads" in message for message in total.errors)
    assert not outcome.extract.failed


def test_2024_whirlwind_request_only_wat_has_no_pairs(run) -> None:
    outcome = run([WHIRLWIND], preset="laion5b")
    assert outcome.extract.total.rows_in == 0
    assert outcome.extract.total.counters["metadata_records"] == 1
    assert not outcome.extract.failed


def test_every_real_file_together_dedups_across_files(run, tmp_path) -> None:
    inputs = [WAT_2014, WHIRLWIND, FRAGMENT_1, DERIVED]
    outcome = run(inputs, preset="laion5b")
    table = candidates(str(tmp_path / "out"))
    assert outcome.dedup is not None
    assert outcome.dedup.rows_in == outcome.extract.total.rows_out
    assert table.num_rows == outcome.dedup.statuses["ok"]
    assert len(set(table["url"].to_pylist())) == table.num_rows  # laion5b dedups by URL
    stats = ShardStats.from_dict(outcome.dedup.to_dict())
    assert stats.is_balanced()
