"""`openpairs decontaminate`: embed the evaluation sets, match every dataset shard, then bring the outputs
downstream of the clip stage (filter, exports, report) in line by re-running those stages.

State under `decontaminate/`: `_settings.json` (sets, thresholds, model: a run with other settings starts
over), `eval/` (the embedded sets), `<i>.parquet` + `<i>_stats.json` per dataset shard (a rerun skips done
shards), and `_done.json`, written last: the filter reads eval duplicates only from a finished run.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from openpairs.executors import ExecutorConfig
from openpairs.io import commit
from openpairs.io import fs as ofs
from openpairs.stages import decontaminate as stage
from openpairs.stages.clip import ClipConfig
from openpairs.stages.decontaminate_eval import EvalEmbedConfig, EvalSet, eval_tasks, run_eval_set
from openpairs.stages.runner import Progress, StageResult, run_stage
from openpairs.stages.scrub_steps import recorded_fields


class NotDecontaminable(ValueError):
    """The dataset has no clip stage output or no recorded CLIP model to embed the evaluation sets with."""


@dataclass
class DecontaminateResult:
    """The two phases' results and the downstream outputs re-run to match."""

    eval_sets: StageResult[Any]
    shards: StageResult[Any] | None = None
    refreshed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every evaluation set and every dataset shard was done."""
        return self.eval_sets.ok and self.shards is not None and self.shards.ok


def recorded_clip_config(out: str, **overrides: Any) -> ClipConfig:
    """The clip stage's config recorded in DIR/config.json (the model that made the dataset's embeddings),
    reduced to the image encoder, with `overrides` (device, batch_size, threads...) applied."""
    path = ofs.join(out, "config.json")
    section = json.loads(ofs.read_text(path)).get("clip") if ofs.exists(path) else None
    if not isinstance(section, dict):
        raise NotDecontaminable(
            f"{path} records no clip stage: run `openpairs clip` (or a build) on {out} first"
        )
    values = recorded_fields(ClipConfig, section)
    values.update(watermark_checkpoint=None, text_encoder="clip", heads="off", image_dedup=False)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return ClipConfig(**values)


def run_decontaminate(
    out: str,
    sets: tuple[EvalSet, ...],
    config: stage.DecontaminateConfig,
    clip: ClipConfig,
    executor: ExecutorConfig,
    progress: Progress | None = None,
) -> DecontaminateResult:
    """Embed the evaluation sets, then match every dataset shard; resumes a run with the same settings."""
    tasks = stage.shard_tasks(out)
    if not tasks:
        raise NotDecontaminable(f"no clip shards (clip/<i>.parquet) under {out}: run the clip stage first")
    _start(out, sets, config, clip)
    embed = EvalEmbedConfig(clip=clip, sets=sets)
    eval_result = run_stage(run_eval_set, embed, eval_tasks(out, sets), executor, None, clip.resources())
    result = DecontaminateResult(eval_result)
    if not result.eval_sets.ok:
        return result
    result.shards = run_stage(stage.run_shard, config, tasks, executor, progress)
    if result.shards.ok:
        record = {"shards": len(tasks), "total": result.shards.total.to_dict()}
        commit.write_bytes_atomic(stage.done_record(out), json.dumps(record, indent=1).encode("utf-8"))
    return result


def _start(out: str, sets: tuple[EvalSet, ...], config: stage.DecontaminateConfig, clip: ClipConfig) -> None:
    """Remove the done record; start over (remove decontaminate/) when the settings differ from the last
    run's, so no shard matched against other sets or thresholds is kept."""
    settings = {
        "sets": [dataclasses.asdict(s) for s in sets],
        "min_similarity": config.min_similarity,
        "max_pdq_distance": config.max_pdq_distance,
        "clip": {"model": clip.model, "pretrained": clip.pretrained, "checkpoint": clip.checkpoint},
    }
    encoded = json.dumps(settings, indent=1).encode("utf-8")
    path = ofs.join(out, stage.STAGE, stage.SETTINGS_FILE)
    ofs.remove(stage.done_record(out))
    if ofs.exists(path) and ofs.read_bytes(path) == encoded:
        return
    fs, root = ofs.filesystem(ofs.join(out, stage.STAGE))
    if fs.exists(root):
        fs.rm(root, recursive=True)
    commit.write_bytes_atomic(path, encoded)


def refresh_downstream(out: str, executor: ExecutorConfig) -> list[str]:
    """Re-run the filter with its recorded settings, then every existing export and the report (as scrub
    does), so each matches the eval duplicates; returns what was re-run."""
    from openpairs.stages import scrub_steps

    if not scrub_steps.redo_filter(out, executor, []):
        return []  # no filter output yet: the filter reads the eval duplicates when it runs
    steps = (("exports", scrub_steps.redo_export), ("report", scrub_steps.redo_report))
    return ["filter"] + [name for name, redo in steps if redo(out, executor, [])]
