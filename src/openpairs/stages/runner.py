"""Runs a per-shard stage over its tasks: resume, retries, progress, failure accounting."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Generic, TypeVar

from openpairs.core.stats import ShardStats
from openpairs.executors import Executor, ExecutorConfig, Resources, WorkerLost, lost_before, make_executor
from openpairs.io import commit, freshness, listing
from openpairs.io import fs as ofs

C = TypeVar("C")


@dataclass(frozen=True)
class ShardTask:
    """One unit of work: shard `index` of `stage`, reading `inputs`, writing under `out`."""

    stage: str
    index: int
    inputs: tuple[str, ...]
    out: str
    lost: tuple[str, ...] = ()  # why earlier attempts' workers died (the shard is counted as retried)

    @property
    def paths(self) -> commit.ShardPaths:
        """Where this shard writes."""
        return commit.ShardPaths(self.out, self.stage, self.index)


SUMMARY_DIR = "_summary"  # DIR/_summary/<stage>.json: see StageResult.summary


@dataclass
class StageResult(Generic[C]):
    """What a stage run did: totals, the done shards' indices, skipped (already done), stale and failed
    shards. Per-shard stats stay on disk (`shards` reads them back when asked)."""

    stage: str
    directory: str = ""  # the stage directory ("" when there were no tasks)
    done_shards: list[int] = field(default_factory=list)  # indices of done shards, in shard order
    skipped: int = 0
    stale: int = 0  # done shards redone because an input was rewritten since (io.freshness)
    failed: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    total: ShardStats = field(default_factory=lambda: ShardStats(stage="", shard=-1))  # all done shards

    @property
    def done(self) -> int:
        """How many shards are done (run now or before)."""
        return len(self.done_shards)

    @property
    def shards(self) -> list[ShardStats]:
        """Every done shard's stats, in shard order, read back from its stats file (one read per shard:
        for tests and small runs; the totals never need it)."""
        paths = [listing.stats_path(self.directory, i) for i in self.done_shards]
        return list(listing.read_in_order(paths, listing.read_stats))

    @property
    def ok(self) -> bool:
        """True when no shard failed."""
        return not self.failed

    def summary(self) -> dict[str, Any]:
        """The per-stage summary written as `DIR/_summary/<stage>.json`: what the stage's outputs hold, so
        a resumed run writes the same bytes as an uninterrupted one (what a run skipped or redid, and
        timings, are printed, not kept)."""
        return {
            "stage": self.stage,
            "shards_done": self.done,
            "shards_failed": len(self.failed),
            "total": self.total.to_dict(),
        }


Progress = Callable[[int, int, ShardStats | None], None]


def run_stage(
    run_shard: Callable[[C, ShardTask], ShardStats],
    config: C,
    tasks: Sequence[ShardTask],
    executor: ExecutorConfig,
    progress: Progress | None = None,
    resources: Resources | None = None,
) -> StageResult[C]:
    """Run `run_shard` over the tasks not yet done; done shards are skipped and their stats reused."""
    started = time.perf_counter()
    result: StageResult[C] = StageResult(stage=tasks[0].stage if tasks else "")
    todo = _resume(tasks, result)
    timings = ShardStats(stage=result.stage)
    if tasks:
        commit.remove_stale_temporaries(tasks[0].paths.directory)
    done = result.skipped
    if progress:
        progress(done, len(tasks), None)
    if todo:
        runner = make_executor(executor, resources, todo[0].out)
        try:
            work = partial(_attempt, run_shard, config, executor.retries)
            for task, outcome in _outcomes(runner, work, todo, executor.retries):
                done += 1
                if isinstance(outcome, BaseException):
                    _stop_if_full(outcome, task, result.done, len(tasks))
                    result.failed.append(_failure(task, outcome))
                    outcome_stats = None
                else:
                    result.done_shards.append(task.index)
                    for name, seconds in outcome.timings.items():
                        timings.time(name, seconds)
                    outcome_stats = outcome
                if progress:
                    progress(done, len(tasks), outcome_stats)
        except commit.OutOfSpace:
            runner.close()  # (idempotent) the shards in flight stop before what they were writing goes
            commit.remove_stale_temporaries(tasks[0].paths.directory)
            raise
        finally:
            runner.close()
        commit.remove_stale_temporaries(tasks[0].paths.directory)  # a lost attempt's (its node may be gone)
    _write_failures(tasks, result.failed)
    _summarise(tasks, result, timings.timings)
    result.seconds = time.perf_counter() - started
    return result


def _outcomes(
    runner: Executor, work: Callable[[ShardTask], ShardStats], todo: list[ShardTask], retries: int
) -> Iterator[tuple[ShardTask, Any]]:
    """(task, stats or exception) for every task; a task whose worker died is run again, `retries`
    more times at most, carrying why (its stats count it)."""
    batch = todo
    for round_ in range(retries + 1):
        again = []
        for position, outcome in runner.imap(work, batch):
            task = batch[position]
            if isinstance(outcome, WorkerLost) and round_ < retries:
                again.append(replace(task, lost=(*task.lost, str(outcome))))
            else:
                yield task, outcome
        if not again:
            return
        batch = again


def _resume(tasks: Sequence[ShardTask], result: StageResult[C]) -> list[ShardTask]:
    """Learn the done shards from one listing of the stage directory (and one of its `_versions/`);
    skip those whose inputs are unchanged; return the tasks to run.

    A done shard whose recorded inputs were rewritten since is stale: its stats file is removed (it is
    no longer done) and it is redone.
    """
    if not tasks:
        return []
    first = tasks[0].paths
    result.directory = first.directory
    listed = listing.listed_shards(first.directory)
    done = [task for task in tasks if task.index in listed]
    with_versions = listing.listed_shards(ofs.join(first.out, commit.VERSIONS_DIR, first.stage_dir), ".json")
    tracked = [task for task in done if task.index in with_versions]
    recorded = dict(
        zip(
            [task.index for task in tracked],
            listing.read_in_order([with_versions[t.index] for t in tracked], listing.read_json),
            strict=True,
        )
    )
    out = first.out
    current = freshness.listed_versions(
        [freshness.located(path, out) for inputs in recorded.values() for path in inputs]
    )
    stale = {
        index
        for index, inputs in recorded.items()
        if any(current.get(freshness.located(p, out)) != v for p, v in inputs.items())
    }
    for task in done:
        if task.index in stale:
            ofs.remove(task.paths.stats)
        else:
            result.done_shards.append(task.index)
    result.skipped, result.stale = len(done) - len(stale), len(stale)
    return [task for task in tasks if task.index not in listed or task.index in stale]


def _summarise(tasks: Sequence[ShardTask], result: StageResult[C], timings: dict[str, float]) -> None:
    """Merge the done shards' stats files in shard order into `result.total` (exactly `merge_all` over
    them), add this run's timings, and write `DIR/_summary/<stage>.json`."""
    result.done_shards.sort()
    if not tasks:
        return
    paths = [listing.stats_path(result.directory, i) for i in result.done_shards]
    result.total = listing.merge_stats(result.stage, paths)
    result.total.timings = dict(timings)
    summary = json.dumps(result.summary(), indent=1, ensure_ascii=False).encode("utf-8")
    commit.write_bytes_atomic(ofs.join(tasks[0].out, SUMMARY_DIR, f"{result.stage}.json"), summary)


