"""Filter stage: apply thresholds to the clip annotations; every candidate row is kept and marked, never lost.

Reads `shards/<i>.parquet` (all candidates, with `language`) and `clip/<i>.parquet`, writes
`filter/<i>.parquet` (key, status, language, similarity, punsafe, pwatermark) and, beside it, the shard's
report aggregates `filter/<i>_aggregates.json` (report.aggregates). Status is the first failing
rule in this order: not_downloaded, the clip status (missing_image, decode_error, empty_caption),
eval_duplicate, below_similarity, unsafe, unsafe_caption, watermark, near_duplicate; else ok. With
`drop_duplicates`, a shard reads only its own slice of the dataset-wide image groups
(`clip/dup_groups/<i>.parquet`, stages/image_dedup.py) and keeps the smallest key of each group; a
decontaminated dataset's shard reads its slice of eval duplicates (`decontaminate/<i>.parquet`). The safety
presets (`safety`: research, research-safe) lower the punsafe limit and turn on the caption keyword filter
(safety/captions.py). It is cheap, so every run recomputes all shards (no resume-skip).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from openpairs.core import crashpoints
from openpairs.core.stats import ShardStats
from openpairs.core.status import Status
from openpairs.io import commit
from openpairs.io import fs as ofs
from openpairs.report.aggregates import samples_table, shard_aggregates, write_aggregates
from openpairs.safety.captions import SAFETY_PRESETS, CaptionFilter, caption_filter
from openpairs.stages import decontaminate
from openpairs.stages.image_dedup import done_record
from openpairs.stages.image_dedup_tasks import slice_path
from openpairs.stages.runner import Progress, ShardTask, StageResult, run_stage

STAGE = "filter"
_FIELDS: list[tuple[str, pa.DataType]] = [
    ("key", pa.string()),
    ("status", pa.string()),
    ("language", pa.string()),
    ("similarity", pa.float64()),
    ("punsafe", pa.float32()),
    ("pwatermark", pa.float32()),
]
OUTPUT_SCHEMA = pa.schema(_FIELDS)


@dataclass(frozen=True)
class FilterConfig:
    """Thresholds (preset defaults: laion400m 0.3 for all; laion5b 0.28 English, 0.26 other/no language)."""

    min_similarity: float = 0.3  # captions whose language is in english_codes
    min_similarity_other: float = 0.3  # other languages and no language ("")
    english_codes: tuple[str, ...] = ("en",)
    max_punsafe: float | None = None  # drop punsafe > this (null punsafe passes, counted)
    max_pwatermark: float | None = None  # drop pwatermark > this (null passes, counted)
    drop_duplicates: bool = False  # keep only the smallest key of each image dedup group
    safety: str = ""  # "", "research" (punsafe > 0.95) or "research-safe" (> 0.45), with the caption keywords
    caption_blocklist: str | None = None  # a keyword file extending the shipped list (safety/captions.py)

    def __post_init__(self) -> None:
        if self.safety and self.safety not in SAFETY_PRESETS:
            raise ValueError(f"safety must be one of {', '.join(SAFETY_PRESETS)}, not {self.safety!r}")

    @property
    def punsafe_limit(self) -> float | None:
        """The punsafe above which a row is dropped: the lower of max_punsafe and the safety preset's."""
        limits = [x for x in (self.max_punsafe, SAFETY_PRESETS.get(self.safety)) if x is not None]
        return min(limits) if limits else None


@dataclass(frozen=True)
class ShardRules:
    """What one shard's decisions read besides the thresholds: its image groups, eval duplicates and the
    caption filter (each None when off)."""

    groups: dict[str, str] | None
    eval_duplicates: set[str] | None
    captions: CaptionFilter | None


def shard_tasks(out: str) -> list[ShardTask]:
    """One task per download shard: inputs (download parquet, clip parquet, its image dedup slice)."""
    tasks = []
    for path in ofs.list_files(ofs.join(out, "shards"), ".parquet"):
        stem = path.rsplit("/", 1)[-1].removesuffix(".parquet")
        if stem.isdigit():
            clip = ofs.join(out, "clip", f"{stem}.parquet")
            groups = slice_path(out, int(stem))
            evals = decontaminate.slice_path(out, int(stem))
            inputs = (path, clip, groups, evals)
            tasks.append(ShardTask(stage=STAGE, index=int(stem), inputs=inputs, out=out))
    return tasks


def _read(path: str, columns: Sequence[str] | None = None) -> Any:
    import pyarrow.parquet as pq

    with ofs.open_file(path, "rb") as handle:
        return pq.read_table(handle, columns=list(columns) if columns else None)


