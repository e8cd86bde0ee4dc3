"""One download shard as the browser sees it: every candidate with its final status, read column by column.

A row's status is the filter's (`filter/<i>.parquet`) unless the filter says `not_downloaded`, where the
download's own status (`shards/<i>.parquet`: http_404, opted_out, ...) names the reason. Without a filter
output the download status is the row's status. Scores come from `clip/<i>.parquet`, joined by key.
Only the columns a step needs are read, with the filters pushed down to the parquet scan.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from openpairs.core.status import Status
from openpairs.index.sources import is_local
from openpairs.io import fs as ofs
from openpairs.serve.browse_schemas import DROPPED, KEPT, NO_LANGUAGE, SCORES, BrowseQuery

TYPES: dict[str, pa.DataType] = {
    "similarity": pa.float64(),
    "punsafe": pa.float32(),
    "aesthetic": pa.float32(),
    "width": pa.int32(),
    "height": pa.int32(),
    "original_width": pa.int32(),
    "original_height": pa.int32(),
}
CLIP_COLUMNS = ("key", *SCORES, "nsfw")
DETAIL_COLUMNS = (
    "key", "url", "caption", "width", "height", "original_width", "original_height", "license", "error",
    "opt_out_signal",
)  # fmt: skip


@dataclass(frozen=True)
class ShardFiles:
    """The files of one download shard: its parquet, and where they exist its tar, clip and filter parquet."""

    name: str
    download: str
    tar: str | None
    clip: str | None
    decided: str | None

    @property
    def number(self) -> int:
        """The shard's number."""
        return int(self.name)


def list_shards(root: str) -> list[ShardFiles]:
    """Every download shard of the build under `root`, in shard order."""

    def beside(directory: str, name: str, suffix: str) -> str | None:
        return existing[directory].get(name + suffix)

    existing = {d: _by_name(ofs.list_files(ofs.join(root, d))) for d in ("shards", "clip", "filter")}
    shards = []
    for path in ofs.list_files(ofs.join(root, "shards"), ".parquet"):
        name = path.rsplit("/", 1)[-1].removesuffix(".parquet")
        if name.isdigit():
            files = (beside("shards", name, ".tar"), beside("clip", name, ".parquet"))
            shards.append(ShardFiles(name, path, *files, beside("filter", name, ".parquet")))
    return shards


def _by_name(paths: list[str]) -> dict[str, str]:
    """Paths by file name (a listing may spell the directory differently from how it was asked)."""
    return {path.rsplit("/", 1)[-1]: path for path in paths}


def read_columns(path: str, columns: Sequence[str], where: ds.Expression | None = None) -> pa.Table:
    """`columns` of one parquet file (a missing one as nulls), rows passing `where`; the filter is pushed
    down to the scan when the file has every column it names."""
    dataset = ds.dataset(path, format="parquet") if is_local(path) else _remote(path)
    present = [c for c in columns if c in dataset.schema.names]
    pushed = where is not None and len(present) == len(columns)
    table = dataset.to_table(columns=present, filter=where if pushed else None)
    for name in columns:
        if name not in present:
            table = table.append_column(name, pa.nulls(table.num_rows, TYPES.get(name, pa.string())))
    table = table.select(list(columns))
    return table.filter(where) if where is not None and not pushed else table


def _remote(path: str) -> ds.Dataset:
    filesystem, stripped = ofs.filesystem(path)
    return ds.dataset(stripped, format="parquet", filesystem=filesystem)


def _language_filter(language: str | None) -> ds.Expression | None:
    if language is None:
        return None
    if language == NO_LANGUAGE:
        return pc.field("language").is_null() | (pc.field("language") == "")
    return pc.field("language") == language


def _all_of(*terms: ds.Expression | None) -> ds.Expression | None:
    """The AND of the given conditions (None: no condition)."""
    given = [term for term in terms if term is not None]
    return functools.reduce(operator.and_, given) if given else None


def _score_filter(query: BrowseQuery) -> ds.Expression | None:
    """The asked score ranges as one expression (a row without that score never matches a range)."""
    terms = []
    for name in SCORES:
        low, high = query.range(name)
        terms += [
            None if low is None else pc.field(name) >= low,
            None if high is None else pc.field(name) <= high,
        ]
    return _all_of(*terms)


def final_status(table: pa.Table) -> tuple[pa.Array, pa.Array]:
    """(status, dropped_at) of each row from its download status and filter decision columns."""
    download = pc.fill_null(table["download_status"], "")
    decision = pc.fill_null(table["decision"], "")
    not_downloaded = pc.and_(pc.equal(decision, Status.NOT_DOWNLOADED), pc.not_equal(download, Status.OK))
    from_download = pc.or_(pc.equal(decision, ""), not_downloaded)
    status = pc.if_else(from_download, download, decision)
    stage = pc.if_else(from_download, pa.scalar("download"), pa.scalar("filter"))
    dropped_at = pc.if_else(pc.equal(status, Status.OK), pa.scalar(None, pa.string()), stage)
    return status, dropped_at


def _status_filter(status: pa.Array, wanted: str | None) -> pa.Array | None:
    if wanted is None:
        return None
    if wanted == DROPPED:
        return pc.not_equal(status, KEPT)
    return pc.equal(status, wanted)


def shard_rows(shard: ShardFiles, query: BrowseQuery | None = None, after: str | None = None) -> pa.Table:
    """key, status, dropped_at, language, scores and nsfw of the shard's rows matching `query` (every row
    when None) with a key above `after`, in key order."""
    query = query or BrowseQuery()
    where = _all_of(_language_filter(query.language), None if after is None else pc.field("key") > after)
    table = read_columns(shard.download, ("key", "status", "language"), where)
    table = table.rename_columns(["key", "download_status", "language"])
    scores = _score_filter(query)
    if shard.clip is not None:
        clip = read_columns(shard.clip, CLIP_COLUMNS, scores)
        table = table.join(clip, "key", join_type="inner" if scores is not None else "left outer")
    elif scores is not None:
        table = table.slice(0, 0)
    table = _with_missing(table, CLIP_COLUMNS[1:])
    if shard.decided is not None:
        decided = read_columns(shard.decided, ("key", "status")).rename_columns(["key", "decision"])
        table = table.join(decided, "key", join_type="left outer")
    table = _with_missing(table, ("decision",))
    status, dropped_at = final_status(table)
    table = table.append_column("status", status).append_column("dropped_at", dropped_at)
    keep = _status_filter(status, query.status)
    if keep is not None:
        table = table.filter(keep)
    return table.sort_by("key")


def _with_missing(table: pa.Table, names: Sequence[str]) -> pa.Table:
    for name in names:
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, TYPES.get(name, pa.string())))
    return table


def shard_details(shard: ShardFiles, keys: list[str]) -> dict[str, dict[str, object]]:
    """The descriptive columns of `keys` (url, caption, sizes, licence, error) from the download parquet."""
    table = read_columns(shard.download, DETAIL_COLUMNS, pc.field("key").isin(keys))
    return {row["key"]: row for row in table.to_pylist()}
