"""Inputs the fuzzers found that broke the WAT record path, kept as plain tests (each failed before its fix)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from openpairs.cc import links as cclinks
from openpairs.cc.rules import ORDER, ExtractConfig, apply_rules
from openpairs.core.status import Status
from openpairs.stages import extract
from openpairs.stages.runner import ShardTask
from tests.extract.watfiles import member, real_payloads

RULES = ExtractConfig(language="off", english_only=False)
CAT = "a cat asleep on a sofa"


def _statuses(urls: list[object], bases: list[str], pages: list[int]) -> list[str]:
    ruled = apply_rules(urls, [CAT] * len(urls), bases, np.array(pages, dtype=np.int64), RULES)
    return [str(ORDER[code]) for code in ruled.codes]


def test_unparsable_base_href_falls_back_to_the_page_url() -> None:
    """Was: urljoin's ValueError('Invalid IPv6 URL') escaped read_page and failed the whole shard."""
    record = {
        "Envelope": {
            "WARC-Header-Metadata": {"WARC-Type": "response", "WARC-Target-URI": "http://site.example/a/"},
            "Payload-Metadata": {
                "HTTP-Response-Metadata": {"HTML-Metadata": {"Head": {"Base": "http://[::1/"}, "Links": []}}
            },
        }
    }
    page = cclinks.read_page(json.dumps(record).encode(), lambda: "")
    assert page is not None and page.base == "http://site.example/a/"


def test_relative_links_that_no_base_resolves_are_relative_url() -> None:
    """Was: a relative link on a page without a URL crashed apply_rules (ValueError in _lower_scheme), and
    one on a page with an unparsable URL raised urljoin's ValueError: both failed the whole shard."""
    bases = ["", "http://[::1/x", "ftp://files.example/dir/", "http://ok.example/dir/"]
    statuses = _statuses(["cat.jpg", "cat.jpg", "cat.jpg", "cat.jpg"], bases, [0, 1, 2, 3])
    assert statuses == ["relative_url", "relative_url", "bad_scheme", "ok"]


def test_a_null_img_url_is_an_invalid_link() -> None:
    """Was: a link whose url is JSON null, with an alt, was kept as ok with no URL at all."""
    assert _statuses([None, "http://ok.example/cat.jpg"], ["http://ok.example/"], [0, 0]) == [
        "invalid_link",
        "ok",
    ]


def test_a_page_without_url_does_not_fail_its_shard() -> None:
    """Was: a response record without WARC-Target-URI (in the JSON and the WARC header) holding a relative
    IMG link failed the whole WAT; now that link is relative_url and the other records are extracted."""
    good = real_payloads()[5]  # a real page with four kept images
    broken = json.loads(json.dumps(good))
    del broken["Envelope"]["WARC-Header-Metadata"]["WARC-Target-URI"]
    html = broken["Envelope"]["Payload-Metadata"]["HTTP-Response-Metadata"]["HTML-Metadata"]
    html["Links"] = [{"path": "IMG@/src", "url": "photos/cat.jpg", "alt": CAT}]
    html["Head"] = {}
    data = member(json.dumps(broken).encode(), target="") + member(json.dumps(good).encode())
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "in.wat.gz").write_bytes(data)
        task = ShardTask(extract.STAGE, 0, (str(Path(folder) / "in.wat.gz"),), folder)
        stats = extract.run_shard(RULES, task)
        kept = pq.read_table(task.paths.file("parquet")).num_rows
    assert stats.is_balanced() and stats.statuses[Status.RELATIVE_URL] >= 1
    assert stats.counters["html_pages"] == 2 and kept == stats.rows_out > 0
