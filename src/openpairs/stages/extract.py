"""Stage 1, per WAT file: Common Crawl WAT -> candidate (image URL, alt text) pairs in extract/<i>.parquet."""

from __future__ import annotations

import gc
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import mmh3
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from openpairs.cc import links as cclinks
from openpairs.cc.language import NO_LANGUAGE, LanguageIdentifier
from openpairs.cc.pagemeta import NO_SIGNALS, meta_names
from openpairs.cc.rules import CODE, ORDER, ExtractConfig, apply_rules, has_no_alt
from openpairs.cc.source import open_input
from openpairs.cc.wat import WatPayload, iter_payloads
from openpairs.core import crashpoints
from openpairs.core.keys import ROW_DIGITS, mint_key
from openpairs.core.schemas import CANDIDATE_SCHEMA
from openpairs.core.stats import ShardStats
from openpairs.core.status import Status
from openpairs.io.commit import atomic_open
from openpairs.net.config import FetchConfig
from openpairs.stages.runner import ShardTask

STAGE = "extract"
BATCH_ROWS = 65_536
OK = Status.OK
_WRITER: dict[str, Any] = {  # dictionaries only where values repeat, min/max statistics only where useful
    "schema": CANDIDATE_SCHEMA,
    "compression": "zstd",
    "use_dictionary": ["page_url", "language", "license", "source", "page_robots"],
    "write_statistics": ["key", "hash"],
}

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
        pq.ParquetWriter(out, **_WRITER) as writer,
    ):
        metas = meta_names(FetchConfig(user_agent_token=config.user_agent_token).agents())
        for number, page in enumerate(_pages(iter_payloads(stream, stats), stats, metas)):
            if number == 1:
                crashpoints.reached("extract.file", task.index)
            columns.add_page(page)
            if columns.pending >= BATCH_ROWS:
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


def _pages(
    payloads: Iterator[WatPayload], stats: ShardStats, metas: frozenset[str]
) -> Iterator[cclinks.Page]:
    """HTML pages of the response records (`metas`: the meta names that address us); bad records are
    counted and skipped."""
    responses = bad = pages = links = 0  # added to stats once, not bumped per record
    try:
        for item in payloads:
            if not cclinks.is_response(item.payload):
                continue
            responses += 1
            try:
                page = cclinks.read_page(item.payload, item.target_uri, metas)
            except cclinks.BadRecord as exc:
                bad += 1
                stats.error(f"bad WAT record: {exc}")
                continue
            if page is not None:
                pages += 1
                links += page.links_total
                yield page
    finally:
        found = {"response_records": responses, "bad_records": bad, "html_pages": pages, "links": links}
        stats.counters.update({name: count for name, count in found.items() if count})


def _keys(prefix: str, first: int, stop: int) -> pa.Array:
    """Keys prefix + zero-padded row numbers first..stop-1, built in Arrow (same as mint_key)."""
    mint_key(0, max(stop - 1, 0))  # the same range check
    padded = pc.cast(pa.array(np.arange(first, stop, dtype=np.int64) + 10**ROW_DIGITS), pa.string())
    return pc.binary_replace_slice(padded.view(pa.binary()), 0, 1, prefix).view(pa.string())  # '1' -> prefix


def _rows(values: pa.Array, rows: np.ndarray) -> pa.Array:
    """values[rows] (rows ascending, unique): the array itself when that is every row."""
    return values if len(rows) == len(values) else values.take(pa.array(rows))


