"""Top domains of the kept samples by a partitioned count: map (per-shard counts, hash-partitioned by the
filter tasks) -> reduce (one task per partition sums it and keeps its top K) -> the driver merges the
partitions' top-K lists.

Exact: a domain lives in one partition only, so each of the overall top K is in its partition's top K;
ties are broken by the domain name everywhere, so the order is the same on every run and executor.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from functools import partial

from openpairs.executors import ExecutorConfig
from openpairs.io import listing
from openpairs.report.aggregates import DOMAIN_PARTITIONS
from openpairs.stages.tasks import map_tasks

TOP_DOMAINS = 15
IN_DRIVER_BELOW = 64  # fewer shards than this: the reduce runs in the driver's process (no pool to start)


def top(counts: Iterable[tuple[str, int]], limit: int) -> list[tuple[str, int]]:
    """The `limit` largest counts, ties broken by name (so the order is stable)."""
    return sorted(counts, key=lambda item: (-item[1], item[0]))[:limit]


def partition_top(paths: list[str], limit: int, partition: int) -> list[tuple[str, int]]:
    """Reduce task: partition `partition` of every shard's domain counts (`<shard>_domains.json`) summed;
    its top `limit`."""
    counts: Counter[str] = Counter()
    for partitions in listing.read_in_order(paths, listing.read_json):
        counts.update(partitions[partition])
    return top(counts.items(), limit)


def top_domains(
    paths: list[str], executor: ExecutorConfig, limit: int = TOP_DOMAINS
) -> list[tuple[str, int]]:
    """The `limit` most common domains over the domain-count files at `paths`, one reduce task per
    partition run by `executor` (in this process for a small run: the same function, the same result)."""
    if not paths:
        return []
    runner = executor if len(paths) >= IN_DRIVER_BELOW else ExecutorConfig(workers=1)
    lists = map_tasks(runner, partial(partition_top, paths, limit), range(DOMAIN_PARTITIONS))
    return top([pair for pairs in lists for pair in pairs], limit)
