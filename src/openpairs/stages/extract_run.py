"""The `extract` command's work: list the inputs, extract every WAT (resumable), then deduplicate."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from openpairs.cc.rules import ExtractConfig
from openpairs.core.stats import ShardStats
from openpairs.executors import ExecutorConfig
from openpairs.io import commit
from openpairs.io import fs as ofs
from openpairs.stages import extract
from openpairs.stages.dedup import DedupConfig, run_dedup
from openpairs.stages.runner import Progress, ShardTask, StageResult, run_stage

INPUTS_FILE = "_inputs.json"


class InputListChanged(Exception):
    """The output directory was started with another list of inputs: resuming would mix them up."""


@dataclass(frozen=True)
class ExtractOutcome:
    """The per-WAT results and the dedup step's stats (None when dedup did not run)."""

    extract: StageResult[ExtractConfig]
    dedup: ShardStats | None

    def unreadable_inputs(self) -> list[str]:
        """Inputs that failed: unreadable, or their shard could not be written (after its retries)."""
        return [f"{failure['inputs'][0]}: {failure['error']}" for failure in self.extract.failed]


def check_inputs(inputs: list[str], out: str) -> list[str]:
    """The input files (globs expanded), or InputListChanged when `out` was started with another list."""
    paths = [path for pattern in inputs for path in ofs.expand(pattern)]
    if not paths:
        raise FileNotFoundError(f"no input matches {' '.join(inputs)}")
    pinned = ofs.join(out, extract.STAGE, INPUTS_FILE)
    if ofs.exists(pinned) and json.loads(ofs.read_text(pinned)) != paths:
        raise InputListChanged(
            f"{out} was started with other inputs (see {pinned}): shard numbers and keys would no longer "
            "match; use another --out"
        )
    return paths


def extract_tasks(inputs: list[str], out: str) -> list[ShardTask]:
    """One task per input file, numbered in the given order; the list is pinned for resumes."""
    paths = check_inputs(inputs, out)
    pinned = ofs.join(out, extract.STAGE, INPUTS_FILE)
    if not ofs.exists(pinned):
        commit.write_bytes_atomic(pinned, json.dumps(paths, indent=1).encode("utf-8"))
    return [ShardTask(extract.STAGE, index, (path,), out) for index, path in enumerate(paths)]


def run_extract(
    inputs: list[str],
    out: str,
    config: ExtractConfig,
    dedup: DedupConfig,
    executor: ExecutorConfig,
    progress: Progress | None = None,
) -> ExtractOutcome:
    """Extract all inputs into out/extract/, then deduplicate the extracted shards into out/candidates/."""
    ofs.makedirs(out)
    tasks = extract_tasks(inputs, out)
    commit.write_bytes_atomic(
        ofs.join(out, extract.STAGE, "_config.json"),
        json.dumps({"extract": asdict(config), "dedup": asdict(dedup)}, indent=1).encode("utf-8"),
    )
    result = run_stage(extract.run_shard, config, tasks, executor, progress)
    deduped = run_dedup(dedup, out, executor) if result.done else None
    return ExtractOutcome(result, deduped)
