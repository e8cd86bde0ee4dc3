"""`openpairs scrub`: remove what safety lists match from a finished dataset, as a build with the lists would.

Steps, each recorded in the run's journal (`DIR/scrub/<run>/journal.json`) when done, so a killed scrub
resumes: `shards` (every download shard scrubbed: stages/scrub_shard.py), then the pipeline's own steps redo
what depends on the rewritten shards, with the settings the dataset recorded: `clip` (the runner redoes the
clip shards whose inputs changed, with the recorded model), `image_dedup`, `filter`, `export` (each format
present), `report` and `index` (when present). The run folder is named by the lists' contents and the PDQ
threshold; its `audit.jsonl` lists every removed row.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from openpairs.core import crashpoints
from openpairs.executors import ExecutorConfig
from openpairs.io import commit
from openpairs.io import fs as ofs
from openpairs.safety.blocklist import DEFAULT_PDQ_THRESHOLD, Blocklists, load_cached
from openpairs.stages import scrub_steps
from openpairs.stages.scrub_shard import ShardJob, scrub_shard

SCRUB_DIR = "scrub"
STEPS = ("shards", "clip", "image_dedup", "filter", "export", "report", "index")  # in this order
BUILD_TIME_ONLY = (
    "MD5 and SHA1 image lists match only at build time, or where the stored image is the original body "
    "(keep_original): scrub compares them with the stored images and the recorded sha256 of the body"
)


@dataclass(frozen=True)
class ScrubConfig:
    """The safety lists to apply and the PDQ match distance."""

    blocklists: tuple[str, ...]
    pdq_threshold: int = DEFAULT_PDQ_THRESHOLD


@dataclass
class ScrubResult:
    """What a scrub did: its run folder, matched rows by status, the steps redone and notes for the user."""

    run_dir: str
    removed: dict[str, int] = field(default_factory=dict)
    steps: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def audit(self) -> str:
        """The audit file: one JSON line per removed row."""
        return ofs.join(self.run_dir, "audit.jsonl")


def run_scrub(out: str, config: ScrubConfig, executor: ExecutorConfig | None = None) -> ScrubResult:
    """Scrub the finished dataset `out` with `config`'s lists (resumes a killed scrub of the same lists)."""
    executor = executor or ExecutorConfig()
    load_cached.cache_clear()  # shards scrubbed in this process read the lists as they are now
    lists = Blocklists.load(config.blocklists, config.pdq_threshold)  # a bad list fails before any write
    scrub_steps.check_finished(out)
    result = ScrubResult(ofs.join(out, SCRUB_DIR, _run_name(config)))
    if lists.kinds & {"md5", "sha1"}:
        result.notes.append(BUILD_TIME_ONLY)
    journal = _Journal(ofs.join(result.run_dir, "journal.json"))
    _write_run(result.run_dir, config, lists)
    steps: dict[str, Callable[[], bool]] = {
        "shards": lambda: _scrub_shards(out, config, result, executor),
        **{name: _step(name, out, result.run_dir, executor) for name in STEPS[1:]},
    }
    for position, (name, step) in enumerate(steps.items()):
        if position and not journal.steps.get("shards"):
            break  # no row matched: nothing downstream changes
        if name in journal.steps:
            continue
        if position:
            crashpoints.reached("scrub.step", position)
        journal.mark(name, step())
    result.steps = [name for name, ran in journal.steps.items() if ran]
    result.removed = _finish_audit(out, result.run_dir)
    return result


REDO: dict[str, Callable[[str, ExecutorConfig, list[int]], bool]] = {
    "clip": scrub_steps.redo_clip,
    "image_dedup": scrub_steps.redo_image_dedup,
    "filter": scrub_steps.redo_filter,
    "export": scrub_steps.redo_export,
    "report": scrub_steps.redo_report,
    "index": scrub_steps.redo_index,
}


def _step(name: str, out: str, run_dir: str, executor: ExecutorConfig) -> Callable[[], bool]:
    """Step `name` after the shards: the pipeline's function, told which download shards changed."""
    return lambda: REDO[name](out, executor, [index for index, records in _records(out, run_dir) if records])


def _scrub_shards(out: str, config: ScrubConfig, result: ScrubResult, executor: ExecutorConfig) -> bool:
    from openpairs.stages.tasks import map_tasks

    lists = tuple(str(path) for path in config.blocklists)
    jobs = [
        ShardJob(out, index, result.run_dir, lists, config.pdq_threshold)
        for index in scrub_steps.download_shards(out)
    ]
    matched = map_tasks(executor, scrub_shard, jobs)
    scrub_steps.redo_download_summary(out, executor)
    return sum(matched) > 0


def _run_name(config: ScrubConfig) -> str:
    """The run folder's name: a digest of the lists' bytes (in order) and the threshold."""
    digest = hashlib.sha256(f"pdq {config.pdq_threshold}\n".encode())
    for path in config.blocklists:
        digest.update(hashlib.sha256(ofs.read_bytes(str(path))).digest())
    return digest.hexdigest()[:16]


def _write_run(run_dir: str, config: ScrubConfig, lists: Blocklists) -> None:
    about = {"config": dataclasses.asdict(config), "entries": lists.counts, "steps": list(STEPS)}
    commit.write_bytes_atomic(ofs.join(run_dir, "run.json"), json.dumps(about, indent=1).encode("utf-8"))


def _finish_audit(out: str, run_dir: str) -> dict[str, int]:
    """Join the shards' match records into `audit.jsonl` (shard order); counts of matched rows by status."""
    lines: list[str] = []
    removed: dict[str, int] = {}
    for _index, records in _records(out, run_dir):
        for line in records:
            lines.append(line + "\n")
            status = json.loads(line)["status"]
            removed[status] = removed.get(status, 0) + 1
    commit.write_bytes_atomic(ofs.join(run_dir, "audit.jsonl"), "".join(lines).encode("utf-8"))
    return removed


def _records(out: str, run_dir: str) -> list[tuple[int, list[str]]]:
    """(shard, its committed match records as JSON lines) of every download shard, in shard order."""
    found = []
    for index in scrub_steps.download_shards(out):
        path = ofs.join(run_dir, "shards", commit.shard_name(index) + ".jsonl")
        found.append((index, [line for line in ofs.read_text(path).splitlines() if line.strip()]))
    return found


class _Journal:
    """The steps of a scrub run that are done (and whether each changed anything), in a small JSON file
    rewritten atomically after each step."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.steps: dict[str, bool] = json.loads(ofs.read_text(path))["done"] if ofs.exists(path) else {}

    def mark(self, step: str, changed: bool) -> None:
        """Record `step` as finished."""
        self.steps[step] = changed
        data: dict[str, Any] = {"done": self.steps}
        commit.write_bytes_atomic(self.path, json.dumps(data, indent=1).encode("utf-8"))
