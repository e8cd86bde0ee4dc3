"""Runs a per-shard stage over its tasks: resume, retries, progress, failure accounting."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Generic, TypeVar

from openpairs.core.stats import ShardStats, merge_all
from openpairs.executors import Executor, ExecutorConfig, WorkerLost, lost_before, make_executor
from openpairs.io import commit, freshness
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


@dataclass
class StageResult(Generic[C]):
    """What a stage run did: per-shard stats, totals, skipped (already done) and failed shards."""

    stage: str
    shards: list[ShardStats] = field(default_factory=list)
    skipped: int = 0
    stale: int = 0  # done shards redone because an input was rewritten since (io.freshness)
    failed: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> ShardStats:
        """All shards' stats merged."""
        return merge_all(self.stage, self.shards)

    @property
    def ok(self) -> bool:
        """True when no shard failed."""
        return not self.failed


Progress = Callable[[int, int, ShardStats | None], None]


def run_stage(
    run_shard: Callable[[C, ShardTask], ShardStats],
    config: C,
    tasks: Sequence[ShardTask],
    executor: ExecutorConfig,
    progress: Progress | None = None,
    resources: dict[str, float] | None = None,
) -> StageResult[C]:
    """Run `run_shard` over the tasks not yet done; done shards are skipped and their stats reused."""
    started = time.perf_counter()
    result: StageResult[C] = StageResult(stage=tasks[0].stage if tasks else "")
    todo = _resume(tasks, result)
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
                    _stop_if_full(outcome, task, len(result.shards), len(tasks))
                    result.failed.append(_failure(task, outcome))
                    outcome_stats = None
                else:
                    result.shards.append(outcome)
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
    result.shards.sort(key=lambda s: s.shard)
    _write_failures(tasks, result.failed)
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
    """Keep the stats of done shards whose inputs are unchanged; return the tasks to run.

    A done shard whose recorded inputs were rewritten since is stale: its stats file is removed (it is
    no longer done) and it is redone.
    """
    done = {task.index: task.paths.read_stats() for task in tasks if task.paths.is_done()}
    recorded = {task.index: task.paths.read_versions() for task in tasks if task.index in done}
    current = freshness.listed_versions([path for inputs in recorded.values() for path in inputs])
    todo: list[ShardTask] = []
    for task in tasks:
        stats = done.get(task.index)
        inputs = recorded.get(task.index, {})
        if stats is not None and all(current.get(p) == v for p, v in inputs.items()):
            result.shards.append(stats)
            result.skipped += 1
            continue
        if stats is not None:
            ofs.remove(task.paths.stats)
            result.stale += 1
        todo.append(task)
    return todo


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
