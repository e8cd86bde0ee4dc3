"""Resume and retry: SIGKILLed runs finish byte-identical; --retry-failed re-fetches only transient rows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.download.helpers import rows, write_input
from tests.fault.harness import run_killed_at, tree_digests
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


def shard_files(out: Path) -> dict[str, str]:
    """sha256 of every file under DIR/shards (tars, parquets, stats, the input shards) by path."""
    return tree_digests(out, ("shards",))


def data_files(out: Path) -> dict[str, str]:
    """`shard_files` without the stats, which count what the last run did (a --retry-failed run fetches
    only the rows it retries)."""
    return {name: digest for name, digest in shard_files(out).items() if not name.endswith("_stats.json")}


def test_killed_inside_a_shard_and_inside_its_commit_then_rerun_is_identical(
    image_server: ImageServer, tmp_path: Path
) -> None:
    all_fixtures()
    urls: list[str | None] = [image_server.url(f"/img/{OK_NAMES[i % len(OK_NAMES)]}") for i in range(24)]
    inp = write_input(tmp_path / "in.parquet", urls)
    killed, reference = tmp_path / "killed", tmp_path / "reference"
    mid_shard = run_killed_at(command(inp, killed), "download.shard:1", tmp_path)
    assert mid_shard.index == 1 and not list((killed / "shards").glob("00001.*"))
    mid_commit = run_killed_at(command(inp, killed), "download.commit:2", tmp_path)
    assert (killed / "shards" / "00002.tar").exists() and not (killed / "shards" / "00002.parquet").exists()
    assert mid_commit.index == 2 and not (killed / "shards" / "00002_stats.json").exists()
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
    assert image_server.total() - image_server.policy_reads() == 4
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
    assert data_files(fresh) == data_files(out)
    requests = image_server.total()
    third = subprocess.run(retried, capture_output=True, text=True, timeout=300)
    assert third.returncode == 0 and "0 finished shard(s)" in third.stdout
    assert image_server.total() == requests  # nothing transient left: no request at all
