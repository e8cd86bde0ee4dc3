"""The local and the Ray executor produce the same extract+dedup output (dedup in many small tasks), byte
for byte; resume works."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import pyarrow.parquet as pq

from openpairs.executors import ExecutorConfig
from openpairs.presets import stage_config
from openpairs.stages.dedup import DedupConfig
from openpairs.stages.extract import ExtractConfig
from openpairs.stages.extract_run import run_extract
from tests.extract.watfiles import DERIVED, FRAGMENT_1, WAT_2014

INPUTS = [str(DERIVED), str(WAT_2014), str(FRAGMENT_1), str(DERIVED)]


def _run(out: str, executor: ExecutorConfig) -> None:
    rules = stage_config(ExtractConfig, "extract", "laion5b", relative_urls="resolve")
    dedup = stage_config(DedupConfig, "dedup", "laion5b", shard_size=200, rows_per_task=150)  # many tasks
    outcome = run_extract(INPUTS, out, rules, dedup, executor)
    assert not outcome.extract.failed


def _tables(out: str, stage: str) -> list:  # type: ignore[type-arg]
    return [pq.read_table(f) for f in sorted(glob.glob(f"{out}/{stage}/*.parquet"))]


def test_local_pool_and_ray_give_identical_outputs(tmp_path) -> None:
    _run(str(tmp_path / "local"), ExecutorConfig(kind="local", workers=2))
    _run(str(tmp_path / "ray"), ExecutorConfig(kind="ray", workers=2))
    for stage in ("extract", "candidates"):
        local, ray = _tables(str(tmp_path / "local"), stage), _tables(str(tmp_path / "ray"), stage)
        assert len(local) == len(ray) > 0
        for a, b in zip(local, ray, strict=True):
            assert a.equals(b)
    local_files = sorted(glob.glob(f"{tmp_path}/local/candidates/*"))
    ray_files = sorted(glob.glob(f"{tmp_path}/ray/candidates/*"))
    assert [Path(f).read_bytes() for f in local_files] == [Path(f).read_bytes() for f in ray_files]


def test_rerun_skips_done_shards_and_redoes_half_written_ones(tmp_path) -> None:
    out = str(tmp_path / "o")
    _run(out, ExecutorConfig(workers=1))
    first = _tables(out, "extract")
    os.remove(f"{out}/extract/00001_stats.json")  # shard 1 looks killed after its parquet, before its stats
    with open(f"{out}/extract/00002.parquet.tmp-deadbeef0000", "wb") as stale:
        stale.write(b"half a file")
    rules = stage_config(ExtractConfig, "extract", "laion5b", relative_urls="resolve")
    outcome = run_extract(
        INPUTS,
        out,
        rules,
        stage_config(DedupConfig, "dedup", "laion5b", shard_size=200),
        ExecutorConfig(workers=1),
    )
    assert outcome.extract.skipped == 3
    assert not glob.glob(f"{out}/extract/*.tmp-*")
    assert all(a.equals(b) for a, b in zip(first, _tables(out, "extract"), strict=True))
