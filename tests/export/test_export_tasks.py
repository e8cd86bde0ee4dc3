"""Export parts as tasks: each part reads only the input shards it overlaps, and the local process pool
and a small local Ray write byte-identical exports."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from openpairs.executors import ExecutorConfig
from openpairs.stages.export import ExportConfig, plan_export, run_export
from tests.fixtures.pipeline_output import PipelineOutput

# webdataset parts hold a tar, a parquet and the embeddings; with --split-eval, an eval split beside them
CONFIGS = (
    ExportConfig(format="webdataset", samples_per_shard=11),
    ExportConfig(format="webdataset", samples_per_shard=11, split_eval=0.25),
)


def _digest(directory: Path) -> dict[str, str]:
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_each_part_reads_only_the_shards_it_overlaps(built_pipeline: PipelineOutput) -> None:
    root = str(built_pipeline.root)
    config = ExportConfig(format="laion400m", samples_per_shard=40)
    tasks = [
        task for _, task in plan_export(root, config, f"{root}/dataset/laion400m", ExecutorConfig(workers=1))
    ]
    kept_per_shard = [
        sum(built_pipeline.statuses[row["key"]] == "ok" for row in rows)
        for rows in built_pipeline.shards.values()
    ]
    assert [sum(p.stop - p.start for p in t.pieces) for t in tasks][:-1] == [40] * (len(tasks) - 1)
    assert sum(p.stop - p.start for t in tasks for p in t.pieces) == len(built_pipeline.kept)
    names = list(built_pipeline.shards)
    for task in tasks:
        read = [names.index(p.name) for p in task.pieces]
        assert read == list(range(read[0], read[-1] + 1))  # contiguous shards, none twice
        assert all(0 <= p.start < p.stop <= kept_per_shard[names.index(p.name)] for p in task.pieces)
    assert any(len(task.pieces) > 1 for task in tasks)  # a part that spans shards exists


def test_local_and_ray_exports_are_identical(pipeline: PipelineOutput, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    digests = []
    for config in CONFIGS:
        run_export(str(pipeline.root), config, ExecutorConfig(workers=2))
        digests.append(_digest(pipeline.root / "dataset" / config.format))
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        for config, digest in zip(CONFIGS, digests, strict=True):
            run_export(str(pipeline.root), config, ExecutorConfig(kind="ray", workers=2))
            assert _digest(pipeline.root / "dataset" / config.format) == digest
    finally:
        ray.shutdown()
    whole, split = digests
    assert sum(name.endswith(".tar") for name in whole) == -(-len(pipeline.kept) // 11)
    assert any(name.startswith("eval/test/") and name.endswith(".tar") for name in split)
