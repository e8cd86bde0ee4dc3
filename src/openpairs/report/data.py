"""Numbers for the report: per-stage stats, the funnel, LAION-400M Table 1 and the samples' aggregates.

The driver never holds samples: each stage's stats files are merged one at a time in shard order, and the
samples' numbers come from per-shard aggregates (report.aggregates, written by the filter tasks, or by
report tasks for shards without them) merged the same way; the top domains come from a partitioned reduce
(report.domains). Everything degrades gracefully: a stage that did not run, or a column a stage did not
write, yields `None` / no data, which the page and the card show as "no data".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from openpairs.core.stats import ShardStats
from openpairs.executors import ExecutorConfig
from openpairs.io import commit, listing
from openpairs.io import fs as ofs
from openpairs.report.aggregates import (
    SIZE_THRESHOLDS,
    Aggregates,
    domains_path,
    read_aggregates,
    samples_table,
    shard_aggregates,
    write_aggregates,
)
from openpairs.report.domains import top, top_domains
from openpairs.stages import export_join as join
from openpairs.stages.dedup import DONE_FILE
from openpairs.stages.tasks import map_tasks

STAGES = (
    ("extract", "extract", "links → candidates"),
    ("candidates", "dedup", "candidates → unique"),
    ("shards", "download", "unique → downloaded"),
    ("clip", "clip", "downloaded → scored"),
    ("filter", "filter", "scored → kept"),
)
OPTIONAL_STAGES = (  # shown only when the dataset has them
    ("decontaminate", "decontaminate", "scored → eval duplicates, per evaluation set"),
)
FUNNEL = (
    ("candidates", "extract", "rows_out"),
    ("unique", "candidates", "rows_out"),
    ("downloaded", "shards", "rows_out"),
    ("kept", "filter", "rows_out"),
)


@dataclass
class FunnelStep:
    """One funnel step: its count, % of candidates and % of the previous step (None: stage missing)."""

    name: str
    count: int | None
    of_candidates: float | None = None
    of_previous: float | None = None


REPORT_AGGREGATES = "report/_aggregates"  # aggregates of shards the filter did not aggregate
REPORT_DOMAINS = "report/_domains"  # combined domain counts (report.domains), on runs of many shards


@dataclass
class ReportData:
    """All numbers the report shows."""

    out: str
    stages: dict[str, ShardStats] = field(default_factory=dict)
    funnel: list[FunnelStep] = field(default_factory=list)
    aggregates: Aggregates | None = None  # over every downloaded sample (None: no download shard)
    domains: list[tuple[str, int]] = field(default_factory=list)  # top domains of the kept samples

    def histogram(self, name: str) -> dict[str, np.ndarray] | None:
        """The fixed-bin counts of histogram `name` ({"all", "kept"}), None when it has no values."""
        if self.aggregates is None or name not in self.aggregates.histograms:
            return None
        counts = {part: np.array(c, dtype=np.int64) for part, c in self.aggregates.histograms[name].items()}
        return counts if any(c.sum() for c in counts.values()) else None

    def errors(self, limit: int = 15) -> list[tuple[str, str, int]]:
        """The most frequent error messages over all stages: (stage, message, count)."""
        labels = {stage_dir: label for stage_dir, label, _ in STAGES}
        rows = [
            (labels.get(stage, stage), msg, n)
            for stage, stats in self.stages.items()
            for msg, n in stats.errors.items()
        ]
        return sorted(rows, key=lambda r: (-r[2], r[0], r[1]))[:limit]

    def opt_outs(self) -> list[tuple[str, str, int]]:
        """Rows each opt-out signal refused, per stage (`opt_out.<signal>` counters of extract and
        download), then the policy files that could not be used (`opt_out_files.<file> <problem>`)."""
        labels = {stage_dir: label for stage_dir, label, _ in STAGES}
        return [
            (
                labels[stage],
                name.partition(".")[2] if kind == OPT_OUT else f"unusable {name.partition('.')[2]}",
                n,
            )
            for kind in (OPT_OUT, OPT_OUT_FILES)
            for stage in ("extract", "shards")
            if stage in self.stages
            for name, n in sorted(self.stages[stage].counters.items())
            if name.startswith(kind + ".")
        ]


OPT_OUT = "opt_out"  # counter prefix: rows an opt-out signal refused (`opt_out.robots.txt`)
OPT_OUT_FILES = "opt_out_files"  # counter prefix: per-origin policy files that could not be used
DEDUP_STATS = DONE_FILE  # dedup is a global step: its totals (duplicates included) live here


def read_stage(out: str, stage_dir: str) -> ShardStats | None:
    """All shards' stats of one stage merged in shard order (None when the stage has no stats files)."""
    dedup_stats = ofs.join(out, stage_dir, DEDUP_STATS)
    if stage_dir == "candidates" and ofs.exists(dedup_stats):
        try:
            return ShardStats.from_dict(json.loads(ofs.read_text(dedup_stats))["stats"])
        except (ValueError, KeyError, TypeError):
            pass  # fall back to the per-shard files
    files = listing.listed_shards(ofs.join(out, stage_dir))
    if not files:
        return None
    total, unreadable = ShardStats(stage=stage_dir), ShardStats(stage=stage_dir)
    for stats in listing.read_in_order([files[i] for i in sorted(files)], _stats_or_error):
        if isinstance(stats, ShardStats):
            total = total.merge(stats)
        else:  # a damaged file must not sink the report
            unreadable.error(stats)
    return total.merge(unreadable)


