"""Add vectors to K index shards in parallel executor tasks, resumably; merge them onto disk if asked.

The quantizer is trained once (`trained.index`); each task copies it, adds one contiguous id range and
writes its shard atomically. A shard file that exists is done: a rerun skips it. `plan.json` records what
the parts were built from, so parts of another plan are never mixed in.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np

from openpairs.core import crashpoints
from openpairs.executors import ExecutorConfig, make_executor
from openpairs.index.shardset import omp_threads, read_mapped
from openpairs.index.sources import EmbeddingStore
from openpairs.index.tune import ZERO_NORM

ADD_CHUNK = 65536
TRAINED = "trained.index"


class IndexBuildError(RuntimeError):
    """An add task failed (after the executor's retries); the shards already written are kept."""


@dataclass(frozen=True)
class AddTask:
    """Add ids start..stop-1 of the embedding files to a copy of the trained index, written to `out`."""

    files: tuple[str, ...]
    start: int
    stop: int
    trained: str
    out: str
    number: int
    threads: int = 0


def id_ranges(count: int, shards: int) -> list[tuple[int, int]]:
    """`shards` contiguous, near-equal (start, stop) id ranges covering 0..count-1."""
    bounds = np.linspace(0, count, min(max(shards, 1), max(count, 1)) + 1).astype(np.int64)
    return [(int(a), int(b)) for a, b in itertools.pairwise(bounds)]


def add_shard(task: AddTask) -> int:
    """Run one add task; returns how many non-zero vectors it indexed."""
    with omp_threads(task.threads):
        return _add_range(task)


def _add_range(task: AddTask) -> int:
    """Add the task's id range to a copy of the trained index and write it atomically."""
    store = EmbeddingStore(list(task.files))
    index = faiss.read_index(task.trained)
    added = 0
    for start, stop in store.chunks(ADD_CHUNK, task.start, task.stop):
        rows = store.rows(start, stop)
        keep = np.einsum("ij,ij->i", rows, rows) > ZERO_NORM
        index.add_with_ids(rows[keep], np.arange(start, stop, dtype=np.int64)[keep])
        added += int(keep.sum())
        crashpoints.reached("index.add", task.number)
    faiss.write_index(index, task.out + ".tmp")
    os.replace(task.out + ".tmp", task.out)
    return added


def prepare_parts(parts: str, plan: dict[str, Any]) -> None:
    """Make `parts` the work folder of `plan`: kept when it was made for the same plan, else emptied."""
    path = os.path.join(parts, "plan.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            if json.load(handle) == plan:
                return
        shutil.rmtree(parts)
    os.makedirs(parts, exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(plan, handle)
    os.replace(path + ".tmp", path)


def train_once(parts: str, make_trained: Callable[[], faiss.Index]) -> str:
    """The trained empty index of this plan, trained and written (atomically) only if missing."""
    path = os.path.join(parts, TRAINED)
    if not os.path.exists(path):
        faiss.write_index(make_trained(), path + ".tmp")
        os.replace(path + ".tmp", path)
    return path


def add_all(tasks: list[AddTask], executor: ExecutorConfig, out: str) -> tuple[int, int]:
    """Run the add tasks whose shard is not written yet; returns (vectors indexed, shards reused)."""
    todo = [t for t in tasks if not os.path.exists(t.out)]
    added = sum(int(read_mapped(t.out).ntotal) for t in tasks if t not in todo)
    failures = []
    runner = make_executor(executor, out=out)
    try:
        for position, result in runner.imap(add_shard, todo):
            if isinstance(result, BaseException):
                failures.append(f"shard {todo[position].number}: {type(result).__name__}: {result}")
            else:
                added += int(result)
    finally:
        runner.close()
    if failures:
        raise IndexBuildError("index add tasks failed (rerun to resume): " + "; ".join(failures))
    return added, len(tasks) - len(todo)


def merge_on_disk(trained: str, shards: list[str], index_path: str, data_path: str) -> None:
    """One IVF index whose inverted lists live in `data_path` (mmapped at search), from the shards."""
    from faiss.contrib.ondisk import merge_ondisk

    index = faiss.read_index(trained)
    merge_ondisk(index, shards, data_path)
    faiss.write_index(index, index_path + ".tmp")
    os.replace(index_path + ".tmp", index_path)


def plan_of(
    task_files: list[str], factory: str, count: int, dim: int, shards: int, seed: int
) -> dict[str, Any]:
    """What a set of parts is built from (compared on resume)."""
    return {
        "factory": factory,
        "count": count,
        "dim": dim,
        "shards": shards,
        "seed": seed,
        "files": task_files,
    }