def _attempt(
    run_shard: Callable[[C, ShardTask], ShardStats], config: C, retries: int, task: ShardTask
) -> ShardStats:
    """Run one shard, retrying `retries` more times if it raises; the last error propagates."""
    for attempt in range(retries + 1):
        try:
            inputs = freshness.versions(task.inputs, task.out)  # before reading: a later rewrite shows
            stats = run_shard(config, task)
            for reason in (*task.lost, *lost_before()):  # resubmitted by the runner, or rerun by Ray
                stats.bump("worker_lost")
                stats.error(f"worker_lost: {reason}")
            task.paths.commit_stats(stats, inputs)
            return stats
        except Exception as error:
            if attempt == retries or commit.out_of_space(error) is not None:
                raise
    raise AssertionError("unreachable")


def _stop_if_full(error: BaseException, task: ShardTask, done: int, total: int) -> None:
    """Raise OutOfSpace when `error` says the output storage is full: every shard left would fail too."""
    full = commit.out_of_space(error)
    if full is not None:
        where = full.filename or f"{task.paths.directory} or the temporary folder {tempfile.gettempdir()}"
        raise commit.OutOfSpace(
            f"no space left on device writing {where}: stopped with {done} of {total} shards done; "
            "free space, then rerun the same command to resume"
        ) from error


def _failure(task: ShardTask, error: BaseException) -> dict[str, Any]:
    return {"shard": task.index, "inputs": list(task.inputs), "error": f"{type(error).__name__}: {error}"}


def _write_failures(tasks: Sequence[ShardTask], failed: list[dict[str, Any]]) -> None:
    if not tasks:
        return
    path = ofs.join(tasks[0].paths.directory, "failed_shards.jsonl")
    if failed:
        lines = "".join(json.dumps(entry) + "\n" for entry in sorted(failed, key=lambda f: f["shard"]))
        commit.write_bytes_atomic(path, lines.encode("utf-8"))
    else:
        ofs.remove(path)
