"""A full output disk: `openpairs download` into a small tmpfs (with a filler file leaving room for about
half the shards) stops at the first shard that does not fit, with one clear message naming ENOSPC and the
path and a non-zero exit: no retry, no later shard started, nothing half-committed, no temporaries left.
With the filler removed, the same command resumes and ends byte-identical to an uninterrupted run.

The test mounts a tmpfs (root, or CAP_SYS_ADMIN, as here and in CI); where `mount` is refused it fails
with the reason, never skips."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.download.helpers import write_input
from tests.fixtures.images import OK_NAMES
from tests.fixtures.webserver import ImageServer, image_server_fixture

image_server = pytest.fixture(scope="module")(image_server_fixture)

SHARDS, ROWS = 6, 4  # rows per shard


@contextmanager
def tmpfs(path: Path, megabytes: int) -> Iterator[Path]:
    """A tmpfs of `megabytes` mounted at `path`, unmounted afterwards."""
    path.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(path)]
    mounted = subprocess.run(command, capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.fail(
            f"`{' '.join(command)}` failed ({mounted.stderr.strip()}): this test needs root or CAP_SYS_ADMIN"
        )
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def download(inp: Path, out: Path, workers: int = 1) -> subprocess.CompletedProcess[str]:
    """`openpairs download`, ROWS rows a shard."""
    command = [sys.executable, "-m", "openpairs", "download", str(inp), "--out", str(out), "--workers", str(workers),
               "--shard-size", str(ROWS), "--allow-address", "127.0.0.1", "--min-bytes", "0", "--timeout", "10"]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def outputs(out: Path) -> dict[str, bytes]:
    """Every file under out/shards by relative name; stats without their timings."""
    found = {}
    for path in sorted((out / "shards").rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            if path.name.endswith("_stats.json"):
                record = json.loads(data)
                record.pop("timings", None)
                data = json.dumps(record, sort_keys=True).encode()
            found[str(path.relative_to(out / "shards"))] = data
    return found


def fill(folder: Path, leave: int) -> Path:
    """A filler file that leaves `leave` bytes free on `folder`'s filesystem."""
    stat = os.statvfs(folder)
    filler = folder / "filler"
    with filler.open("wb") as handle:
        os.posix_fallocate(handle.fileno(), 0, stat.f_bavail * stat.f_frsize - leave)
    return filler


@pytest.fixture(scope="module")
def run(
    image_server: ImageServer, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[str], dict[str, bytes]]:
    """The input (SHARDS x ROWS image URLs, each its own) and an uninterrupted run's files."""
    folder = tmp_path_factory.mktemp("disk_full")
    urls = [image_server.url(f"/img/{OK_NAMES[i % len(OK_NAMES)]}?row={i}") for i in range(SHARDS * ROWS)]
    inp = write_input(folder / "in.parquet", list(urls))
    assert download(inp, folder / "reference").returncode == 0
    return inp, urls, outputs(folder / "reference")


def stop_on_full_disk(disk: Path, inp: Path, expected: dict[str, bytes], workers: int) -> list[int]:
    """Run into `disk` with room for about half the output; check the stop; the shards done."""
    out = disk / "out"
    stopped = download(inp, out, workers)
    assert stopped.returncode == 1
    # The write that meets the full disk is a shard's file or, in its commit, its input-version record.
    written = (f"{out}/shards/", f"{out}/_versions/shards/")
    assert any(f"no space left on device writing {w}" in stopped.stderr for w in written), stopped.stderr
    assert "rerun the same command to resume" in stopped.stderr and "Traceback" not in stopped.stderr
    partial = outputs(out)
    done = sorted(int(name[:5]) for name in partial if name.endswith("_stats.json"))
    assert len(done) < SHARDS  # it stopped before the end
    for name, data in partial.items():
        assert data == expected[name], f"{name} is not the complete file"  # nothing half-written
    assert not [path for path in out.rglob("*") if ".tmp-" in path.name]  # nor a temporary anywhere
    return done


def test_a_full_disk_stops_the_run_at_once_then_a_rerun_resumes_it(
    image_server: ImageServer, run: tuple[Path, list[str], dict[str, bytes]], tmp_path: Path
) -> None:
    inp, urls, expected = run
    image_server.reset_counts()
    with tmpfs(tmp_path / "disk", megabytes=16) as disk:
        filler = fill(disk, leave=sum(len(data) for data in expected.values()) // 2)
        done = stop_on_full_disk(disk, inp, expected, workers=1)
        assert done == list(range(len(done))) and done  # in order, mid-run
        fetched = [image_server.count(f"/img/{url.split('/img/')[1]}") for url in urls]
        stopped_at = len(done)  # the shard that did not fit: fetched once (no retry), later ones never
        assert fetched == [1] * (stopped_at + 1) * ROWS + [0] * (SHARDS - stopped_at - 1) * ROWS

        filler.unlink()
        resumed = download(inp, disk / "out")
        assert resumed.returncode == 0, resumed.stderr
        assert outputs(disk / "out") == expected
        refetched = [image_server.count(f"/img/{url.split('/img/')[1]}") for url in urls]
        assert refetched[: stopped_at * ROWS] == [1] * stopped_at * ROWS  # done shards were kept


def test_a_full_disk_stops_every_worker_and_leaves_no_temporaries(
    run: tuple[Path, list[str], dict[str, bytes]], tmp_path: Path
) -> None:
    inp, _, expected = run
    with tmpfs(tmp_path / "disk", megabytes=16) as disk:
        filler = fill(disk, leave=sum(len(data) for data in expected.values()) // 2)
        stop_on_full_disk(disk, inp, expected, workers=2)
        filler.unlink()
        resumed = download(inp, disk / "out", workers=2)
        assert resumed.returncode == 0, resumed.stderr
        assert outputs(disk / "out") == expected
