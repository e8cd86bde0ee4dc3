"""Numbers for the report: per-stage stats, the funnel, LAION-400M Table 1 and per-sample columns.

Everything degrades gracefully: a stage that did not run, or a column a stage did not write, yields
`None` / an empty table, which the page and the card show as "no data".
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from openpairs.core.stats import ShardStats, merge_all
from openpairs.io import fs as ofs
from openpairs.stages import export_join as join
from openpairs.stages.dedup import DONE_FILE

STAGES = (
    ("extract", "extract", "links → candidates"),
    ("candidates", "dedup", "candidates → unique"),
    ("shards", "download", "unique → downloaded"),
    ("clip", "clip", "downloaded → scored"),
    ("filter", "filter", "scored → kept"),
)
FUNNEL = (
    ("candidates", "extract", "rows_out"),
    ("unique", "candidates", "rows_out"),
    ("downloaded", "shards", "rows_out"),
    ("kept", "filter", "rows_out"),
)
SIZE_THRESHOLDS = (1024, 512, 256)
SAMPLE_COLUMNS = ("key", "url", "caption", "language", "original_width", "original_height")
SCORE_COLUMNS = ("similarity", "punsafe", "pwatermark", "aesthetic", "nsfw")


@dataclass
class FunnelStep:
    """One funnel step: its count, % of candidates and % of the previous step (None: stage missing)."""

    name: str
    count: int | None
    of_candidates: float | None = None
    of_previous: float | None = None


@dataclass
class ReportData:
    """All numbers the report shows."""

    out: str
    stages: dict[str, ShardStats] = field(default_factory=dict)
    funnel: list[FunnelStep] = field(default_factory=list)
    samples: pa.Table | None = None  # one row per downloaded sample, with `kept`

    def kept(self) -> pa.Table | None:
        """The kept samples (None when no sample table exists)."""
        if self.samples is None:
            return None
        return self.samples.filter(self.samples["kept"])

    def column(self, name: str, kept_only: bool = False) -> np.ndarray | None:
        """Non-null values of a numeric column, or None when the column is missing or empty."""
        table = self.kept() if kept_only else self.samples
        if table is None or name not in table.column_names:
            return None
        values = table[name].drop_null().to_numpy(zero_copy_only=False).astype(np.float64)
        if name == "similarity":
            values = values[values > -1.0]  # -1.0 marks "no similarity"
        return values if values.size else None

    def errors(self, limit: int = 15) -> list[tuple[str, str, int]]:
        """The most frequent error messages over all stages: (stage, message, count)."""
        labels = {stage_dir: label for stage_dir, label, _ in STAGES}
        rows = [
            (labels.get(stage, stage), msg, n)
            for stage, stats in self.stages.items()
            for msg, n in stats.errors.items()
        ]
        return sorted(rows, key=lambda r: (-r[2], r[0], r[1]))[:limit]


DEDUP_STATS = DONE_FILE  # dedup is a global step: its totals (duplicates included) live here


def read_stage(out: str, stage_dir: str) -> ShardStats | None:
    """All shards' stats of one stage merged (None when the stage has no stats files)."""
    dedup_stats = ofs.join(out, stage_dir, DEDUP_STATS)
    if stage_dir == "candidates" and ofs.exists(dedup_stats):
        try:
            return ShardStats.from_dict(json.loads(ofs.read_text(dedup_stats))["stats"])
        except (ValueError, KeyError, TypeError):
            pass  # fall back to the per-shard files
    files = ofs.list_files(ofs.join(out, stage_dir), "_stats.json")
    if not files:
        return None
    parts, unreadable = [], ShardStats(stage=stage_dir)
    for path in files:
        try:
            parts.append(ShardStats.from_dict(json.loads(ofs.read_text(path))))
        except (ValueError, KeyError, TypeError) as error:  # a damaged file must not sink the report
            unreadable.error(f"unreadable stats file {path.rsplit('/', 1)[-1]}: {type(error).__name__}")
    return merge_all(stage_dir, [*parts, unreadable])


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


def size_table(kept: pa.Table | None) -> list[tuple[str, int]] | None:
    """The LAION-400M paper's Table 1 on the kept samples' original sizes."""
    if kept is None or "original_width" not in kept.column_names:
        return None
    width = np.nan_to_num(kept["original_width"].to_numpy(zero_copy_only=False).astype(np.float64))
    height = np.nan_to_num(kept["original_height"].to_numpy(zero_copy_only=False).astype(np.float64))
    rows = [("Number of unique samples", kept.num_rows)]
    for size in SIZE_THRESHOLDS:
        rows.append(
            (f"Number with height or width >= {size}", int(np.sum((width >= size) | (height >= size))))
        )
        rows.append(
            (f"Number with height and width >= {size}", int(np.sum((width >= size) & (height >= size))))
        )
    return rows


def _shard_samples(out: str, name: str) -> pa.Table:
    """One shard's downloaded samples with their scores and a `kept` flag."""
    down = join.read_parquet(ofs.join(out, join.DOWNLOAD_DIR, f"{name}.parquet"))
    down = down.filter(pc.equal(down["status"], pa.scalar("ok")))
    table = down.select([c for c in SAMPLE_COLUMNS if c in down.column_names])
    clip_path = ofs.join(out, join.CLIP_DIR, f"{name}.parquet")
    if ofs.exists(clip_path):
        clip = join.read_parquet(clip_path)
        table = table.join(clip.select(["key", *[c for c in SCORE_COLUMNS if c in clip.column_names]]), "key")
    filter_path = ofs.join(out, join.FILTER_DIR, f"{name}.parquet")
    if ofs.exists(filter_path):
        filt = join.read_parquet(filter_path, columns=["key", "status"])
        ok = filt.filter(pc.equal(filt["status"], pa.scalar("ok")))["key"]
        kept = pc.is_in(table["key"], value_set=ok)
    else:
        kept = pa.array([True] * table.num_rows)
    return table.append_column("kept", kept).sort_by("key")


def read_samples(out: str) -> pa.Table | None:
    """Every downloaded sample of every done shard (None when no download shard exists)."""
    names = join.shard_names(out)
    if not names:
        return None
    tables = [_shard_samples(out, name) for name in names]
    return pa.concat_tables(tables, promote_options="default")


def read_report_data(out: str) -> ReportData:
    """Gather the stats of every stage and the per-sample table."""
    data = ReportData(out=out)
    for stage_dir, _, _ in STAGES:
        stats = read_stage(out, stage_dir)
        if stats is not None:
            data.stages[stage_dir] = stats
    data.funnel = funnel(data.stages)
    data.samples = read_samples(out)
    return data


def top_counts(values: list[str], limit: int = 15) -> list[tuple[str, int]]:
    """The most common values with their counts (ties broken by value, so the order is stable)."""
    return sorted(Counter(values).items(), key=lambda item: (-item[1], item[0]))[:limit]


def domain(url: str) -> str:
    """The host of a URL, without a leading www."""
    host = url.split("://", 1)[-1].split("/", 1)[0].split("?", 1)[0].split(":", 1)[0].lower()
    return host[4:] if host.startswith("www.") else host
