"""Resume and retry: SIGKILLed runs finish byte-identical; --retry-failed re-fetches only transient rows."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.download.helpers import rows, write_input
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
    """`openpairs download --retry-failed` (the command, in a subprocess) asks the server again for the
    transient failures only, and ends with the bytes of a run that never saw them."""
    image_server.reset_counts()
    paths = ["/flaky?id=retry1", "/status/404", "/img/png_rgb", "/flaky?id=retry2&image=webp"]
    inp = write_input(tmp_path / "in.parquet", [image_server.url(p) for p in paths])
    out = tmp_path / "out"
    first = subprocess.run(
        [*command(inp, out), "--retries", "0"], capture_output=True, text=True, timeout=300
    )
    assert first.returncode == 0, first.stdout + first.stderr
    assert [r["status"] for r in rows(out)] == ["http_500", "http_404", "ok", "http_500"]
    assert image_server.total() == 4
    tar_before = (out / "shards" / "00000.tar").read_bytes()

    retried = [*command(inp, out), "--retries", "0", "--retry-failed"]
    second = subprocess.run(retried, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "--retry-failed: 1 finished shard(s) have transient failures to retry" in second.stdout
    assert [r["status"] for r in rows(out)] == ["ok", "http_404", "ok", "ok"]
    assert image_server.count("/flaky") == 4  # the two flaky rows, asked twice each
    assert image_server.count("/status/404") == 1 and image_server.count("/img/png_rgb") == 1  # not again
    stats = json.loads((out / "shards" / "00000_stats.json").read_text())
    assert stats["rows_in"] == 4 and stats["rows_out"] == 3
    assert len((out / "shards" / "00000.tar").read_bytes()) > len(tar_before)

    fresh = tmp_path / "fresh"  # the flaky routes now answer at once: a clean run gives the same bytes
    subprocess.run([*command(inp, fresh), "--retries", "0"], check=True, capture_output=True, timeout=300)
    assert shard_files(fresh) == shard_files(out)
    requests = image_server.total()
    third = subprocess.run(retried, capture_output=True, text=True, timeout=300)
    assert third.returncode == 0 and "0 finished shard(s)" in third.stdout
    assert image_server.total() == requests  # nothing transient left: no request at all
