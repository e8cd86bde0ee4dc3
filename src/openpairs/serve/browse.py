"""The dataset browser: pages of a build's candidates, kept and dropped, streamed shard by shard.

Memory is bounded by one shard's narrow columns (key, statuses, language, scores) plus one page of
descriptive columns, whatever the dataset's size: a page starts at its cursor (`<shard>:<last key>`), reads
shards in order until it has `limit` rows and one more (which says a next page exists), then reads the
url, caption and sizes of just those rows.
"""

from __future__ import annotations

import bisect
import json
import threading
from collections import Counter
from collections.abc import Callable
from functools import cached_property
from typing import Any, TypeVar

import pyarrow as pa

from openpairs.core.stats import MAX_MESSAGE_CHARS
from openpairs.io import fs as ofs
from openpairs.serve.browse_images import read_image
from openpairs.serve.browse_scan import ShardFiles, list_shards, shard_details, shard_rows
from openpairs.serve.browse_schemas import KEPT, NO_LANGUAGE, BrowseFacets, BrowsePage, BrowseQuery, BrowseRow
from openpairs.serve.config import ApiError

IMAGE_ROUTE = "/api/browse/image"
T = TypeVar("T")


class DatasetBrowser:
    """Browses the build under `root` (its shards/, clip/ and filter/ outputs)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._facets: BrowseFacets | None = None
        self._lock = threading.Lock()

    @cached_property
    def shards(self) -> list[ShardFiles]:
        """The build's download shards, listed once."""
        return list_shards(self.root)

    def _require_shards(self) -> list[ShardFiles]:
        if not self.shards:
            raise ApiError(
                404, "nothing to browse: the served dataset has no download shards (shards/*.parquet)"
            )
        return self.shards

    def page(self, query: BrowseQuery) -> BrowsePage:
        """The page of matching rows after `query.cursor`, with the cursor of the next one."""
        skipped: dict[str, str] = {}
        picked = self._pick(query, skipped)
        more = sum(table.num_rows for _, table in picked) > query.limit
        if more:  # the extra row only says that a next page exists
            shard, table = picked.pop()
            picked += [(shard, table.slice(0, table.num_rows - 1))] if table.num_rows > 1 else []
        rows = [row for shard, table in picked for row in self._read(shard, skipped, self._rows, table) or []]
        next_cursor = f"{rows[-1].shard}:{rows[-1].key}" if more and rows else None
        total = self.count(query, skipped) if query.count else None
        return BrowsePage(rows=rows, limit=query.limit, next=next_cursor, total=total, skipped=skipped)

    def _pick(self, query: BrowseQuery, skipped: dict[str, str]) -> list[tuple[ShardFiles, pa.Table]]:
        """The narrow rows of the page and one more, shard by shard from the cursor on."""
        shards = self._require_shards()
        start, after = self._start(query.cursor)
        picked: list[tuple[ShardFiles, pa.Table]] = []
        found = 0
        for shard in shards[start:]:
            since = after if shard.number == _cursor_shard(query.cursor) else None
            rows = self._read(shard, skipped, shard_rows, query, since)
            if rows is not None and rows.num_rows:
                picked.append((shard, rows.slice(0, query.limit + 1 - found)))
                found += picked[-1][1].num_rows
            if found > query.limit:
                break
        return picked

    @staticmethod
    def _read(shard: ShardFiles, skipped: dict[str, str], read: Callable[..., T], *args: Any) -> T | None:
        """`read(shard, *args)`, or None with the shard and why in `skipped` when its files are unreadable."""
        try:
            return read(shard, *args)
        except (pa.ArrowException, OSError) as exc:
            skipped[shard.name] = f"{type(exc).__name__}: {exc}"[:MAX_MESSAGE_CHARS]
            return None

    def _start(self, cursor: str | None) -> tuple[int, str | None]:
        """Index of the first shard to read and the key to start after."""
        if cursor is None:
            return 0, None
        number, key = cursor.split(":", 1)
        return bisect.bisect_left([s.number for s in self.shards], int(number)), key

    def _rows(self, shard: ShardFiles, table: pa.Table) -> list[BrowseRow]:
        """The response rows of one shard's picked rows, with their descriptive columns."""
        details = shard_details(shard, table["key"].to_pylist())
        rows = []
        for row in table.to_pylist():
            detail = details.get(row["key"], {})
            kept = row["status"] == KEPT
            image = f"{IMAGE_ROUTE}/{shard.name}/{row['key']}" if kept and shard.tar else None
            reason = (
                detail.get("opt_out_signal") or detail.get("error")
                if row["dropped_at"] == "download"
                else None
            )
            stored = {k: v for k, v in detail.items() if k not in ("error", "opt_out_signal")}
            rows.append(BrowseRow.model_validate({**stored, **_scores(row), "shard": shard.name,
                                                  "status": row["status"], "dropped_at": row["dropped_at"],
                                                  "reason": reason, "image": image}))  # fmt: skip
        return rows

    def count(self, query: BrowseQuery, skipped: dict[str, str]) -> int:
        """How many rows of the whole build match `query`'s filters (one pass, shard by shard)."""
        counted = (self._read(shard, skipped, shard_rows, query) for shard in self._require_shards())
        return sum(table.num_rows for table in counted if table is not None)

    def facets(self) -> BrowseFacets:
        """Row counts by status and language over the whole build (one pass, then kept)."""
        with self._lock:
            if self._facets is None:
                self._facets = self._count_facets()
            return self._facets

    def _count_facets(self) -> BrowseFacets:
        statuses: Counter[str] = Counter()
        languages: Counter[str] = Counter()
        skipped: dict[str, str] = {}
        for shard in self._require_shards():
            table = self._read(shard, skipped, shard_rows)
            if table is not None:
                statuses.update(table["status"].to_pylist())
                languages.update(language or NO_LANGUAGE for language in table["language"].to_pylist())
        return BrowseFacets(
            shards=len(self.shards),
            rows=sum(statuses.values()),
            statuses=dict(statuses.most_common()),
            languages=dict(languages.most_common()),
            filter_settings=self._filter_settings(),
            skipped=skipped,
        )

    def _filter_settings(self) -> dict[str, Any] | None:
        """The thresholds of the last `openpairs filter` (filter/filter_config.json), if readable."""
        path = ofs.join(self.root, "filter", "filter_config.json")
        try:
            settings = json.loads(ofs.read_text(path)) if ofs.exists(path) else None
        except (OSError, ValueError):
            return None
        return settings if isinstance(settings, dict) else None

    def image(self, shard_name: str, key: str) -> tuple[bytes, str]:
        """The stored image of `key` in download shard `shard_name` and its media type, or a 404."""
        shard = next((s for s in self._require_shards() if s.number == int(shard_name)), None)
        if shard is None or shard.tar is None:
            raise ApiError(404, f"no download tar for shard {shard_name}")
        try:
            found = read_image(shard.tar, key)
        except OSError as exc:  # UnreadableTarError included
            raise ApiError(404, f"the image of {key} cannot be read: {exc}") from exc
        if found is None:
            raise ApiError(404, f"shard {shard.name} stores no image of {key}")
        return found


def _cursor_shard(cursor: str | None) -> int | None:
    return None if cursor is None else int(cursor.split(":", 1)[0])


def _scores(row: dict[str, Any]) -> dict[str, Any]:
    """The narrow scan's values a response row shows (NaN scores become null)."""
    names = ("key", "language", "similarity", "punsafe", "aesthetic", "nsfw")
    return {n: None if isinstance(row[n], float) and row[n] != row[n] else row[n] for n in names}