class _Columns:
    """IMG links gathered page by page, ruled in batches; kept pairs as Arrow tables, statuses counted."""

    def __init__(self, shard: int, source: str, config: ExtractConfig) -> None:
        self.shard, self.source, self.config = shard, source, config
        self.language = LanguageIdentifier() if config.language == "cld3" else None
        self.rows = 0
        self.statuses: Counter[str] = Counter()
        self.counters: Counter[str] = Counter()
        self.urls: list[Any] = []
        self.alts: list[Any] = []
        self.counts: list[int] = []  # IMG links per gathered page
        self.pages: list[cclinks.Page] = []
        self.errors: list[str] = []

    @property
    def pending(self) -> int:
        """Links gathered and not yet ruled."""
        return len(self.urls)

    def add_page(self, page: cclinks.Page) -> None:
        """Gather the page's IMG links (the rules run on the whole batch at flush)."""
        self.counters["img_links"] += len(page.images)
        images = [link for link in page.images if link.alt]
        if len(images) < len(page.images):  # no alt: counted here, not batched (odd types go to the rules)
            odd = [link for link in page.images if not link.alt and not has_no_alt(link.url, link.alt)]
            self.statuses[Status.NO_ALT] += len(page.images) - len(images) - len(odd)
            images += odd
        self.urls.extend([link.url for link in images])
        self.alts.extend([link.alt for link in images])
        self.counts.append(len(images))
        self.pages.append(page)

    def flush(self) -> pa.Table:
        """Rule the gathered links and return the kept pairs (keys minted in order)."""
        page_of = np.repeat(np.arange(len(self.pages), dtype=np.int64), self.counts)
        ruled = apply_rules(self.urls, self.alts, [p.base for p in self.pages], page_of, self.config)
        self._count_invalid(ruled.codes)
        if self.config.page_meta_opt_out:
            self._opt_out(ruled.codes, page_of)
        kept = np.flatnonzero(ruled.codes == CODE[OK])
        captions = _rows(ruled.caption, kept)
        codes, scores = self._languages(captions)
        if self.config.english_only:
            english = np.asarray(pc.equal(codes, "en").to_numpy(zero_copy_only=False), dtype=bool)
            ruled.codes[kept[~english]] = CODE[Status.NOT_ENGLISH]
            rows = pa.array(english)
            kept, captions, codes, scores = (
                kept[english],
                captions.filter(rows),
                codes.filter(rows),
                scores[english],
            )
        for code, count in enumerate(np.bincount(ruled.codes, minlength=len(ORDER)).tolist()):
            if count:
                self.statuses[ORDER[code]] += count
        self._count_languages(codes)
        table = self._table(_rows(ruled.url, kept), captions, codes, scores, page_of[kept])
        self.urls, self.alts, self.counts, self.pages = [], [], [], []
        return table

    def _languages(self, captions: pa.Array) -> tuple[pa.Array, np.ndarray]:
        """Language code and score per caption (no language for all when identification is off)."""
        if self.language is None:
            return pa.repeat(pa.scalar(NO_LANGUAGE.code, pa.string()), len(captions)), np.zeros(len(captions))
        found = [self.language.identify(c) for c in captions.to_pylist()]
        codes = pa.array([lang.code for lang in found], pa.string())
        return codes, np.array([lang.score for lang in found], dtype=np.float64)

    def _count_languages(self, codes: pa.Array) -> None:
        """`language:<code>` counters (`none`: no language); all `none` without identification."""
        found = {NO_LANGUAGE.code: len(codes)}
        if self.language:
            found = {item["values"]: item["counts"] for item in pc.value_counts(codes).to_pylist()}
        for code, count in found.items():
            if count:
                self.counters[f"language:{code or 'none'}"] += count

    def _table(
        self, urls: pa.Array, captions: pa.Array, codes: pa.Array, scores: np.ndarray, pages: np.ndarray
    ) -> pa.Table:
        first, self.rows = self.rows, self.rows + len(urls)
        prefix = mint_key(self.shard, 0)[:-ROW_DIGITS]
        take = pa.array(pages)
        joined = pc.binary_join_element_wise(urls, captions, "").cast(pa.binary()).to_pylist()
        digests = b"".join(map(mmh3.hash_bytes, joined))  # x64_128; hash64(...)[0] is its first 8 bytes
        data: dict[str, Any] = {
            "key": _keys(prefix, first, self.rows),
            "url": urls,
            "caption": captions,
            "page_url": pa.array([page.url for page in self.pages], pa.string()).take(take),
            "language": codes,
            "language_score": scores,
            "license": pa.array([page.license for page in self.pages], pa.string()).take(take),
            "hash": np.frombuffer(digests, "<i8")[::2],
            "source": pa.repeat(pa.scalar(self.source, pa.string()), len(urls)),
            "page_robots": self._signal_column("robots", pa.string(), take),
            "page_tdm_reservation": self._signal_column("tdm_reservation", pa.int8(), take),
        }
        return pa.Table.from_pydict(data, schema=CANDIDATE_SCHEMA)

    def _signal_column(self, field: str, kind: pa.DataType, take: pa.Array) -> pa.Array:
        """The page signal `field` of each kept row (all null, built at once, when no page has one)."""
        if all(page.signals is NO_SIGNALS for page in self.pages):
            return pa.nulls(len(take), kind)
        return pa.array([getattr(page.signals, field) for page in self.pages], kind).take(take)

    def _opt_out(self, codes: np.ndarray, page_of: np.ndarray) -> None:
        """Mark the ok links of pages whose metas opt out `opted_out` (in place), counted per signal."""
        signals = [page.signals.opt_out for page in self.pages]
        opted = np.array([signal is not None for signal in signals], dtype=bool)
        if not opted.any():
            return
        rows = np.flatnonzero((codes == CODE[OK]) & opted[page_of])
        codes[rows] = CODE[Status.OPTED_OUT]
        for page, count in enumerate(np.bincount(page_of[rows], minlength=len(signals)).tolist()):
            if count:
                self.counters[f"opt_out.{signals[page]}"] += count

    def _count_invalid(self, codes: np.ndarray) -> None:
        for i in np.flatnonzero(codes == CODE[Status.INVALID_LINK])[:10]:
            url, alt = self.urls[i], self.alts[i]
            self.errors.append(
                f"IMG link with unexpected types: url {type(url).__name__}, alt {type(alt).__name__}"
            )

    def report(self, stats: ShardStats) -> None:
        """Add this shard's counts to its stats."""
        for status, count in self.statuses.items():
            stats.count(status, count)
        stats.counters.update(self.counters)
        stats.bump(
            "img_with_alt",
            sum(n for s, n in self.statuses.items() if s not in (Status.NO_ALT, Status.INVALID_LINK)),
        )
        for message in self.errors:
            stats.error(message)
