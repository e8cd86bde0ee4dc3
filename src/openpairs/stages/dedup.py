"""Global step after extract: exact dedup across all shards, optional bloom filter, reshard to candidates/.

Exact and bounded in memory: rows are hash-partitioned on the dedup key (url, or url+caption) into
partitions small enough for memory; inside a partition the row with the smallest key (the first one
seen in input order) wins. Output shards hold the survivors partition by partition, each in key order,
which spreads every host across shards (polite downloading) and is deterministic for a given input.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import mmh3
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from openpairs.core import crashpoints
from openpairs.core.schemas import CANDIDATE_SCHEMA
from openpairs.core.stats import ShardStats
from openpairs.core.status import Status
from openpairs.io import commit
from openpairs.io import fs as ofs
from openpairs.stages.bloom import SeenFilter

STAGE = "candidates"
SOURCE_STAGE = "extract"
DONE_FILE = "_dedup.json"  # the global step's stats and the extract shards it read
LANGUAGE_GROUPS = ("en", "multi", "nolang")


@dataclass(frozen=True)
class DedupConfig:
    """How candidates are deduplicated and resharded for the download stage."""

    dedup: Literal["url", "url+caption", "none"] = "url+caption"
    shard_size: int = 10_000
    bloom: str | None = None
    bloom_capacity: int = 100_000_000
    split_languages: bool = False
    rows_per_partition: int = 2_000_000


def run_dedup(config: DedupConfig, out: str) -> ShardStats:
    """Deduplicate extract/*.parquet into candidates/; skipped when done from the same extract shards."""
    sources = ofs.list_files(ofs.join(out, SOURCE_STAGE), ".parquet")
    names = [path.rsplit("/", 1)[-1] for path in sources]  # the record stays valid if DIR moves
    done = ofs.join(out, STAGE, DONE_FILE)
    if ofs.exists(done):
        previous = json.loads(ofs.read_text(done))
        if previous.get("sources") == names:
            return ShardStats.from_dict(previous["stats"])
        _clear(ofs.join(out, STAGE))
    started = time.perf_counter()
    total_rows = sum(pq.ParquetFile(ofs.open_file(path)).metadata.num_rows for path in sources)
    partitions = max(1, math.ceil(total_rows / config.rows_per_partition))
    stats = ShardStats(stage="dedup", shard=-1)
    seen = SeenFilter.open(config.bloom, config.bloom_capacity) if config.bloom else None
    survivors = (_unique(table, config, stats, seen) for table in _partitions(sources, config, partitions))
    stats.bump("output_shards", _write_shards(survivors, config, out))
    stats.bump("partitions", partitions)
    stats.time("dedup", time.perf_counter() - started)
    record = {"sources": names, "stats": stats.to_dict()}
    commit.write_bytes_atomic(done, json.dumps(record, indent=1).encode("utf-8"))
    if seen is not None:
        seen.save()
    return stats


def _clear(directory: str) -> None:
    """Remove the outputs of an earlier dedup made from other extract shards."""
    fs, path = ofs.filesystem(directory)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def dedup_keys(table: pa.Table, mode: str) -> pa.Array:
    """The string each row is deduplicated on."""
    if mode == "url":
        return table["url"].combine_chunks()
    return pc.binary_join_element_wise(table["url"], table["caption"], "\x00").combine_chunks()


def _partitions(sources: list[str], config: DedupConfig, partitions: int) -> Iterator[pa.Table]:
    """Each partition's rows; with one partition nothing is spilled (spills go to local scratch)."""
    if partitions == 1 or config.dedup == "none":
        tables = [pq.read_table(ofs.open_file(path), schema=CANDIDATE_SCHEMA) for path in sources]
        yield pa.concat_tables(tables) if tables else CANDIDATE_SCHEMA.empty_table()
        return
    with tempfile.TemporaryDirectory(prefix="openpairs-dedup-") as spill:
        paths = [f"{spill}/{p:04d}.parquet" for p in range(partitions)]
        writers = [pq.ParquetWriter(path, CANDIDATE_SCHEMA) for path in paths]
        for source in sources:
            for batch in pq.ParquetFile(ofs.open_file(source)).iter_batches(batch_size=200_000):
                table = pa.Table.from_batches([batch], schema=CANDIDATE_SCHEMA)
                owner = _partition_of(dedup_keys(table, config.dedup), partitions)
                for p, writer in enumerate(writers):
                    writer.write_table(table.filter(pa.array(owner == p)))
        for writer in writers:
            writer.close()
        for path in paths:
            yield pq.read_table(path, schema=CANDIDATE_SCHEMA)


def _partition_of(keys: pa.Array, partitions: int) -> np.ndarray:
    return np.fromiter(
        (mmh3.hash(k, signed=False) % partitions for k in keys.to_pylist()), np.int64, len(keys)
    )


def _unique(table: pa.Table, config: DedupConfig, stats: ShardStats, seen: SeenFilter | None) -> pa.Table:
    """Rows of one partition that survive exact dedup (first key wins) and the bloom filter, in key order."""
    table = table.sort_by("key")
    if config.dedup != "none" and table.num_rows:
        keys = dedup_keys(table, config.dedup)
        first = (
            pa.table({"k": keys, "i": pa.array(np.arange(len(keys)))})
            .group_by("k", use_threads=False)
            .aggregate([("i", "min")])
        )
        keep = np.zeros(len(keys), dtype=bool)
        keep[first["i_min"].to_numpy()] = True
        stats.count(Status.DUPLICATE, int((~keep).sum()))
        table = table.filter(pa.array(keep))
    if seen is not None and table.num_rows:
        fresh = seen.check_and_add(
            dedup_keys(table, config.dedup if config.dedup != "none" else "url+caption")
        )
        stats.count(Status.SEEN_BEFORE, int((~fresh).sum()))
        table = table.filter(pa.array(fresh))
    stats.count(Status.OK, table.num_rows)
    return table


def language_group(code: str) -> str:
    """LAION-5B's three groups: en, multi (another language) and nolang."""
    return "en" if code == "en" else ("nolang" if not code else "multi")


def _write_shards(tables: Iterator[pa.Table], config: DedupConfig, out: str) -> int:
    """Cut the survivors into shards of shard_size rows (per language group when split)."""
    writers = {
        group: _ShardWriter(out, f"{STAGE}/{group}" if config.split_languages else STAGE, config.shard_size)
        for group in (LANGUAGE_GROUPS if config.split_languages else ("all",))
    }
    for table in tables:
        if config.split_languages:
            groups = np.array([language_group(code) for code in table["language"].to_pylist()])
            for group, writer in writers.items():
                writer.add(table.filter(pa.array(groups == group)))
        else:
            writers["all"].add(table)
    return sum(writer.close() for writer in writers.values())


class _ShardWriter:
    """Accumulates rows and commits a candidates shard (parquet, then its stats) every shard_size rows."""

    def __init__(self, out: str, stage_dir: str, shard_size: int) -> None:
        self.out, self.stage_dir, self.shard_size = out, stage_dir, shard_size
        self.pending: list[pa.Table] = []
        self.rows = 0
        self.index = 0

    def add(self, table: pa.Table) -> None:
        """Queue rows, committing full shards."""
        self.pending.append(table)
        self.rows += table.num_rows
        while self.rows >= self.shard_size:
            merged = pa.concat_tables(self.pending)
            self._commit(merged.slice(0, self.shard_size))
            rest = merged.slice(self.shard_size)
            self.pending, self.rows = [rest], rest.num_rows

    def close(self) -> int:
        """Commit the last partial shard; returns how many shards were written."""
        if self.rows:
            self._commit(pa.concat_tables(self.pending))
        return self.index

    def _commit(self, table: pa.Table) -> None:
        paths = commit.ShardPaths(self.out, self.stage_dir, self.index)
        commit.write_parquet_atomic(table, paths.file("parquet"))
        stats = ShardStats(stage=STAGE, shard=self.index)
        stats.count(Status.OK, table.num_rows)
        paths.commit_stats(stats)
        crashpoints.reached("dedup.shard", self.index)
        self.index += 1