def _stats_or_error(path: str) -> ShardStats | str:
    """A stats file, or why it could not be read."""
    try:
        return listing.read_stats(path)
    except (ValueError, KeyError, TypeError) as error:
        return f"unreadable stats file {path.rsplit('/', 1)[-1]}: {type(error).__name__}"


def funnel(stages: dict[str, ShardStats]) -> list[FunnelStep]:
    """candidates → unique → downloaded → kept with counts and percentages."""
    steps: list[FunnelStep] = []
    first: int | None = None
    previous: int | None = None
    for name, stage, _ in FUNNEL:
        stats = stages.get(stage)
        count = stats.rows_out if stats is not None else None
        step = FunnelStep(name, count)
        if name == "candidates":
            first = count
        if count is not None:
            step.of_candidates = 100 * count / first if first else None
            step.of_previous = 100 * count / previous if previous else None
            previous = count
        steps.append(step)
    return steps


def size_table(aggregates: Aggregates | None) -> list[tuple[str, int]] | None:
    """The LAION-400M paper's Table 1 on the kept samples' original sizes."""
    if aggregates is None or not aggregates.sizes:
        return None
    rows = [("Number of unique samples", aggregates.kept)]
    for size in SIZE_THRESHOLDS:
        rows.append((f"Number with height or width >= {size}", aggregates.sizes[f"or {size}"]))
        rows.append((f"Number with height and width >= {size}", aggregates.sizes[f"and {size}"]))
    return rows


def aggregate_files(out: str, executor: ExecutorConfig) -> list[str]:
    """The aggregates file of every done download shard, in shard order: the filter's where it made
    one, else one the report computes now, as executor tasks."""
    shards = sorted(listing.listed_shards(ofs.join(out, join.DOWNLOAD_DIR)))
    listed = {
        stage: listing.listed_shards(ofs.join(out, stage)) for stage in (join.CLIP_DIR, join.FILTER_DIR)
    }
    from_filter = listing.listed_shards(ofs.join(out, join.FILTER_DIR), "_aggregates.json")
    usable = {i: path for i, path in from_filter.items() if i in listed[join.FILTER_DIR]}
    missing = [i for i in shards if i not in usable]
    flags = [(i, i in listed[join.CLIP_DIR], i in listed[join.FILTER_DIR]) for i in missing]
    computed = dict(zip(missing, map_tasks(executor, partial(compute_aggregates, out), flags), strict=True))
    return [usable.get(i) or computed[i] for i in shards]


def compute_aggregates(out: str, shard: tuple[int, bool, bool]) -> str:
    """Task: one shard's aggregates from its download (+ clip, + filter) outputs, written under
    DIR/report/_aggregates/; returns the path."""
    index, with_clip, with_filter = shard
    name = commit.shard_name(index)
    down = join.read_parquet(ofs.join(out, join.DOWNLOAD_DIR, f"{name}.parquet"))
    clip = join.read_parquet(ofs.join(out, join.CLIP_DIR, f"{name}.parquet")) if with_clip else None
    kept = None
    if with_filter:
        filt = join.read_parquet(ofs.join(out, join.FILTER_DIR, f"{name}.parquet"), columns=["key", "status"])
        kept = filt.filter(pc.equal(filt["status"], pa.scalar("ok")))["key"]
    paths = commit.ShardPaths(out, REPORT_AGGREGATES, index)
    return write_aggregates(paths, shard_aggregates(samples_table(down, clip, kept)))


def merge_aggregates(paths: list[str]) -> Aggregates | None:
    """The aggregates files merged one at a time in shard order (None when there are none)."""
    if not paths:
        return None
    total = Aggregates()
    for shard in listing.read_in_order(paths, read_aggregates):
        total.add(shard)
    return total


def read_report_data(out: str, executor: ExecutorConfig | None = None) -> ReportData:
    """Gather the stats of every stage and the samples' aggregates (tasks run by `executor`)."""
    executor = executor or ExecutorConfig()
    data = ReportData(out=out)
    for stage_dir, _, _ in STAGES + OPTIONAL_STAGES:
        stats = read_stage(out, stage_dir)
        if stats is not None:
            data.stages[stage_dir] = stats
    data.funnel = funnel(data.stages)
    paths = aggregate_files(out, executor)
    data.aggregates = merge_aggregates(paths)
    scratch = ofs.join(out, REPORT_DOMAINS)
    data.domains = top_domains([domains_path(p) for p in paths], executor, scratch)
    return data


def top_counts(counts: dict[str, int], limit: int = 15) -> list[tuple[str, int]]:
    """The most common values with their counts (ties broken by value, so the order is stable)."""
    return top(counts.items(), limit)
