"""Run the whole pipeline on the demo data with the stage modules' own APIs (no `build` command needed).

extract -> dedup -> download (through the mini web) -> clip (tiny random-weight model) -> filter -> export
(all three formats) -> report. Used by the e2e tests; `openpairs build` composes the same stages.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import Any

from openpairs.executors import ExecutorConfig
from openpairs.io import fs as ofs
from openpairs.presets import stage_config
from openpairs.report import ReportResult, build_report
from openpairs.stages.export import FORMATS, ExportConfig, ExportResult, run_export
from openpairs.stages.runner import ShardTask, StageResult, run_stage

DEMO_WARNING = "similarities computed with random weights are meaningless"


class ChainUnavailable(RuntimeError):
    """A stage the chain needs does not exist yet in this checkout."""


@dataclass
class ChainResult:
    """Every stage's result, by stage name."""

    out: str
    stages: dict[str, StageResult[Any]] = field(default_factory=dict)
    exports: dict[str, ExportResult] = field(default_factory=dict)
    report: ReportResult | None = None


def _require(module: str) -> Any:
    if importlib.util.find_spec(module) is None:
        raise ChainUnavailable(f"{module} does not exist yet")
    return importlib.import_module(module)


def _dedup(out: str, preset: str, executor: ExecutorConfig) -> StageResult[Any]:
    dedup = _require("openpairs.stages.dedup")
    config = stage_config(dedup.DedupConfig, "dedup", preset)
    return dedup.run_dedup(out, config, executor)  # type: ignore[no-any-return]


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
    from openpairs.stages import clip, download, extract, filter
    from openpairs.stages.download_plan import plan_tasks

    _require("openpairs.stages.dedup")  # fail before any work when a stage is missing
    executor = executor or ExecutorConfig(kind="local", workers=1)
    result = ChainResult(out)
    rules = stage_config(ExtractConfig, "extract", preset, relative_urls="resolve", english_only=False)
    tasks = [ShardTask("extract", i, (wat,), out) for i, wat in enumerate(wats)]
    result.stages["extract"] = run_stage(extract.run_shard, rules, tasks, executor)
    result.stages["dedup"] = _dedup(out, preset, executor)
    fetch = stage_config(download.DownloadConfig, "download", preset, mirror=mirror, backoff_base=0.01)
    tasks = plan_tasks(fetch.input_spec(out), out, fetch.shard_size)
    result.stages["download"] = run_stage(download.run_shard, fetch, tasks, executor)
    scoring = clip.ClipConfig(
        model="openpairs-tiny-random", pretrained="", checkpoint=checkpoint, device="cpu", threads=1
    )
    result.stages["clip"] = run_stage(clip.run_shard, scoring, clip.shard_tasks(out), executor)
    keep_all = filter.FilterConfig(min_similarity=-1.0, min_similarity_other=-1.0)
    result.stages["filter"] = filter.run_filter(out, keep_all, executor)
    for name in FORMATS:
        result.exports[name] = run_export(out, ExportConfig(format=name, samples_per_shard=64))  # type: ignore[arg-type]
    result.report = build_report(out, warnings=(DEMO_WARNING,), title="openpairs demo")
    return result


def dataset_digests(out: str) -> dict[str, str]:
    """sha256 of every file under DIR/dataset, by relative path: equal digests mean equal datasets."""
    import hashlib

    fs, root = ofs.filesystem(ofs.join(out, "dataset"))
    prefix = root.rstrip("/") + "/"
    return {str(p)[len(prefix) :]: hashlib.sha256(fs.cat_file(p)).hexdigest() for p in sorted(fs.find(root))}
