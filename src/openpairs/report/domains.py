"""Top domains of the kept samples by a partitioned count: map (per-shard counts, hash-partitioned by the
filter tasks) -> combine (one task per COMBINE_SHARDS shards sums each partition over its shards and
writes one file per partition) -> reduce (one task per partition sums its combined files and keeps its
top K) -> the driver merges the partitions' small top-K lists. Each shard's file is read once; a run of
at most COMBINE_SHARDS shards is one task that sums every partition at once.

Exact: a domain lives in one partition only, so each of the overall top K is in its partition's top K;
ties are broken by the domain name everywhere, so the order is the same on every run and executor.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from functools import partial

from openpairs.executors import ExecutorConfig
from openpairs.io import commit, listing
from openpairs.io import fs as ofs
from openpairs.report.aggregates import DOMAIN_PARTITIONS
from openpairs.stages.tasks import map_tasks

TOP_DOMAINS = 15
COMBINE_SHARDS = 1000  # shards per combine task: its memory is the distinct domains of that many shards
IN_DRIVER_BELOW = 64  # fewer shards than this: the reduce runs in the driver's process (no pool to start)


def top(counts: Iterable[tuple[str, int]], limit: int) -> list[tuple[str, int]]:
    """The `limit` largest counts, ties broken by name (so the order is stable)."""
    return sorted(counts, key=lambda item: (-item[1], item[0]))[:limit]


def partition_top(limit: int, paths: list[str]) -> list[tuple[str, int]]:
    """Reduce task: one partition's combined counts (`{domain: count}` files) summed; its top `limit`."""
    counts: Counter[str] = Counter()
    for combined in listing.read_in_order(paths, listing.read_json):
        counts.update(combined)
    return top(counts.items(), limit)


def _summed(paths: list[str]) -> list[Counter[str]]:
    """Every partition of the shards' domain counts (`<shard>_domains.json`) summed, each file read once."""
    partitions: list[Counter[str]] = [Counter() for _ in range(DOMAIN_PARTITIONS)]
    for shard in listing.read_in_order(paths, listing.read_json):
        for partition, counts in zip(partitions, shard, strict=True):
            partition.update(counts)
    return partitions


def whole_top(limit: int, paths: list[str]) -> list[tuple[str, int]]:
    """Task for a small run: every partition summed at once; the top `limit`."""
    return top([pair for counts in _summed(paths) for pair in counts.items()], limit)


def combine(directory: str, chunk: tuple[int, list[str]]) -> list[str]:
    """Combine task: chunk `number`'s shards summed per partition, one file per partition under
    `directory`; returns their paths in partition order."""
    number, paths = chunk
    written = []
    for partition, counts in enumerate(_summed(paths)):
        path = ofs.join(directory, f"{number}-{partition}.json")
        text = json.dumps(dict(sorted(counts.items())), ensure_ascii=False, separators=(",", ":"))
        commit.write_bytes_atomic(path, text.encode("utf-8"))
        written.append(path)
    return written


def top_domains(
    paths: list[str],
    executor: ExecutorConfig,
    directory: str,
    limit: int = TOP_DOMAINS,
    combine_shards: int = COMBINE_SHARDS,
) -> list[tuple[str, int]]:
    """The `limit` most common domains over the domain-count files at `paths` (combined files go under
    `directory`); tasks run by `executor` (in this process for a small run: the same result)."""
    if not paths:
        return []
    runner = executor if len(paths) >= IN_DRIVER_BELOW else ExecutorConfig(workers=1)
    if len(paths) <= combine_shards:
        return map_tasks(runner, partial(whole_top, limit), [paths])[0]
    chunks = [
        (n, paths[start : start + combine_shards])
        for n, start in enumerate(range(0, len(paths), combine_shards))
    ]
    combined = map_tasks(runner, partial(combine, directory), chunks)
    by_partition = [[files[partition] for files in combined] for partition in range(DOMAIN_PARTITIONS)]
    lists = map_tasks(runner, partial(partition_top, limit), by_partition)
    return top([pair for pairs in lists for pair in pairs], limit)
