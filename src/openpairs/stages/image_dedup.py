"""Dataset-wide image dedup after the clip stage, in time linear in the number of images, as executor tasks.

Phases (each a set of tasks over files in the output store, resumable by their markers; stages/shuffle.py):
sample (the rows with the smallest key hashes: the same sample whatever the tasks), train (a k-means tree
over the sample, leaves of about `leaf_size` rows), map (each embedding to its home leaf and the leaves
near its boundaries; each sha256 to a hash range), reduce (cosine >= threshold inside each leaf; equal
sha256 in each range), star rounds (components dataset-wide, group id = smallest key, each task holding
one part of the edges), label and slice. The result is one slice per clip shard,
`clip/dup_groups/<i>.parquet` (key, dup_group, method), holding the rows that have a duplicate; the
filter reads only its shard's slice. The driver holds paths and small numbers only.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

from openpairs.core.stats import ShardStats
from openpairs.executors import Executor, ExecutorConfig, make_executor
from openpairs.io import commit
from openpairs.io import fs as ofs
from openpairs.stages import image_dedup_group as group
from openpairs.stages import image_dedup_shuffle as shuffled
from openpairs.stages import image_dedup_stars as stars
from openpairs.stages import image_dedup_tasks as tasks
from openpairs.stages import shuffle
from openpairs.stages.dedup import clear_folder, clear_scratch

SCRATCH = "_scratch/image_dedup"
DONE_FILE = "_image_dedup.json"
SHARDS_PER_SAMPLE_TASK = 64
VISITS_PER_ROW = 2  # reducers are sized for this many leaves per row on average


@dataclass(frozen=True)
class ImageDedupConfig:
    """How images are grouped: cosine threshold and the sizes that bound every task's time and memory."""

    threshold: float = 0.95
    leaf_size: int = 512  # rows per leaf of the k-means tree: a reducer compares rows of one leaf
    branching: int = 16  # children per tree node: distances computed per level of the descent
    max_leaves: int = 2  # leaves an embedding visits at most (home included); rows cut are counted
    sample_per_leaf: int = 32  # sample points per leaf when the tree is trained
    max_sample: int = 200_000  # rows in the training sample at most (the sample and train tasks' memory)
    max_leaf_rows: int = 4_096  # a reducer splits a leaf larger than this
    rows_per_task: int = 250_000  # rows a map or reduce task holds
    seed: int = 0

    def __post_init__(self) -> None:
        if not -1.0 <= self.threshold <= 1.0:
            raise ValueError(f"the image dedup threshold is a cosine in [-1, 1], not {self.threshold}")
        sizes = (
            self.leaf_size,
            self.sample_per_leaf,
            self.max_sample,
            self.max_leaf_rows,
            self.rows_per_task,
        )
        if min(sizes) < 1 or self.branching < 2 or self.max_leaves < 1:
            raise ValueError("image dedup sizes must be positive (branching at least 2)")


def done_record(out: str) -> str:
    """Path of the record that marks the slices complete."""
    return ofs.join(out, "clip", "dup_groups", DONE_FILE)


def run_image_dedup(out: str, config: ImageDedupConfig, executor: ExecutorConfig | None = None) -> ShardStats:
    """Group the images of every clip shard under `out`; skipped when done from the same shards."""
    shards = _clip_shards(out)
    names = [commit.shard_name(i) for i in shards]
    settings = asdict(config)
    record = done_record(out)
    if ofs.exists(record):
        previous = json.loads(ofs.read_text(record))
        if previous["sources"] == names and previous["settings"] == settings:
            clear_scratch(out, SCRATCH)
            return ShardStats.from_dict(previous["stats"])
    _pin_plan(out, names, settings)
    exe = executor or ExecutorConfig(workers=1)
    runner = make_executor(exe)
    try:
        stats = _Run(out, config, shards, runner, exe.retries).go()
    finally:
        runner.close()
    done = {"sources": names, "settings": settings, "stats": stats.to_dict()}
    commit.write_bytes_atomic(record, json.dumps(done, indent=1).encode("utf-8"))
    clear_scratch(out, SCRATCH)
    return stats


def describe(stats: ShardStats) -> str:
    """One line: images compared, groups, rows in them by method."""
    c = stats.counters
    return (
        f"{c['images']:,} images, {c['groups']:,} groups of {c['rows_in_groups']:,} "
        f"({c['exact']:,} exact copies, {c['near']:,} near)"
    )


def _clip_shards(out: str) -> list[int]:
    names = [
        p.rsplit("/", 1)[-1].removesuffix(".parquet")
        for p in ofs.list_files(ofs.join(out, "clip"), ".parquet")
    ]
    return sorted(int(name) for name in names if name.isdigit())


def _pin_plan(out: str, names: list[str], settings: dict[str, Any]) -> None:
    """A killed run resumes only under the same shards and settings; otherwise its scratch and slices go."""
    pinned = ofs.join(out, SCRATCH, "_plan.json")
    plan = {"sources": names, "settings": settings}
    if ofs.exists(pinned) and json.loads(ofs.read_text(pinned)) == plan:
        return
    clear_folder(ofs.join(out, SCRATCH))
    clear_folder(ofs.join(out, "clip", "dup_groups"))
    commit.write_bytes_atomic(pinned, json.dumps(plan, indent=1).encode("utf-8"))


