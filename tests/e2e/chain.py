"""Run the whole pipeline on the demo data with the stage modules' own APIs (no `build` command needed).

extract -> dedup -> download (through the mini web) -> clip (tiny random-weight model) -> filter -> export
(all three formats) -> report. Used by the e2e tests; `openpairs build` composes the same stages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from openpairs.core.stats import ShardStats
from openpairs.executors import ExecutorConfig
from openpairs.io import fs as ofs
from openpairs.presets import stage_config
from openpairs.report import ReportResult, build_report
from openpairs.stages.export import FORMATS, ExportConfig, ExportResult, run_export
from openpairs.stages.runner import StageResult, run_stage

DEMO_WARNING = "similarities computed with random weights are meaningless"


@dataclass
class ChainResult:
    """Every stage's merged stats and failed shards, the exports and the report."""

    out: str
    totals: dict[str, ShardStats] = field(default_factory=dict)
    failed: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    exports: dict[str, ExportResult] = field(default_factory=dict)
    report: ReportResult | None = None

    def record(self, name: str, result: StageResult[Any]) -> None:
        """Keep a per-shard stage's totals and failures."""
        self.totals[name] = result.total
        self.failed[name] = result.failed


def run_chain(
    out: str,
    wats: list[str],
    mirror: str,
    checkpoint: str,
    preset: str = "laion400m",
    executor: ExecutorConfig | None = None,
) -> ChainResult:
    """Run every stage on `wats` into `out` (resumes: done shards are skipped)."""
    from openpairs.cc.rules import ExtractConfig
    from openpairs.stages import clip, download, filter
    from openpairs.stages.dedup import DedupConfig
    from openpairs.stages.download_plan import plan_tasks
    from openpairs.stages.extract_run import run_extract

    executor = executor or ExecutorConfig(kind="local", workers=1)
    result = ChainResult(out)
    rules = stage_config(ExtractConfig, "extract", preset, relative_urls="resolve", english_only=False)
    extracted = run_extract(wats, out, rules, stage_config(DedupConfig, "dedup", preset), executor)
    result.record("extract", extracted.extract)
    result.totals["dedup"] = extracted.dedup or ShardStats(stage="dedup")
    fetch = stage_config(download.DownloadConfig, "download", preset, mirror=mirror, backoff_base=0.01)
    tasks = plan_tasks(fetch.input_spec(out), out, fetch.shard_size)
    result.record("download", run_stage(download.run_shard, fetch, tasks, executor))
    scoring = clip.ClipConfig(
        model="openpairs-tiny-random", pretrained="", checkpoint=checkpoint, device="cpu", threads=1
    )
    result.record("clip", run_stage(clip.run_shard, scoring, clip.shard_tasks(out), executor))
    keep_all = filter.FilterConfig(min_similarity=-1.0, min_similarity_other=-1.0)
    result.record("filter", filter.run_filter(out, keep_all, executor))
    for name in FORMATS:
        config = ExportConfig(format=name, samples_per_shard=64)  # type: ignore[arg-type]
        result.exports[name] = run_export(out, config)
    result.report = build_report(out, warnings=(DEMO_WARNING,), title="openpairs demo")
    return result


def dataset_digests(out: str) -> dict[str, str]:
    """sha256 of every file under DIR/dataset, by relative path: equal digests mean equal datasets."""
    import hashlib

    fs, root = ofs.filesystem(ofs.join(out, "dataset"))
    prefix = root.rstrip("/") + "/"
    return {str(p)[len(prefix) :]: hashlib.sha256(fs.cat_file(p)).hexdigest() for p in sorted(fs.find(root))}
