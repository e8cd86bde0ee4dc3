"""Stage 1, per WAT file: Common Crawl WAT -> candidate (image URL, alt text) pairs in extract/<i>.parquet."""

from __future__ import annotations

import gc
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import mmh3
import pyarrow as pa
import pyarrow.parquet as pq

from openpairs.cc import links as cclinks
from openpairs.cc.language import NO_LANGUAGE, Language, LanguageIdentifier
from openpairs.cc.rules import ExtractConfig, check_url, clean_alt
from openpairs.cc.source import open_input
from openpairs.cc.wat import WatPayload, iter_payloads
from openpairs.core.keys import mint_key
from openpairs.core.schemas import CANDIDATE_SCHEMA
from openpairs.core.stats import ShardStats
from openpairs.core.status import Status
from openpairs.io.commit import atomic_open
from openpairs.stages.runner import ShardTask

STAGE = "extract"
BATCH_ROWS = 65_536
OK = Status.OK

__all__ = ["STAGE", "ExtractConfig", "run_shard"]


def run_shard(config: ExtractConfig, task: ShardTask) -> ShardStats:
    """Extract the candidate pairs of one WAT file (task.inputs[0]) into extract/<index>.parquet."""
    started = time.perf_counter()
    stats = ShardStats(stage=STAGE, shard=task.index)
    source = task.inputs[0]
    columns = _Columns(task.index, source.rstrip("/").rsplit("/", 1)[-1], config)
    with (
        _gc_paused(),
        open_input(source) as stream,
        atomic_open(task.paths.file("parquet")) as out,
        pq.ParquetWriter(out, CANDIDATE_SCHEMA, compression="zstd") as writer,
    ):
        for page in _pages(iter_payloads(stream, stats), stats):
            columns.add_page(page)
            if len(columns.url) >= BATCH_ROWS:
                writer.write_table(columns.flush())
        writer.write_table(columns.flush())
    columns.report(stats)
    stats.time("extract", time.perf_counter() - started)
    return stats


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: extraction allocates millions of short-lived acyclic objects."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _pages(payloads: Iterator[WatPayload], stats: ShardStats) -> Iterator[cclinks.Page]:
    """HTML pages of the response records; bad records are counted and skipped."""
    for item in payloads:
        if not cclinks.is_response(item.payload):
            continue
        stats.bump("response_records")
        try:
            page = cclinks.read_page(item.payload, item.target_uri)
        except cclinks.BadRecord as exc:
            stats.bump("bad_records")
            stats.error(f"bad WAT record: {exc}")
            continue
        if page is not None:
            stats.bump("html_pages")
            stats.bump("links", page.links_total)
            yield page


class _Columns:
    """Kept pairs as column lists, plus per-status counts, for one extract shard."""

    def __init__(self, shard: int, source: str, config: ExtractConfig) -> None:
        self.shard, self.source, self.config = shard, source, config
        self.language = LanguageIdentifier() if config.language == "cld3" else None
        self.rows = 0
        self.statuses: Counter[str] = Counter()
        self.counters: Counter[str] = Counter()
        self.errors: list[str] = []
        self.url: list[str] = []
        self.caption: list[str] = []
        self.page: list[cclinks.Page] = []
        self.lang: list[Language] = []

    def add_page(self, page: cclinks.Page) -> None:
        """Apply every rule to the page's IMG links, keeping the pairs that pass."""
        config, statuses = self.config, self.statuses
        self.counters["img_links"] += len(page.images)
        for link in page.images:
            alt, raw_url = link.get("alt"), link.get("url")
            if type(raw_url) is not str or (alt is not None and type(alt) is not str):
                statuses[Status.INVALID_URL if type(raw_url) is not str else Status.NO_ALT] += 1
                self.errors.append(
                    f"IMG link with unexpected types: url {type(raw_url).__name__}, alt {type(alt).__name__}"
                )
                continue
            if not alt:
                statuses[Status.NO_ALT] += 1
                continue
            url, status = check_url(raw_url, page.base, config)
            if status is OK:
                caption = clean_alt(alt, config)
                if len(caption) < config.min_alt_length:
                    status = Status.ALT_TOO_SHORT
                else:
                    language = self.language.identify(caption) if self.language else NO_LANGUAGE
                    if config.english_only and language.code != "en":
                        status = Status.NOT_ENGLISH
            statuses[status] += 1
            if status is OK:
                self.url.append(url)
                self.caption.append(caption)
                self.page.append(page)
                self.lang.append(language)

    def flush(self) -> pa.Table:
        """The pending rows as a CANDIDATE_SCHEMA table (keys minted in order), then forget them."""
        first = self.rows
        self.rows += len(self.url)
        data: dict[str, Any] = {
            "key": [mint_key(self.shard, row) for row in range(first, self.rows)],
            "url": self.url,
            "caption": self.caption,
            "page_url": [page.url for page in self.page],
            "language": [language.code for language in self.lang],
            "language_score": [language.score for language in self.lang],
            "license": [page.license for page in self.page],
            "hash": [mmh3.hash64(u + c)[0] for u, c in zip(self.url, self.caption, strict=True)],
            "source": [self.source] * len(self.url),
        }
        for code in data["language"]:
            self.counters[f"language:{code or 'none'}"] += 1
        self.url, self.caption, self.page, self.lang = [], [], [], []
        return pa.Table.from_pydict(data, schema=CANDIDATE_SCHEMA)

    def report(self, stats: ShardStats) -> None:
        """Add this shard's counts to its stats."""
        for status, count in self.statuses.items():
            stats.count(status, count)
        stats.counters.update(self.counters)
        stats.bump("img_with_alt", sum(n for s, n in self.statuses.items() if s != Status.NO_ALT))
        for message in self.errors:
            stats.error(message)
