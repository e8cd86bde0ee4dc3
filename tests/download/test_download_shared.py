"""One fetcher per worker process: per-host limits, host back-off and robots.txt hold across its shards."""

from __future__ import annotations

import dataclasses
import gc
import threading
import warnings
from functools import partial
from pathlib import Path
from urllib.parse import quote

import pytest

from openpairs.executors.pool import DrainingPool
from openpairs.net.shared import close_services
from openpairs.stages.download import run_shard
from openpairs.stages.download_plan import plan_tasks
from tests.download.helpers import FAST, download, rows, write_input
from tests.fixtures.webserver import GATE_SECONDS, ImageServer, image_server_fixture

image_server = pytest.fixture(image_server_fixture)  # a fresh server per test: fresh counters


def _image(shard: int, row: int) -> str:
    return f"/img/jpeg_baseline?shard={shard}&row={row}"


def _gated_shards(server: ImageServer, shards: int, size: int) -> list[str | None]:
    """`shards` shards of `size` rows; the last row of each waits (server side) for the next shard's first
    request, so it only ends OK when the worker ran the two shards at once."""
    urls: list[str | None] = []
    for shard in range(shards):
        urls += [server.url(_image(shard, row)) for row in range(size - 1)]
        last = server.url(f"/gate?until={quote(_image(shard + 1, 0))}")
        urls.append(last if shard < shards - 1 else server.url(_image(shard, size - 1)))
    return urls


def test_a_worker_holding_several_shards_opens_at_most_per_host_connections(
    image_server: ImageServer, tmp_path: Path
) -> None:
    """~3 s: one pool worker runs 3 shards at once (each drains into the next); the host sees 2 connections,
    open from the first request (robots.txt) to the end."""
    # a gate answers within GATE_SECONDS (504 when the next shard never came): no deadline of ours may cut it
    slow = {"timeout": 2 * GATE_SECONDS, "read_timeout": 2 * GATE_SECONDS, "deadline": 3 * GATE_SECONDS}
    config = dataclasses.replace(FAST, per_host=2, connections=4, shard_size=4, **slow)
    urls = _gated_shards(image_server, shards=3, size=4)
    spec = config.input_spec(str(write_input(tmp_path / "in.parquet", urls)))
    tasks = plan_tasks(spec, str(tmp_path / "out"), config.shard_size)
    pool = DrainingPool(1)
    try:
        stats = [result for _, result in pool.imap(partial(run_shard, config), tasks)]
    finally:
        pool.close()
    assert [s.statuses["ok"] for s in stats] == [4, 4, 4], stats  # every gate opened: shards overlapped
    assert image_server.peak_connections == 2  # reached, never passed, with 2 shards in flight at a time
    assert image_server.connections_made == 2  # and kept: the policy files' 404s did not close theirs


def test_robots_txt_is_fetched_once_per_origin_across_shards(
    image_server: ImageServer, tmp_path: Path
) -> None:
    """~0.5 s: two shards in one process share the robots.txt verdict of their origin."""
    urls: list[str | None] = [
        image_server.url(p) for p in ("/img/jpeg_baseline", "/private/jpeg_baseline") * 2
    ]
    download(write_input(tmp_path / "in.parquet", urls), tmp_path / "out", shard_size=2)
    statuses = [[row["status"] for row in rows(tmp_path / "out", shard)] for shard in (0, 1)]
    assert statuses == [["ok", "opted_out"]] * 2
    assert image_server.count("/robots.txt") == 1


@pytest.mark.parametrize(
    ("first_shard", "changes", "status"),
    [
        (["/retry-after/9?seconds=120&row=0", "/retry-after/9?seconds=120&row=1"], {}, "http_429"),
        (["/status/503?row=0", "/status/503?row=1"], {"host_max_failures": 2, "retries": 0}, "http_503"),
    ],
    ids=["retry-after", "back-off"],
)
def test_a_host_that_asked_to_wait_is_not_hit_by_the_next_shard(
    image_server: ImageServer, tmp_path: Path, first_shard: list[str], changes: dict[str, int], status: str
) -> None:
    """~0.5 s each: shard 0's host asks for 120 s (Retry-After, or failures past the back-off threshold);
    shard 1, next in the same process, ends its rows of that host without a request."""
    urls: list[str | None] = [image_server.url(p) for p in [*first_shard, _image(1, 0), _image(1, 1)]]
    config = dataclasses.replace(FAST, host_cooldown=120.0, **changes)
    download(write_input(tmp_path / "in.parquet", urls), tmp_path / "out", config, shard_size=2)
    assert {row["status"] for row in rows(tmp_path / "out", 0)} == {status}
    assert [row["status"] for row in rows(tmp_path / "out", 1)] == [status, status]
    assert image_server.count("/img/jpeg_baseline") == 0


def test_the_service_outlives_its_shards_and_closes_cleanly(
    image_server: ImageServer, tmp_path: Path
) -> None:
    """~0.5 s: after a run the process keeps one fetch-service thread; closing it leaves no thread and no
    unclosed-session warning."""
    urls: list[str | None] = [image_server.url(_image(0, 0))]
    download(write_input(tmp_path / "in.parquet", urls), tmp_path / "out")
    assert [t.name for t in threading.enumerate()].count("fetch-service") == 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        close_services()
        gc.collect()
    assert "fetch-service" not in [t.name for t in threading.enumerate()]
    assert not [w for w in caught if "nclosed" in str(w.message)]