def run_shard(config: FilterConfig, task: ShardTask) -> ShardStats:
    """Mark every candidate of one shard ok or with the reason it is dropped."""
    stats = ShardStats(stage=STAGE, shard=task.index)
    down_path, clip_path = task.inputs[0], task.inputs[1]
    if not ofs.exists(clip_path):
        raise FileNotFoundError(f"{clip_path} is missing: run `openpairs clip` before `openpairs filter`")
    down_table, clip_table = _read(down_path), _read(clip_path)
    down = down_table.to_pydict()
    clip = {row["key"]: row for row in clip_table.to_pylist()}
    rules = ShardRules(
        groups=_slice_groups(task.inputs[2], task.out) if config.drop_duplicates else None,
        eval_duplicates=decontaminate.eval_duplicate_keys(task.out, task.inputs[3]),
        captions=caption_filter(bool(config.safety), config.caption_blocklist),
    )
    out: dict[str, list[Any]] = {name: [] for name in OUTPUT_SCHEMA.names}
    languages = down.get("language", [""] * len(down["key"]))
    captions = down.get("caption", [""] * len(down["key"]))
    for key, language, caption in zip(down["key"], languages, captions, strict=True):
        row = clip.get(key)
        status = _decide(config, row, (language or "", caption or ""), rules, stats)
        stats.count(status)
        for name, value in (("key", key), ("status", status), ("language", language or "")):
            out[name].append(value)
        for name in ("similarity", "punsafe", "pwatermark"):
            out[name].append(row.get(name) if row else None)
    crashpoints.reached("filter.shard", task.index)
    table = pa.table(out, schema=OUTPUT_SCHEMA)
    commit.write_parquet_atomic(table, task.paths.file("parquet"))
    kept = table.filter(pc.equal(table["status"], pa.scalar(Status.OK)))["key"]
    write_aggregates(task.paths, shard_aggregates(samples_table(down_table, clip_table, kept)))
    return stats


def _slice_groups(path: str, out: str) -> dict[str, str]:
    """This shard's rows that have an image duplicate, with their group (its smallest key)."""
    if not ofs.exists(done_record(out)) or not ofs.exists(path):
        raise FileNotFoundError(
            f"{path} is missing: drop_duplicates needs the image dedup groups "
            "(`openpairs clip --image-dedup`, or a build with image_dedup)"
        )
    table = _read(path, ["key", "dup_group"])
    return dict(zip(table.column("key").to_pylist(), table.column("dup_group").to_pylist(), strict=True))


def _decide(
    config: FilterConfig,
    row: dict[str, Any] | None,
    text: tuple[str, str],
    rules: ShardRules,
    stats: ShardStats,
) -> str:
    """The status of one candidate (`text`: its language and caption): the first rule it fails, else ok."""
    if row is None:
        return Status.NOT_DOWNLOADED
    if row.get("status", Status.OK) != Status.OK:
        return str(row["status"])
    if rules.eval_duplicates is not None and row["key"] in rules.eval_duplicates:
        return Status.EVAL_DUPLICATE
    language, caption = text
    threshold = config.min_similarity if language in config.english_codes else config.min_similarity_other
    if row["similarity"] < threshold:
        return Status.BELOW_SIMILARITY
    limit = config.punsafe_limit
    if limit is not None and _exceeds(row.get("punsafe"), limit, "punsafe", stats):
        return Status.UNSAFE
    if rules.captions is not None and rules.captions.blocked(caption):
        return Status.UNSAFE_CAPTION
    if config.max_pwatermark is not None and _exceeds(
        row.get("pwatermark"), config.max_pwatermark, "pwatermark", stats
    ):
        return Status.WATERMARK
    if rules.groups is not None and rules.groups.get(row["key"], row["key"]) != row["key"]:
        return Status.NEAR_DUPLICATE
    return Status.OK


def _exceeds(value: float | None, limit: float, name: str, stats: ShardStats) -> bool:
    if value is None or np.isnan(value):
        stats.bump(f"{name}_missing")
        return False
    return value > limit


def run_filter(
    out: str, config: FilterConfig, executor: Any, progress: Progress | None = None
) -> StageResult[FilterConfig]:
    """Recompute every filter shard with `config` (previous results are replaced, not skipped)."""
    tasks = shard_tasks(out)
    for task in tasks:
        ofs.remove(task.paths.stats)
    if tasks:
        settings = json.dumps(asdict(config), indent=1).encode("utf-8")
        commit.write_bytes_atomic(ofs.join(out, STAGE, "filter_config.json"), settings)
    return run_stage(run_shard, config, tasks, executor, progress)
