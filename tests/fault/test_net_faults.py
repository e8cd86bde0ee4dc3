"""Image-server faults in the download stage: each broken answer ends its row with a named, counted status
and its message, retried per the fetch policy; no partial body is ever stored as an image; a fault that
clears after one attempt ends `ok` with the bytes of a clean run; the shard completes with every row
counted. The server (tests/fixtures/webserver.py + http_faults.py) counts the requests each fault met."""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from openpairs.core.stats import ShardStats
from openpairs.stages.download_config import DownloadConfig
from openpairs.stages.download_write import DOWNLOAD_NAMES
from openpairs.stages.runner import StageResult
from tests.download.helpers import FAST, download, rows, write_input
from tests.fixtures.http_faults import FAULTS
from tests.fixtures.images import OK_NAMES
from tests.fixtures.webserver import ImageServer, image_server_fixture

image_server = pytest.fixture(scope="module")(image_server_fixture)

# every fault breaks the answer on the wire: a transient connection_error, whose message names what broke
# (each fragment is part of the client's own error text); a body longer than its Content-Length reaches
# the client with its headers, so the extra bytes are refused as a malformed next answer
MESSAGES = {
    "drop-mid-body": "not enough data to satisfy content length header (received 23340 of 46680",
    "reset-before-headers": "connection reset by peer",
    "reset-after-headers": "connection reset by peer",
    "long-length": "not enough data to satisfy content length header (received 46680 of 47680",
    "short-length": "malformed answer: bad status line",
    "broken-chunked": "invalid character in chunk size",
    "chunked-no-end": "not enough data to satisfy transfer length header",
}
ATTEMPTS = FAST.retries + 1


@dataclass
class Runs:
    """The faulty shard's and the clean reference shard's outputs, and what the server counted."""

    labels: list[str]
    faulty: Path
    clean: Path
    result: StageResult[DownloadConfig]
    counts: dict[str, int]


def _plan() -> dict[str, tuple[str, str]]:
    """Row label -> (faulty target, clean target of the same image)."""
    plan: dict[str, tuple[str, str]] = {}
    for n, fault in enumerate(sorted(FAULTS)):
        plan[f"{fault}/always"] = (f"/{fault}?id=always", "/img/jpeg_baseline")
        cleared = OK_NAMES[n % len(OK_NAMES)]
        plan[f"{fault}/once"] = (f"/{fault}?id=once&times=1&image={cleared}", f"/img/{cleared}")
    for name in OK_NAMES[:4]:
        plan[f"clean/{name}"] = (f"/img/{name}", f"/img/{name}")
    return plan


@pytest.fixture(scope="module")
def runs(image_server: ImageServer, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """One shard of every fault (always, and clearing after one attempt) beside clean rows, and the same
    rows fetched cleanly (same keys) for reference."""
    tmp = tmp_path_factory.mktemp("net_faults")
    plan = _plan()
    labels = list(plan)
    image_server.reset_counts()
    faulty_in = write_input(tmp / "faulty.parquet", [image_server.url(plan[k][0]) for k in labels])
    clean_in = write_input(tmp / "clean.parquet", [image_server.url(plan[k][1]) for k in labels])
    result = download(faulty_in, tmp / "faulty")
    counts = {label: image_server.count(plan[label][0]) for label in labels}
    download(clean_in, tmp / "clean")
    return Runs(labels, tmp / "faulty", tmp / "clean", result, counts)


def _row(out: Path, labels: list[str], label: str) -> dict[str, Any]:
    return rows(out)[labels.index(label)]


def _images(out: Path) -> dict[str, bytes]:
    """The image members of shard 0's tar by key."""
    found = {}
    with tarfile.open(fileobj=io.BytesIO((out / "shards" / "00000.tar").read_bytes())) as tar:
        for info in tar:
            key, _, ext = info.name.rpartition(".")
            if ext not in ("json", "txt"):
                member = tar.extractfile(info)
                assert member is not None
                found[key] = member.read()
    return found


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_lasting_fault_is_retried_then_a_connection_error_with_its_message(runs: Runs, fault: str) -> None:
    row = _row(runs.faulty, runs.labels, f"{fault}/always")
    assert row["status"] == "connection_error"
    assert MESSAGES[fault] in row["error"].lower(), row["error"]
    assert runs.counts[f"{fault}/always"] == ATTEMPTS  # every attempt met the fault, none hidden
    assert row["sha256"] is None and row["bytes"] is None and row["width"] is None
    assert row["key"] not in _images(runs.faulty)


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_fault_that_clears_ends_ok_with_the_bytes_of_a_clean_run(runs: Runs, fault: str) -> None:
    row = _row(runs.faulty, runs.labels, f"{fault}/once")
    reference = _row(runs.clean, runs.labels, f"{fault}/once")
    assert row["status"] == "ok" and runs.counts[f"{fault}/once"] == 2
    assert {k: row[k] for k in DOWNLOAD_NAMES} == {k: reference[k] for k in DOWNLOAD_NAMES}
    assert _images(runs.faulty)[row["key"]] == _images(runs.clean)[row["key"]]


def test_the_shard_completes_with_every_row_counted(runs: Runs) -> None:
    assert runs.result.ok and len(runs.result.shards) == 1
    stats: ShardStats = runs.result.shards[0]
    assert stats.is_balanced() and stats.rows_in == len(runs.labels) == sum(stats.statuses.values())
    faults = len(FAULTS)
    assert dict(stats.statuses) == {"connection_error": faults, "ok": len(runs.labels) - faults}
    assert stats.counters["retries"] == faults * FAST.retries + faults  # each lasting fault, each cleared
    assert sum(stats.errors.values()) == faults  # each failed row kept its message
    ok_keys = {r["key"] for r in rows(runs.faulty) if r["status"] == "ok"}
    assert set(_images(runs.faulty)) == ok_keys
    complete = sum(r["bytes"] for r in rows(runs.faulty) if r["status"] == "ok")
    assert stats.counters["bytes_downloaded"] == complete  # no broken body was ever counted
    shards = runs.faulty / "shards"
    assert (shards / "00000_stats.json").exists()
    assert not [p.name for p in shards.iterdir() if ".tmp-" in p.name]
