"""Run the stages of a build in order; each one resumes on its own, so a re-run continues a killed build."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from openpairs.build.config import BuildConfig
from openpairs.core.stats import ShardStats
from openpairs.executors import ExecutorConfig, make_executor
from openpairs.io import commit
from openpairs.io import fs as ofs
from openpairs.stages.runner import Progress, StageResult, run_stage

if TYPE_CHECKING:
    from openpairs.report import ReportResult
    from openpairs.stages.export import ExportResult

STAGES = ("extract", "download", "clip", "filter", "export", "report")
ProgressFor = Callable[[str], Progress | None]


@dataclass
class BuildResult:
    """Per-stage totals, failed shards, and where the outputs are."""

    out: str
    totals: dict[str, ShardStats] = field(default_factory=dict)
    failed: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    exports: dict[str, ExportResult] = field(default_factory=dict)
    report: ReportResult | None = None

    @property
    def ok(self) -> bool:
        """True when no shard of any stage failed."""
        return not any(self.failed.values())

    def record(self, name: str, result: StageResult[Any]) -> None:
        """Keep a per-shard stage's totals and failures."""
        self.totals[name] = result.total
        self.failed[name] = result.failed


def run_build(
    inputs: list[str],
    out: str,
    config: BuildConfig,
    executor: ExecutorConfig,
    progress_for: ProgressFor | None = None,
) -> BuildResult:
    """extract -> dedup -> download -> clip -> filter -> export -> report into `out` (resumes where it stopped)."""
    from openpairs.stages import clip
    from openpairs.stages.clip_nodes import check_weights_on_nodes

    clip.preload(config.clip)  # a missing model fails now, not after the downloads
    if executor.kind == "ray" and executor.ray_address:
        make_executor(executor, out=out)  # joins now: an --out the workers cannot all see stops here
    check_weights_on_nodes(config.clip, executor)  # and on every Ray node that can hold a clip actor
    ofs.makedirs(out)
    commit.write_bytes_atomic(ofs.join(out, "config.json"), config.to_json().encode("utf-8"))
    result = BuildResult(out)
    bar = progress_for or (lambda _name: None)
    _extract(inputs, out, config, executor, bar("extract"), result)
    _download(out, config, executor, bar("download"), result)
    _clip(out, config, executor, bar("clip"), result)
    _filter(out, config, executor, bar("filter"), result)
    _export_and_report(out, config, executor, result)
    return result


def _extract(
    inputs: list[str],
    out: str,
    config: BuildConfig,
    executor: ExecutorConfig,
    bar: Progress | None,
    result: BuildResult,
) -> None:
    from openpairs.stages.extract_run import run_extract

    outcome = run_extract(inputs, out, config.extract, config.dedup, executor, bar)
    result.record("extract", outcome.extract)
    result.totals["dedup"] = outcome.dedup or ShardStats(stage="dedup")


def _download(
    out: str, config: BuildConfig, executor: ExecutorConfig, bar: Progress | None, result: BuildResult
) -> None:
    from openpairs.stages import download
    from openpairs.stages.download_memory import worker_environment
    from openpairs.stages.download_plan import plan_tasks

    source = ofs.join(out, "candidates")
    if not ofs.list_files(source, ".parquet"):
        result.failed["download"] = [{"shard": -1, "error": "no candidates to download"}]
        return
    tasks = plan_tasks(config.download.input_spec(source), out, config.download.shard_size)
    worker_environment()  # before run_stage spawns this stage's worker processes
    result.record("download", run_stage(download.run_shard, config.download, tasks, executor, bar))


def _clip(
    out: str, config: BuildConfig, executor: ExecutorConfig, bar: Progress | None, result: BuildResult
) -> None:
    from openpairs.stages import clip

    tasks = clip.shard_tasks(out)
    stage = run_stage(clip.run_shard, config.clip, tasks, executor, bar, config.clip.resources())
    result.record("clip", stage)
    if config.clip.image_dedup and stage.ok:
        from openpairs.stages.image_dedup import ImageDedupConfig, run_image_dedup

        run_image_dedup(out, ImageDedupConfig(threshold=config.clip.dedup_threshold), executor)


def _filter(
    out: str, config: BuildConfig, executor: ExecutorConfig, bar: Progress | None, result: BuildResult
) -> None:
    from openpairs.stages import filter as filter_stage

    result.record("filter", filter_stage.run_filter(out, config.filter, executor, bar))


def _export_and_report(out: str, config: BuildConfig, executor: ExecutorConfig, result: BuildResult) -> None:
    from openpairs.report import build_report
    from openpairs.stages.export import ExportConfig, run_export

    if not result.ok:
        return  # exporting half a dataset would look complete; the re-run finishes it
    for name in config.export_formats:
        export_config = ExportConfig(format=name, samples_per_shard=config.samples_per_shard)  # type: ignore[arg-type]
        result.exports[name] = run_export(out, export_config, executor)
    result.report = build_report(out, warnings=config.report_warnings, executor=executor)
