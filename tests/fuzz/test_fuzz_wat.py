"""Fuzzing the WAT record path: payload parsing, the link rules, and a whole extract shard."""

from __future__ import annotations

import json
import re
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from hypothesis import given
from hypothesis import strategies as st

from openpairs.cc import links as cclinks
from openpairs.cc.language import LanguageIdentifier
from openpairs.cc.rules import CODE, ORDER, ExtractConfig, apply_rules
from openpairs.cc.wat import WatFormatError
from openpairs.core.status import Status
from openpairs.presets import stage_config
from openpairs.stages import extract
from openpairs.stages.runner import ShardTask
from tests.extract.watfiles import ALL_WATS, member
from tests.fuzz.budget import fuzz_settings
from tests.fuzz.mutate import mutated
from tests.fuzz.strategies import ALTS, json_values, urls, wat_records

PRINTABLE_ONLY = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\ufeff]")
CONFIGS = st.builds(
    lambda preset, relative, fix, language: stage_config(
        ExtractConfig, "extract", preset, relative_urls=relative, fix_text=fix, language=language
    ),
    st.sampled_from(["laion400m", "laion5b"]),
    st.sampled_from(["resolve", "drop"]),
    st.booleans(),
    st.sampled_from(["off", "cld3"]),
)


def _payload(record: Any) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")


@fuzz_settings(200)
@given(record=wat_records() | json_values(), header_uri=urls(), cut=st.integers(0, 40))
def test_read_page_returns_a_page_or_a_bad_record(record: Any, header_uri: str, cut: int) -> None:
    """Any payload, cut short or not, is a Page, None (no HTML) or BadRecord: nothing else escapes."""
    payload = _payload(record)
    for data in (payload, payload[: len(payload) - cut]):
        try:
            page = cclinks.read_page(data, lambda: header_uri)
        except cclinks.BadRecord as exc:
            assert str(exc)
            continue
        if page is not None:
            assert isinstance(page.url, str) and isinstance(page.base, str) and isinstance(page.license, str)
            assert all(link.path == cclinks.IMG_PATH for link in page.images)
            assert page.links_total >= len(page.images)
            assert set((page.signals.robots or "noai").split(",")) <= {"noai", "noimageai"}
            assert page.signals.tdm_reservation in (None, 0, 1)


LANGUAGE = LanguageIdentifier()


@fuzz_settings(200)
@given(caption=ALTS)
def test_language_identification_takes_any_caption(caption: str) -> None:
    """CLD3 (cached by digit-free form) answers any caption with a code and a probability."""
    found = LANGUAGE.identify(caption)
    assert isinstance(found.code, str) and 0.0 <= found.score <= 1.0
    assert found == LANGUAGE.identify_uncached(caption.translate(str.maketrans("0123456789", " " * 10)))


def _check_kept(url: Any, caption: Any, config: ExtractConfig) -> None:
    """What a kept (ok) link must look like."""
    assert isinstance(url, str) and isinstance(caption, str)
    assert re.match(r"https?://", url), url
    assert url == url.strip() and len(url) <= config.max_url_length
    assert config.min_alt_length <= len(caption) <= config.max_alt_length
    assert caption == caption.strip() and not PRINTABLE_ONLY.search(caption), caption


@fuzz_settings(200)
@given(
    links=st.lists(st.tuples(urls() | json_values(), ALTS | json_values()), max_size=12),
    bases=st.lists(urls(), min_size=1, max_size=3),
    config=CONFIGS,
    data=st.data(),
)
def test_rules_give_every_link_one_status(
    links: list[tuple[Any, Any]], bases: list[str], config: ExtractConfig, data: st.DataObject
) -> None:
    """apply_rules never raises; each link gets one status and kept links are clean http(s) pairs."""
    page_of = np.array([data.draw(st.integers(0, len(bases) - 1)) for _ in links], dtype=np.int64)
    urls_in = [url for url, _ in links]
    alts_in = [alt for _, alt in links]
    ruled = apply_rules(urls_in, alts_in, bases, page_of, config)
    assert len(ruled.codes) == len(ruled.url) == len(ruled.caption) == len(links)
    assert set(ruled.codes.tolist()) <= set(range(len(ORDER)))
    for i, code in enumerate(ruled.codes.tolist()):
        if code == CODE[Status.OK]:
            _check_kept(ruled.url[i].as_py(), ruled.caption[i].as_py(), config)
        if not isinstance(urls_in[i], str):
            assert code == CODE[Status.INVALID_LINK]


