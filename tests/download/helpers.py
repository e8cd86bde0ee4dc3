"""Shared helpers of the download tests: write an input file, run the stage in-process, read shards."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from openpairs.executors import ExecutorConfig
from openpairs.stages.download import run_shard
from openpairs.stages.download_config import DownloadConfig
from openpairs.stages.download_plan import plan_tasks
from openpairs.stages.runner import StageResult, run_stage

FAST = DownloadConfig(
    allow_addresses=("127.0.0.1",),
    timeout=3.0,
    read_timeout=2.0,
    deadline=10.0,
    retries=1,
    backoff_base=0.01,
    host_max_failures=1000,
    max_bytes=10_000_000,
    connections=32,
)


def write_input(path: Path, urls: list[str | None], captions: list[str] | None = None) -> Path:
    """A parquet file of (url, caption) rows."""
    captions = captions if captions is not None else [f"caption {i}" for i in range(len(urls))]
    pq.write_table(pa.table({"url": pa.array(urls, pa.string()), "caption": captions}), path)
    return path


def download(inp: Path, out: Path, config: DownloadConfig = FAST, **changes: Any) -> StageResult:  # type: ignore[type-arg]
    """Run the download stage in this process (one worker) over `inp`."""
    config = dataclasses.replace(config, **changes)
    tasks = plan_tasks(config.input_spec(str(inp)), str(out), config.shard_size)
    return run_stage(run_shard, config, tasks, ExecutorConfig(kind="local", workers=1))


def rows(out: Path, shard: int = 0) -> list[dict[str, Any]]:
    """The parquet rows of one output shard."""
    return pq.read_table(out / "shards" / f"{shard:05d}.parquet").to_pylist()
