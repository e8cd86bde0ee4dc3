"""The steps scrub redoes after rewriting download shards: the pipeline's own stage functions, run with the
settings the dataset recorded (DIR/config.json, filter/filter_config.json, the image dedup record, each
export's manifest, index/index.json). Each takes the download shards scrub rewrote and returns whether it
ran (False: the dataset has no such output).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, TypeVar

from openpairs.core.stats import ShardStats
from openpairs.executors import ExecutorConfig
from openpairs.io import commit
from openpairs.io import fs as ofs
from openpairs.stages.runner import ShardTask, run_stage

T = TypeVar("T")
DOWNLOAD_DIR = "shards"


class NotFinished(ValueError):
    """The dataset is not finished (a download shard is not done): finish or resume its build first."""


def download_shards(out: str) -> list[int]:
    """The indices of the download shards under `out`, in order."""
    names = [
        p.rsplit("/", 1)[-1].removesuffix(".parquet") for p in ofs.list_files(ofs.join(out, DOWNLOAD_DIR))
    ]
    return sorted(int(name) for name in names if name.isdigit())


def check_finished(out: str) -> None:
    """Raise NotFinished unless every download shard under `out` is done (scrub never downloads)."""
    shards = download_shards(out)
    if not shards:
        raise NotFinished(f"{out} has no download shards ({out}/{DOWNLOAD_DIR}/*.parquet): nothing to scrub")
    missing = [i for i in shards if not commit.ShardPaths(out, DOWNLOAD_DIR, i).is_done()]
    if missing:
        raise NotFinished(
            f"download shard(s) {missing[:10]} of {out} are not done: finish the build, then scrub"
        )


def recorded_config(cls: type[T], values: dict[str, Any]) -> T:
    """A stage's frozen config from recorded JSON values."""
    return cls(**recorded_fields(cls, values))


def recorded_fields(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """The values of `cls`'s fields in recorded JSON (lists back to tuples; unknown keys ignored)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in names}


def recorded(out: str) -> dict[str, Any]:
    """DIR/config.json, the settings of the build ({} when absent)."""
    path = ofs.join(out, "config.json")
    return json.loads(ofs.read_text(path)) if ofs.exists(path) else {}


def _refuse(_config: None, task: ShardTask) -> ShardStats:
    raise NotFinished(f"download shard {task.index} is not done: scrub never downloads")


def redo_download_summary(out: str, executor: ExecutorConfig) -> None:
    """Rewrite DIR/_summary/shards.json from the scrubbed shards' stats (the runner's own summary)."""
    tasks = []
    for index in download_shards(out):
        inputs = commit.ShardPaths(out, DOWNLOAD_DIR, index).read_versions()
        tasks.append(ShardTask(DOWNLOAD_DIR, index, tuple(inputs), out))
    if not run_stage(_refuse, None, tasks, executor).ok:
        raise NotFinished(f"download shards of {out} are not done: finish the build, then scrub")


def redo_clip(out: str, executor: ExecutorConfig, changed: list[int]) -> bool:
    """Redo the clip shards whose download shard was rewritten: their stats go (not done), the runner
    redoes them with the recorded model. (Not left to the runner's input versions: they name absolute
    paths, which a copied or moved dataset no longer has.)"""
    from openpairs.stages import clip

    if not ofs.exists(ofs.join(out, clip.STAGE)):
        return False
    for index in changed:
        ofs.remove(commit.ShardPaths(out, clip.STAGE, index).stats)
    config = recorded_config(clip.ClipConfig, recorded(out).get("clip", {}))
    result = run_stage(clip.run_shard, config, clip.shard_tasks(out), executor, None, config.resources())
    if not result.ok:
        raise RuntimeError(f"clip failed on shards {[f['shard'] for f in result.failed]}: {result.failed[0]}")
    return True


def redo_image_dedup(out: str, executor: ExecutorConfig, _changed: list[int]) -> bool:
    """Regroup the images (dataset-wide) with the recorded settings, when the dataset has groups."""
    from openpairs.stages.image_dedup import ImageDedupConfig, done_record, run_image_dedup

    record = done_record(out)
    if not ofs.exists(record):
        return False
    config = recorded_config(ImageDedupConfig, json.loads(ofs.read_text(record))["settings"])
    ofs.remove(record)  # its sources (shard names) are unchanged: without this it would be skipped
    run_image_dedup(out, config, executor)
    return True


def redo_filter(out: str, executor: ExecutorConfig, _changed: list[int]) -> bool:
    """Re-filter every shard with the filter settings last used (filter/filter_config.json)."""
    from openpairs.stages import filter as filter_stage

    path = ofs.join(out, filter_stage.STAGE, "filter_config.json")
    if not ofs.exists(path):
        return False
    config = recorded_config(filter_stage.FilterConfig, json.loads(ofs.read_text(path)))
    result = filter_stage.run_filter(out, config, executor)
    if not result.ok:
        raise RuntimeError(f"filter failed: {result.failed[0]}")
    return True


def redo_export(out: str, executor: ExecutorConfig, _changed: list[int]) -> bool:
    """Re-export each format present (DIR/dataset/<format>/_manifest.json) with its recorded settings."""
    from openpairs.stages.export import DATASET_DIR, MANIFEST, ExportConfig, run_export

    manifests = [p for p in ofs.expand(ofs.join(out, DATASET_DIR, "*", MANIFEST))]
    for manifest in sorted(manifests):
        run_export(
            out, recorded_config(ExportConfig, json.loads(ofs.read_text(manifest))["config"]), executor
        )
    return bool(manifests)


def redo_report(out: str, executor: ExecutorConfig, _changed: list[int]) -> bool:
    """Rewrite the report (DIR/report, DIR/README.md) when the dataset has one."""
    from openpairs.report import build_report

    if not ofs.exists(ofs.join(out, "report", "index.html")):
        return False
    build_report(out, warnings=tuple(recorded(out).get("report_warnings", ())), executor=executor)
    return True


def redo_index(out: str, executor: ExecutorConfig, _changed: list[int]) -> bool:
    """Rebuild DIR/index as recorded: a forced factory again (index.json says memory 0), else the automatic
    choice (default memory budget); the target recall, modalities and tuning queries."""
    from openpairs.index.build import IndexConfig, build_index

    path = ofs.join(out, "index", "index.json")
    if not ofs.exists(path):
        return False
    manifest = json.loads(ofs.read_text(path))
    image = manifest["indices"]["image"]
    config = IndexConfig(
        target_recall=float(image.get("target_recall", IndexConfig.target_recall)),
        text="text" in manifest["indices"],
        factory=image.get("factory") if not image.get("memory") else None,
        tune_queries=int(image.get("tune_queries", IndexConfig.tune_queries)),
        executor=executor,
    )
    build_index(out, ofs.join(out, "index"), config)
    return True
