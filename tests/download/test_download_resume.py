"""Resume and retry: SIGKILLed runs finish byte-identical; --retry-failed re-fetches only transient rows."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from openpairs.stages.download_plan import plan_tasks, reopen_transient
from tests.download.helpers import FAST, download, rows, write_input
from tests.fixtures.images import OK_NAMES, all_fixtures
from tests.fixtures.webserver import ImageServer, image_server_fixture

image_server = pytest.fixture(scope="module")(image_server_fixture)


def command(inp: Path, out: Path) -> list[str]:
    """`openpairs download` as a subprocess, one worker, small shards."""
    return [
        sys.executable,
        "-m",
        "openpairs",
        "download",
        str(inp),
        "--out",
        str(out),
        "--allow-address",
        "127.0.0.1",
        "--workers",
        "1",
        "--shard-size",
        "6",
        "--timeout",
        "5",
        "--min-bytes",
        "0",
    ]


def shard_files(out: Path) -> dict[str, bytes]:
    """Every data file of the shards directory (not stats: they hold timings) by name."""
    folder = out / "shards"
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.suffix in (".tar", ".parquet")}


def test_sigkill_at_random_points_then_rerun_is_identical(image_server: ImageServer, tmp_path: Path) -> None:
    all_fixtures()
    urls: list[str | None] = []
    for i in range(24):  # 4 shards; each holds a request that waits out a 1 s Retry-After
        name = OK_NAMES[i % len(OK_NAMES)]
        path = f"/retry-after/1?id=kill{i}&image={name}" if i % 6 == 0 else f"/img/{name}"
        urls.append(image_server.url(path))
    inp = write_input(tmp_path / "in.parquet", urls)
    killed, reference = tmp_path / "killed", tmp_path / "reference"
    rng = random.Random(7)
    done_after_kill = []
    for _ in range(3):
        process = subprocess.Popen(command(inp, killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(1.0, 2.5))
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        done_after_kill.append(len(list((killed / "shards").glob("*_stats.json"))))
    assert min(done_after_kill) < 4  # at least one kill landed before the end
    subprocess.run(command(inp, killed), check=True, capture_output=True, timeout=120)
    subprocess.run(command(inp, reference), check=True, capture_output=True, timeout=120)
    assert shard_files(killed) == shard_files(reference)
    assert len([n for n in shard_files(reference) if n.endswith(".tar")]) == 4
    leftovers = [p.name for p in (killed / "shards").rglob("*") if ".tmp-" in p.name]
    assert leftovers == []


def test_retry_failed_refetches_only_transient_rows(image_server: ImageServer, tmp_path: Path) -> None:
    image_server.reset_counts()
    paths = ["/flaky?id=retry1", "/status/404", "/img/png_rgb", "/flaky?id=retry2&image=webp"]
    inp = write_input(tmp_path / "in.parquet", [image_server.url(p) for p in paths])
    out = tmp_path / "out"
    first = download(inp, out, retries=0)
    assert [r["status"] for r in rows(out)] == ["http_500", "http_404", "ok", "http_500"]
    assert first.total.rows_out == 1
    tar_before = (out / "shards" / "00000.tar").read_bytes()

    tasks = plan_tasks(FAST.input_spec(str(inp)), str(out), FAST.shard_size)
    assert reopen_transient(tasks) == 1
    second = download(inp, out, retries=0, retry_failed=True)
    assert [r["status"] for r in rows(out)] == ["ok", "http_404", "ok", "ok"]
    assert second.total.rows_in == 4 and second.total.rows_out == 3 and second.total.is_balanced()
    assert image_server.count("/status/404") == 1 and image_server.count("/img/png_rgb") == 1
    assert image_server.count("/flaky") == 4
    tar_after = (out / "shards" / "00000.tar").read_bytes()
    assert len(tar_after) > len(tar_before)

    fresh = tmp_path / "fresh"
    download(inp, fresh, retries=0)  # the flaky routes now answer at once: a clean run gives the same bytes
    assert shard_files(fresh) == shard_files(out)
    assert reopen_transient(tasks) == 0
