"""One listing per stage directory: which shards are done, and their small files read in bounded threads.

A stage directory holds `<index>_stats.json` for every done shard. Listing the directory once tells which
shards are done (one `ls`, paginated on object stores), instead of one `exists` call per shard. Small
per-shard files (stats, input versions, report aggregates) are then read by a few threads, yielded in
the order asked, with a bounded number of reads in flight, so the driver holds a few files at a time.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from openpairs.core.stats import ShardStats
from openpairs.io import commit
from openpairs.io import fs as ofs

T = TypeVar("T")
STATS_SUFFIX = "_stats.json"
READ_THREADS = 16  # reads of small files in flight at once (each waits on storage, not on the CPU)


def shard_index(path: str, suffix: str) -> int | None:
    """The shard index of a file named `<digits><suffix>` (parsed as a number), else None."""
    base = path.rsplit("/", 1)[-1]
    if not base.endswith(suffix):
        return None
    stem = base[: -len(suffix)]
    return int(stem) if stem.isdigit() else None


def stats_path(directory: str, index: int) -> str:
    """The stats file of shard `index` in a stage directory."""
    return ofs.join(directory, f"{commit.shard_name(index)}{STATS_SUFFIX}")


def listed_shards(directory: str, suffix: str = STATS_SUFFIX) -> dict[int, str]:
    """Shard index -> path of each `<index><suffix>` file directly in `directory`, from one listing."""
    found: dict[int, str] = {}
    for path in ofs.list_files(directory, suffix):
        index = shard_index(path, suffix)
        if index is not None:
            found[index] = path
    return found


def read_in_order(items: Iterable[str], read: Callable[[str], T], threads: int = READ_THREADS) -> Iterator[T]:
    """`read(item)` for every item, yielded in the items' order, with at most 2 x `threads` reads
    started and not yet yielded."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        window: deque[Future[T]] = deque()
        for item in items:
            window.append(pool.submit(read, item))
            if len(window) >= 2 * threads:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()


def read_json(path: str) -> Any:
    """A small JSON file's content."""
    return json.loads(ofs.read_text(path))


def read_stats(path: str) -> ShardStats:
    """One committed stats file."""
    return ShardStats.from_dict(read_json(path))


def merge_stats(stage: str, paths: Iterable[str], threads: int = READ_THREADS) -> ShardStats:
    """The stats files at `paths` merged one at a time, in the order given (the same total as
    `merge_all` over them in that order); only a bounded window of files is in memory at once."""
    total = ShardStats(stage=stage, shard=-1)
    for stats in read_in_order(paths, read_stats, threads):
        total = total.merge(stats)
    return total