class _Run:
    """One image dedup run's phases, driven from paths and small numbers."""

    def __init__(
        self, out: str, config: ImageDedupConfig, shards: list[int], runner: Executor, retries: int
    ) -> None:
        self.out, self.config, self.shards, self.runner, self.retries = out, config, shards, runner, retries
        scratch = ofs.join(out, SCRATCH)
        self.settings = tasks.Settings(
            out, scratch, config.threshold, config.max_leaves, config.max_leaf_rows
        )
        self.stats = ShardStats(stage="image_dedup", shard=-1)

    def _phase(self, work: Any, phase_tasks: list[Any], folder: str) -> None:
        shuffle.run_phase(
            self.runner, work, phase_tasks, self.retries, ofs.join(self.settings.scratch, folder)
        )

    def go(self) -> ShardStats:
        """Run every phase; returns the counts (rows, groups, exact, near, capped, oversized...)."""
        counts, samples = self._sample()
        rows = sum(counts)
        runs = [tuple(self.shards[a:b]) for a, b in shuffle.groups_of(counts, self.config.rows_per_task)]
        labelled, width = stars.Files(self.settings.scratch, "label", ".parquet", 0), 0
        if rows:
            self._train(samples, rows)
            parts = max(1, math.ceil(rows * VISITS_PER_ROW / self.config.rows_per_task))
            width = self._map(runs, parts)
            labelled = self._components(parts, len(runs))
            self.stats.bump("reducers", parts)
        slices = [group.SliceTask(self.settings, i, run, labelled, width) for i, run in enumerate(runs)]
        self._phase(group.slice_rows, slices, "slice")
        self.stats.bump("images", rows)
        return self.stats

    def _components(self, parts: int, runs: int) -> stars.Files:
        """Reduce, star rounds and labels (a task per part each): the labelled rows, one row group per
        slice task (one per map run, `runs`)."""
        reduces = [shuffled.ReduceTask(self.settings, r, runs, parts) for r in range(parts)]
        self._phase(shuffled.reduce_rows, reduces, "reduce")
        self.stats.bump("oversized_leaf_rows", sum(shuffle.read_marker(t)["oversized"] for t in reduces))
        scratch = self.settings.scratch
        edges = stars.Files(scratch, "reduce", ".edges.parquet", parts)
        rounds = stars.find_components(self._phase, self.settings, edges, parts)
        nodes = stars.Files(scratch, "reduce", ".nodes.parquet", parts)
        labels = [group.LabelTask(self.settings, p, nodes, rounds, runs) for p in range(parts)]
        self._phase(group.label_rows, labels, "label")
        for name in ("rows", "groups", "exact"):
            total = sum(shuffle.read_marker(task)[name] for task in labels)
            self.stats.bump(f"{name}_in_groups" if name == "rows" else name, total)
        c = self.stats.counters
        self.stats.bump("near", c["rows_in_groups"] - c["exact"])
        self.stats.bump("component_rounds", rounds)
        return stars.Files(scratch, "label", ".parquet", parts)

    def _sample(self) -> tuple[list[int], list[str]]:
        """Rows with an image per clip shard, and the sample files."""
        groups = shuffle.groups_of([1] * len(self.shards), SHARDS_PER_SAMPLE_TASK)
        sample_tasks = [
            tasks.SampleTask(self.settings, i, tuple(self.shards[a:b]), self.config.max_sample)
            for i, (a, b) in enumerate(groups)
        ]
        self._phase(tasks.sample_rows, sample_tasks, "sample")
        counts = [n for task in sample_tasks for n in shuffle.read_marker(task)["rows"]]
        return counts, [task.output for task in sample_tasks]

    def _train(self, samples: list[str], rows: int) -> None:
        """Train the tree on the bottom-hash sample; leaves of about leaf_size rows while the sample allows."""
        config = self.config
        size = min(
            config.max_sample,
            rows,
            max(config.sample_per_leaf, rows * config.sample_per_leaf // config.leaf_size),
        )
        leaf_points = max(1, round(size * config.leaf_size / rows))
        train = tasks.TrainTask(
            self.settings, tuple(samples), size, leaf_points, config.branching, config.seed
        )
        self._phase(tasks.train_tree, [train], "tree")
        self.stats.bump("leaves", shuffle.read_marker(train)["leaves"])

    def _map(self, runs: list[tuple[int, ...]], reducers: int) -> int:
        """Map tasks over runs of shards of about rows_per_task rows; the width of every key."""
        maps = [shuffled.MapTask(self.settings, i, run, reducers) for i, run in enumerate(runs)]
        self._phase(shuffled.map_rows, maps, "map")
        group.write_runs(self.settings, runs)
        records = [shuffle.read_marker(task) for task in maps]
        widths = sorted({width for record in records for width in record["widths"]})
        if len(widths) != 1:
            raise ValueError(
                f"image dedup needs keys of one width (fixed-width numbers), found widths {widths}"
            )
        self.stats.bump("leaf_visits", sum(r["assigned"] for r in records))
        self.stats.bump("capped_rows", sum(r["capped"] for r in records))
        return widths[0]
