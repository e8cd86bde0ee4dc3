"""Planning download shards: `candidates/` keep their shards and keys; other inputs are cut and keyed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict

import pyarrow as pa

from openpairs.core.keys import mint_key
from openpairs.core.status import is_transient
from openpairs.io import commit
from openpairs.io import fs as ofs
from openpairs.stages.inputs import InputSpec, iter_rows
from openpairs.stages.runner import ShardTask

STAGE = "shards"
INPUTS_DIR = "_inputs"
PLAN_FILE = "_plan.json"


def candidates_dir(path: str) -> str | None:
    """The candidates folder `path` names (DIR or DIR/candidates from `openpairs extract`), else None."""
    for folder in (ofs.join(path, "candidates"), path):
        files = ofs.list_files(folder, ".parquet")
        if (
            files
            and all(_shard_index(f) is not None for f in files)
            and "key" in ofs.parquet_columns(files[0])
        ):
            return folder
    return None


def plan_tasks(spec: InputSpec, out: str, shard_size: int) -> list[ShardTask]:
    """One task per input shard; non-candidate inputs are first cut into keyed parquet shards (once)."""
    folder = candidates_dir(spec.path) if not spec.input_format else None
    if folder is not None:
        files = ofs.list_files(folder, ".parquet")
        if spec.hash_col and spec.hash_col not in ofs.parquet_columns(files[0]):
            raise ValueError(f"{folder} has no column {spec.hash_col!r} to check with --verify-hash")
        return [ShardTask(STAGE, int(_shard_index(f) or 0), (f,), out) for f in files]
    inputs = ofs.join(out, STAGE, INPUTS_DIR)
    plan_path = ofs.join(inputs, PLAN_FILE)
    wanted = json.loads(json.dumps({"spec": asdict(spec), "shard_size": shard_size}))
    if ofs.exists(plan_path):
        plan = json.loads(ofs.read_text(plan_path))
        if plan.get("spec") == wanted["spec"] and plan.get("shard_size") == shard_size:
            return _tasks(out, inputs, int(plan["shards"]))
    count = 0
    for index, table in enumerate(cut_shards(spec, shard_size)):
        commit.write_parquet_atomic(table, ofs.join(inputs, f"{commit.shard_name(index)}.parquet"))
        count = index + 1
    commit.write_bytes_atomic(plan_path, json.dumps({**wanted, "shards": count}).encode("utf-8"))
    pa.default_memory_pool().release_unused()  # the driver only waits from here on: give its buffers back
    return _tasks(out, inputs, count)


def cut_shards(spec: InputSpec, shard_size: int) -> Iterator[pa.Table]:
    """Tables of `shard_size` rows (the last may be shorter) with minted keys, streamed from the input."""
    if shard_size < 1:
        raise ValueError(f"shard size must be positive, got {shard_size}")
    pending: list[pa.Table] = []
    rows = 0
    shard = 0
    for table in iter_rows(spec):
        while table.num_rows:
            take = min(shard_size - rows, table.num_rows)
            pending.append(table.slice(0, take))
            table = table.slice(take)
            rows += take
            if rows == shard_size:
                yield _keyed(pending, shard)
                pending, rows, shard = [], 0, shard + 1
    if rows:
        yield _keyed(pending, shard)


def _keyed(parts: list[pa.Table], shard: int) -> pa.Table:
    table = pa.concat_tables(parts).combine_chunks()
    keys = pa.array([mint_key(shard, row) for row in range(table.num_rows)], pa.string())
    return table.set_column(0, "key", keys)


def _tasks(out: str, inputs: str, count: int) -> list[ShardTask]:
    return [
        ShardTask(STAGE, i, (ofs.join(inputs, f"{commit.shard_name(i)}.parquet"),), out) for i in range(count)
    ]


def _shard_index(path: str) -> int | None:
    stem = path.rsplit("/", 1)[-1].removesuffix(".parquet")
    return int(stem) if stem.isdigit() else None


def plan_isolated(
    spec: InputSpec, out: str, shard_size: int, retry_failed: bool
) -> tuple[list[ShardTask], int]:
    """`plan_tasks` (and, for --retry-failed, `reopen_transient`) in a short-lived child process.

    Reading parquet initialises ~50-70 MB of Arrow/Parquet state that the driver would then hold, idle,
    for the whole run; a child gives it back. Returns (tasks, shards reopened for retry).
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_plan, spec, out, shard_size, retry_failed).result()


def _plan(spec: InputSpec, out: str, shard_size: int, retry_failed: bool) -> tuple[list[ShardTask], int]:
    tasks = plan_tasks(spec, out, shard_size)
    return tasks, reopen_transient(tasks) if retry_failed else 0


def reopen_transient(tasks: list[ShardTask]) -> int:
    """For --retry-failed: un-finish done shards that have transient rows (their stats file is removed)."""
    reopened = 0
    for task in tasks:
        parquet = task.paths.file("parquet")
        if not task.paths.is_done() or not ofs.exists(parquet):
            continue
        statuses = ofs.read_parquet(parquet, ["status"]).column("status").to_pylist()
        if any(is_transient(s or "") for s in statuses):
            ofs.remove(task.paths.stats)
            reopened += 1
    return reopened
