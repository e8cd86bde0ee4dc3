"""A done clip shard whose download shard was rewritten since (by `--retry-failed`) is redone on resume."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from openpairs.executors import ExecutorConfig
from openpairs.stages.clip import ClipConfig, run_shard, shard_tasks
from openpairs.stages.download_plan import plan_tasks, reopen_transient
from openpairs.stages.runner import run_stage
from tests.download.helpers import FAST, download, rows, write_input
from tests.fixtures.webserver import ImageServer, image_server_fixture

image_server = pytest.fixture(scope="module")(image_server_fixture)
LOCAL = ExecutorConfig(kind="local", workers=1)


def test_clip_redoes_a_shard_whose_download_was_retried(
    image_server: ImageServer, tmp_path: Path, tiny_config: ClipConfig
) -> None:
    image_server.reset_counts()
    paths = ["/img/jpeg_baseline", "/flaky?id=clip-retry&image=png_rgb", "/img/webp"]
    inp = write_input(tmp_path / "in.parquet", [image_server.url(p) for p in paths])
    out = tmp_path / "out"
    download(inp, out, retries=0, min_bytes=0)
    assert [r["status"] for r in rows(out)] == ["ok", "http_500", "ok"]
    config = dataclasses.replace(tiny_config, decode_threads=1)
    first = run_stage(run_shard, config, shard_tasks(str(out)), LOCAL)
    assert first.ok and first.total.rows_in == 2

    tasks = plan_tasks(FAST.input_spec(str(inp)), str(out), FAST.shard_size)
    assert reopen_transient(tasks) == 1  # what `openpairs download --retry-failed` does before running
    download(inp, out, retries=0, min_bytes=0, retry_failed=True)
    assert [r["status"] for r in rows(out)] == ["ok", "ok", "ok"]

    again = run_stage(run_shard, config, shard_tasks(str(out)), LOCAL)
    assert again.ok and again.stale == 1 and again.skipped == 0
    assert again.total.rows_in == 3 and again.total.statuses == {"ok": 3}
    keys = pq.read_table(out / "clip" / "00000.parquet").column("key").to_pylist()
    assert keys == [r["key"] for r in rows(out)]

    unchanged = run_stage(run_shard, config, shard_tasks(str(out)), LOCAL)
    assert unchanged.skipped == 1 and unchanged.stale == 0  # nothing rewritten since: kept
