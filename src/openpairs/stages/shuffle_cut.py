"""The cut: ordered source files → output shards of `shard_size` rows, planned from a prefix sum of counts.

Each cut task writes a contiguous run of shards and reads only the sources (and, in them, the row groups)
its rows overlap, so memory is bounded by one source and one shard, never by the total.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    """Write the task's shards (each parquet, then its stats); shards already done are kept."""
    pending: list[pa.Table] = []
    shard, held = task.first_shard, 0
    for source in task.sources:
        begin = max(task.start, source.first_row) - source.first_row
        end = min(task.stop, source.first_row + source.rows) - source.first_row
        pending.append(_read_rows(source.path, begin, end, task))
        held += end - begin
        while held >= task.shard_size or (held and shard == task.last_shard and _is_last(task, source)):
            merged = pa.concat_tables(pending)
            _commit_shard(task, shard, merged.slice(0, task.shard_size))
            rest = merged.slice(task.shard_size)
            pending, held, shard = [rest], rest.num_rows, shard + 1
    return shard - task.first_shard


def _is_last(task: CutTask, source: CutSource) -> bool:
    return source.first_row + source.rows >= task.stop


def _read_rows(path: str, begin: int, end: int, task: CutTask) -> pa.Table:
    """Rows [begin, end) of a source (counted after the task's row filter), reading only what is needed."""
    with ofs.open_file(path, "rb") as handle:
        parquet = pq.ParquetFile(handle)
        if task.row_filter is not None:
            return _filtered_rows(parquet, begin, end, task)
        sizes = [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)]
        starts = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
        wanted = [i for i in range(len(sizes)) if starts[i] < end and starts[i + 1] > begin]
        table = (
            parquet.read_row_groups(wanted, columns=task.schema.names)
            if wanted
            else task.schema.empty_table()
        )
        first = int(starts[wanted[0]]) if wanted else 0
        return table.cast(task.schema).slice(begin - first, end - begin)


def _filtered_rows(parquet: pq.ParquetFile, begin: int, end: int, task: CutTask) -> pa.Table:
    """Rows [begin, end) of the rows the filter keeps, one row group in memory at a time."""
    assert task.row_filter is not None
    kept, seen = [], 0
    for index in range(parquet.num_row_groups):
        if seen >= end:
            break
        group = parquet.read_row_group(index, columns=task.schema.names).cast(task.schema)
        group = group.filter(pa.array(task.row_filter(group)))
        lo, hi = max(begin - seen, 0), min(end - seen, group.num_rows)
        if hi > lo:
            kept.append(group.slice(lo, hi - lo))
        seen += group.num_rows
    return pa.concat_tables(kept) if kept else task.schema.empty_table()


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
