"""Global step after extract: exact dedup across all shards, exact history of earlier runs, reshard.

It runs as executor tasks (stages/shuffle.py): count the extract shards; map groups of them, hashing each
row's dedup key to 128 bits and partitioning by hash range (duplicates inside a task dropped early);
reduce each range, keeping per hash the row with the smallest key and dropping hashes the history holds;
cut the survivors, in hash order (which spreads every host over many shards: polite downloading), into
candidates shards by a prefix sum of the reducers' counts, each shard's rows in key order. The output depends on the input only: not on
the executor, the number of workers or tasks, or the order tasks finish. With `dedup="none"` the cut
streams the extract shards in input order. Intermediate files live in `DIR/_scratch/dedup/`, removed
when done; every task commits atomically, so a killed run resumes.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, Literal

from openpairs.core.schemas import CANDIDATE_SCHEMA
from openpairs.core.stats import ShardStats
from openpairs.core.status import Status
from openpairs.executors import Executor, ExecutorConfig, make_executor
from openpairs.io import commit
from openpairs.io import fs as ofs
from openpairs.stages import dedup_tasks as tasks
from openpairs.stages import history, shuffle
from openpairs.stages.dedup_tasks import LANGUAGE_GROUPS, dedup_keys, language_group
from openpairs.stages.shuffle_cut import plan_cuts, run_cut

__all__ = ["DONE_FILE", "LANGUAGE_GROUPS", "DedupConfig", "dedup_keys", "language_group", "run_dedup"]

STAGE = "candidates"
SOURCE_STAGE = "extract"
DONE_FILE = "_dedup.json"  # the global step's stats and the extract shards it read
SCRATCH = "_scratch/dedup"
PLAN_FILE = "_plan.json"
FILES_PER_COUNT_TASK = 64
HISTORY_WEIGHT = 8  # a history hash (16 bytes) weighs this much less than a candidate row in a reducer


@dataclass(frozen=True)
class DedupConfig:
    """How candidates are deduplicated and resharded for the download stage."""

    dedup: Literal["url", "url+caption", "none"] = "url+caption"
    shard_size: int = 10_000
    history: str | None = None  # directory (any fsspec URL) of the dedup hashes of earlier runs
    split_languages: bool = False
    rows_per_task: int = 250_000  # rows a map, reduce or cut task holds: bounds every task's memory

    def __post_init__(self) -> None:
        if self.history and self.dedup == "none":
            raise ValueError("a history needs a dedup key: use --dedup url or url+caption with --history")
        if self.shard_size < 1 or self.rows_per_task < 1:
            raise ValueError("shard_size and rows_per_task must be at least 1")


def run_dedup(config: DedupConfig, out: str, executor: ExecutorConfig | None = None) -> ShardStats:
    """Deduplicate extract/*.parquet into candidates/; skipped when done from the same extract shards."""
    sources = ofs.list_files(ofs.join(out, SOURCE_STAGE), ".parquet")
    names = [path.rsplit("/", 1)[-1] for path in sources]  # the record stays valid if DIR moves
    done = ofs.join(out, STAGE, DONE_FILE)
    if ofs.exists(done):
        previous = json.loads(ofs.read_text(done))
        if previous.get("sources") == names:
            clear_scratch(out)  # a run killed after its record, before its cleanup
            return ShardStats.from_dict(previous["stats"])
        clear_folder(ofs.join(out, STAGE))
    started = time.perf_counter()
    plan = _pinned_plan(config, out, names)
    runner = make_executor(executor or ExecutorConfig(workers=1))
    try:
        stats = _Run(config, out, sources, plan, runner, (executor or ExecutorConfig()).retries).go()
    finally:
        runner.close()
    stats.time("dedup", time.perf_counter() - started)
    record = {"sources": names, "stats": stats.to_dict()}
    commit.write_bytes_atomic(done, json.dumps(record, indent=1).encode("utf-8"))
    clear_scratch(out)
    return stats


def clear_scratch(out: str, scratch: str = SCRATCH) -> None:
    """Remove a global step's scratch folder, and the scratch root when nothing else uses it."""
    clear_folder(ofs.join(out, scratch))
    root = ofs.join(out, scratch.split("/")[0])
    if ofs.exists(root) and not ofs.list_files(root):
        clear_folder(root)


def _pinned_plan(config: DedupConfig, out: str, names: list[str]) -> dict[str, Any]:
    """What this dedup run is: its sources, settings and the history generation it starts from. A killed
    run resumes only under the same plan; otherwise its scratch and partial candidates are cleared."""
    scratch = ofs.join(out, SCRATCH)
    pinned = ofs.join(scratch, PLAN_FILE)
    settings = asdict(config)
    if ofs.exists(pinned):
        plan: dict[str, Any] = json.loads(ofs.read_text(pinned))
        if plan["sources"] == names and plan["settings"] == settings:
            return plan
        clear_folder(scratch)
    clear_folder(ofs.join(out, STAGE))
    base = history.current(config.history, config.dedup) if config.history else None
    if base is not None:
        clear_folder(base.next(1).folder)  # what a killed run under another plan may have left
    plan = {"sources": names, "settings": settings, "history": asdict(base) if base else None}
    commit.write_bytes_atomic(pinned, json.dumps(plan, indent=1).encode("utf-8"))
    return plan


def clear_folder(directory: str) -> None:
    """Remove a folder of the output store (scratch, or outputs of an earlier dedup)."""
    fs, path = ofs.filesystem(directory)
    if fs.exists(path):
        fs.rm(path, recursive=True)


class _Run:
    """One dedup run's phases, driven from paths and small numbers."""

    def __init__(
        self,
        config: DedupConfig,
        out: str,
        sources: list[str],
        plan: dict[str, Any],
        runner: Executor,
        retries: int,
    ) -> None:
        self.config, self.out, self.sources, self.runner, self.retries = config, out, sources, runner, retries
        self.scratch = ofs.join(out, SCRATCH)
        self.base = history.Generation(**plan["history"]) if plan["history"] else None
        self.groups = LANGUAGE_GROUPS if config.split_languages else ("all",)
        self.stats = ShardStats(stage="dedup", shard=-1)
        self.reducers, self.survivors = 0, 0

    def go(self) -> ShardStats:
        """Run every phase; returns the stats (every extracted row counted once)."""
        counts, row_groups = self._count()
        if self.config.dedup == "none":
            self.stats.count(Status.OK, sum(sum(c.values()) for c in counts))
            sources = {
                g: [(path, c[g]) for path, c in zip(self.sources, counts, strict=True)] for g in self.groups
            }
            shards = self._cut(sources, filtered=self.config.split_languages)
        else:
            shards = self._cut(self._dedup(row_groups), filtered=False)
            self._commit_history()
        self.stats.bump("output_shards", shards)
        return self.stats

    def _phase(self, work: Any, phase_tasks: list[Any], folder: str) -> None:
        shuffle.run_phase(self.runner, work, phase_tasks, self.retries, ofs.join(self.out, folder))

    def _count(self) -> tuple[list[dict[str, int]], list[list[int]]]:
        """Rows of every extract shard ({"all": n}, or per language group for a split without dedup),
        and of each of its row groups."""
        split = self.config.split_languages and self.config.dedup == "none"
        groups = shuffle.groups_of([1] * len(self.sources), FILES_PER_COUNT_TASK)
        count_tasks = [
            tasks.CountTask(self.scratch, i, tuple(self.sources[a:b]), split)
            for i, (a, b) in enumerate(groups)
        ]
        self._phase(tasks.count_rows, count_tasks, f"{SCRATCH}/count")
        records = [shuffle.read_marker(task) for task in count_tasks]
        return [f for r in records for f in r["files"]], [g for r in records for g in r["row_groups"]]

    def _dedup(self, row_groups: list[list[int]]) -> dict[str, list[tuple[str, int]]]:
        """Map and reduce; returns each group's reducer outputs with their survivor counts, in order."""
        budget = self.config.rows_per_task
        units = [
            (path, i) for path, sizes in zip(self.sources, row_groups, strict=True) for i in range(len(sizes))
        ]
        sizes = [size for sizes in row_groups for size in sizes]
        history_rows = self.base.rows if self.base else 0
        reducers = max(1, math.ceil(sum(sizes) / budget), math.ceil(history_rows / (budget * HISTORY_WEIGHT)))
        maps = [
            tasks.MapTask(self.scratch, i, tasks.slices_of(units[a:b]), reducers, self.config.dedup)
            for i, (a, b) in enumerate(shuffle.groups_of(sizes, budget))
        ]
        self._phase(tasks.map_rows, maps, f"{SCRATCH}/map")
        merged = self.base.next(reducers) if self.base else None
        reduces = [
            tasks.ReduceTask(self.scratch, r, reducers, len(maps), self.groups, self.base, merged)
            for r in range(reducers)
        ]
        self._phase(tasks.reduce_rows, reduces, f"{SCRATCH}/reduce")
        records = [shuffle.read_marker(task) for task in reduces]
        self._tally(maps, records, reducers)
        return {
            group: [
                (task.output(group), record["counts"][group])
                for task, record in zip(reduces, records, strict=True)
            ]
            for group in self.groups
        }

    def _tally(self, maps: list[tasks.MapTask], records: list[dict[str, Any]], reducers: int) -> None:
        """Count every extracted row once: duplicate (in a map or a reducer), seen_before or ok."""
        duplicates = sum(shuffle.read_marker(task)["duplicate"] for task in maps)
        self.stats.count(Status.DUPLICATE, duplicates + sum(r["duplicate"] for r in records))
        if self.base is not None:
            self.stats.count(Status.SEEN_BEFORE, sum(r["seen_before"] for r in records))
        self.survivors = sum(sum(r["counts"].values()) for r in records)
        self.stats.count(Status.OK, self.survivors)
        self.stats.bump("partitions", reducers)
        self.stats.bump("map_tasks", len(maps))
        self.reducers = reducers

    def _commit_history(self) -> None:
        """Point the history at the generation the reducers wrote (old ∪ this run's survivors)."""
        if self.base is not None:
            merged = self.base.next(self.reducers)
            history.commit_generation(merged, self.base, self.base.rows + self.survivors)

    def _cut(self, sources: dict[str, list[tuple[str, int]]], filtered: bool) -> int:
        """Write every group's candidates shards; returns how many there are."""
        shards = 0
        for group, group_sources in sources.items():
            stage_dir = f"{STAGE}/{group}" if self.config.split_languages else STAGE
            row_filter = partial(tasks.in_group, group) if filtered else None
            size, budget = self.config.shard_size, self.config.rows_per_task
            cuts = plan_cuts(self.out, stage_dir, group_sources, size, budget, CANDIDATE_SCHEMA, row_filter)
            self._phase(run_cut, cuts, stage_dir)
            shards += -(-sum(rows for _, rows in group_sources) // size)
        return shards