def _img_links(record: Any) -> int | None:
    """The IMG links a response record holds if it has Common Crawl's shape (None when it is not one)."""
    try:
        envelope = record["Envelope"]
        uri = envelope.get("WARC-Header-Metadata", {}).get("WARC-Target-URI")
        response = envelope["Payload-Metadata"]["HTTP-Response-Metadata"]
        html = response["HTML-Metadata"]
        links = html.get("Links", [])
    except (KeyError, TypeError, AttributeError):
        return None
    if uri and not isinstance(uri, str):  # a page URL that is not text: a bad record
        return None
    if not isinstance(links, list) or not isinstance(html.get("Head", {}), dict):
        return None
    return sum(1 for link in links if isinstance(link, dict) and link.get("path") == cclinks.IMG_PATH)


def _run_extract(data: bytes, config: ExtractConfig) -> tuple[Any, Any]:
    with tempfile.TemporaryDirectory() as folder:
        wat = Path(folder) / "fuzz.warc.wat.gz"
        wat.write_bytes(data)
        task = ShardTask(extract.STAGE, 0, (str(wat),), folder)
        stats = extract.run_shard(config, task)
        return stats, pq.read_table(task.paths.file("parquet"))


@fuzz_settings(25)
@given(
    records=st.lists(wat_records(), min_size=1, max_size=8), config=CONFIGS, garbage=st.binary(max_size=64)
)
def test_extract_shard_accounts_for_every_link(
    records: list[Any], config: ExtractConfig, garbage: bytes
) -> None:
    """A WAT of generated records (plus a junk member) extracts without failing; every IMG link of a
    well-formed response is one row with one status, and kept rows are the parquet's rows."""
    members = [member(_payload(r), target="http://header.example/page") for r in records]
    members.insert(1, garbage)  # after the first record: a file that starts with junk is not a WAT at all
    stats, table = _run_extract(b"".join(members), config)
    assert stats.is_balanced(), stats.to_dict()
    responses = [r for r in records if b'"WARC-Type":"response"' in _payload(r)]
    expected = [n for n in map(_img_links, responses) if n is not None]
    assert stats.rows_in >= sum(expected)
    assert stats.rows_in == stats.counters.get("img_links", 0)
    assert stats.counters.get("html_pages", 0) + stats.counters.get("bad_records", 0) <= len(responses)
    assert table.num_rows == stats.rows_out
    keys = table.column("key").to_pylist()
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    for url, caption in zip(
        table.column("url").to_pylist(), table.column("caption").to_pylist(), strict=True
    ):
        _check_kept(url, caption, config)
    assert Counter(stats.statuses).keys() <= {str(s) for s in ORDER}
    signals = {name: n for name, n in stats.counters.items() if name.startswith("opt_out.")}
    assert sum(signals.values()) == stats.statuses.get(Status.OPTED_OUT, 0)


REAL_WATS = {path.name: path.read_bytes() for path in ALL_WATS}


@fuzz_settings(15)
@given(case=mutated(REAL_WATS), config=CONFIGS)
def test_damaged_real_wat_never_fails_its_shard(case: tuple[str, bytes], config: ExtractConfig) -> None:
    """A real Common Crawl WAT with flipped bytes, cuts and splices: the shard completes, balanced; only a
    file whose first bytes no longer say gzip, WARC or JSON is refused, as not a WAT file."""
    _, data = case
    try:
        stats, table = _run_extract(data, config)
    except WatFormatError as exc:
        assert "not a WARC/WAT file" in str(exc) or "empty file" in str(exc) or "256 MiB" in str(exc)
        return
    assert stats.is_balanced() and table.num_rows == stats.rows_out
