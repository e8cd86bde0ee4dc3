"""The cut: ordered source files → output shards of `shard_size` rows, planned from a prefix sum of counts.

Each cut task writes a contiguous run of shards and reads only the sources (and, in them, the row groups)
its rows overlap, so memory is bounded by one source and one shard, never by the total.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from openpairs.core import crashpoints
from openpairs.core.stats import ShardStats
from openpairs.core.status import Status
from openpairs.io import commit
from openpairs.io import fs as ofs

RowFilter = Callable[[pa.Table], np.ndarray]


@dataclass(frozen=True)
class CutSource:
    """`rows` rows (after `row_filter`, when set) of one file, starting at row `first_row` of the output."""

    path: str
    first_row: int
    rows: int


@dataclass(frozen=True)
class CutTask:
    """Write shards first_shard.. of `stage_dir` under `out`: output rows [start, stop) from `sources`."""

    out: str
    stage_dir: str
    first_shard: int
    shard_size: int
    start: int
    stop: int
    sources: tuple[CutSource, ...]
    schema: pa.Schema
    row_filter: RowFilter | None = None
    crash_point: str = "dedup.shard"

    @property
    def last_shard(self) -> int:
        """Index of the last shard this task writes."""
        return self.first_shard + (self.stop - self.start - 1) // self.shard_size

    @property
    def marker(self) -> str:
        """The last shard's stats file: shards are committed in order, so it marks the task done."""
        return commit.ShardPaths(self.out, self.stage_dir, self.last_shard).stats


def plan_cuts(
    out: str,
    stage_dir: str,
    sources: Sequence[tuple[str, int]],
    shard_size: int,
    rows_per_task: int,
    schema: pa.Schema,
    row_filter: RowFilter | None = None,
) -> list[CutTask]:
    """Cut tasks over (path, rows) sources in order: each writes whole shards, about rows_per_task rows."""
    offsets = np.concatenate([[0], np.cumsum([rows for _, rows in sources], dtype=np.int64)])
    total = int(offsets[-1])
    shards_per_task = max(1, rows_per_task // shard_size)
    tasks = []
    for first_shard in range(0, -(-total // shard_size), shards_per_task):
        start = first_shard * shard_size
        stop = min(total, start + shards_per_task * shard_size)
        lo = int(np.searchsorted(offsets, start, side="right")) - 1
        hi = int(np.searchsorted(offsets, stop, side="left"))
        overlap = tuple(
            CutSource(sources[i][0], int(offsets[i]), sources[i][1]) for i in range(lo, hi) if sources[i][1]
        )
        tasks.append(
            CutTask(out, stage_dir, first_shard, shard_size, start, stop, overlap, schema, row_filter)
        )
    return tasks


def run_cut(task: CutTask) -> int:
    """Write the task's shards (each parquet, then its stats); shards already done are kept. Sources are
    read one row group at a time, so memory holds a row group and a shard."""
    pending: list[pa.Table] = []
    shard, held = task.first_shard, 0
    for piece in _pieces(task):
        pending.append(piece)
        held += piece.num_rows
        while held >= task.shard_size:
            merged = pa.concat_tables(pending)
            _commit_shard(task, shard, merged.slice(0, task.shard_size))
            rest = merged.slice(task.shard_size)
            pending, held, shard = [rest], rest.num_rows, shard + 1
    if held:
        _commit_shard(task, shard, pa.concat_tables(pending))
        shard += 1
    return shard - task.first_shard


def _pieces(task: CutTask) -> Iterator[pa.Table]:
    """The task's rows [start, stop) in order, a row group (or less) at a time."""
    for source in task.sources:
        begin = max(task.start, source.first_row) - source.first_row
        end = min(task.stop, source.first_row + source.rows) - source.first_row
        yield from _source_pieces(source.path, begin, end, task)


def _source_pieces(path: str, begin: int, end: int, task: CutTask) -> Iterator[pa.Table]:
    """Rows [begin, end) of one source, counted after the task's row filter; row groups wholly before
    `begin` are skipped unread when there is no filter."""
    with ofs.open_file(path, "rb") as handle:
        parquet = pq.ParquetFile(handle)
        seen = 0
        for index in range(parquet.num_row_groups):
            if seen >= end:
                return
            size = parquet.metadata.row_group(index).num_rows
            if task.row_filter is None and seen + size <= begin:
                seen += size
                continue
            group = parquet.read_row_group(index, columns=task.schema.names).cast(task.schema)
            if task.row_filter is not None:
                group = group.filter(pa.array(task.row_filter(group)))
            low, high = max(begin - seen, 0), min(end - seen, group.num_rows)
            if high > low:
                yield group.slice(low, high - low)
            seen += group.num_rows


def _commit_shard(task: CutTask, index: int, table: pa.Table) -> None:
    paths = commit.ShardPaths(task.out, task.stage_dir, index)
    if not paths.is_done():
        if "key" in table.schema.names:  # the data contract: parquet rows in key order inside a shard
            table = table.sort_by("key")
        commit.write_parquet_atomic(table.combine_chunks(), paths.file("parquet"))
        stats = ShardStats(stage=task.stage_dir.split("/")[0], shard=index)
        stats.count(Status.OK, table.num_rows)
        paths.commit_stats(stats)
    crashpoints.reached(task.crash_point, index)
