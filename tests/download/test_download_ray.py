"""The same shards on the local process pool and on a small local Ray give identical bytes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from openpairs.executors import ExecutorConfig
from openpairs.stages.download import run_shard
from openpairs.stages.download_plan import plan_tasks
from openpairs.stages.runner import run_stage
from tests.download.helpers import FAST, write_input
from tests.download.test_download_resume import shard_files
from tests.fixtures.images import OK_NAMES, all_fixtures
from tests.fixtures.webserver import ImageServer, image_server_fixture

image_server = pytest.fixture(scope="module")(image_server_fixture)


def test_local_and_ray_executors_write_identical_shards(image_server: ImageServer, tmp_path: Path) -> None:
    all_fixtures()
    urls: list[str | None] = [image_server.url(f"/img/{name}") for name in OK_NAMES]
    urls += [image_server.url("/status/404"), image_server.url("/img/garbage")]
    inp = write_input(tmp_path / "in.parquet", urls)
    config = dataclasses.replace(FAST, shard_size=7)
    outputs = {}
    for kind in ("local", "ray"):
        out = tmp_path / kind
        tasks = plan_tasks(config.input_spec(str(inp)), str(out), config.shard_size)
        result = run_stage(run_shard, config, tasks, ExecutorConfig(kind=kind, workers=2))  # type: ignore[arg-type]
        assert result.ok and len(result.shards) == 2, result.failed
        assert result.total.rows_out == len(OK_NAMES)
        outputs[kind] = shard_files(out)
    assert outputs["local"] == outputs["ray"]
    assert sorted(name for name in outputs["ray"] if not name.startswith("shards/_inputs/")) == [
        f"shards/{shard}{ext}" for shard in ("00000", "00001") for ext in (".parquet", ".tar", "_stats.json")
    ]
