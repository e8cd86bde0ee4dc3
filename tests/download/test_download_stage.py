"""The download stage on a shard mixing every image fixture and every hostile case, on a real server."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import webdataset as wds
from PIL import Image

from openpairs.core.schemas import DOWNLOAD_SCHEMA
from openpairs.core.stats import ShardStats
from tests.download.helpers import download, rows, write_input
from tests.fixtures.images import FIXTURES, all_fixtures, expected_status
from tests.fixtures.webserver import ImageServer, image_server_fixture

image_server = pytest.fixture(scope="module")(image_server_fixture)

Shard = tuple[Path, dict[str, str]]

HOSTILE = {
    "/status/404": "http_404",
    "/status/500": "http_500",
    "/retry-after/1?id=stage": "ok",
    "/redirect/3": "ok",
    "/redirect/7": "too_many_redirects",
    "/slow-drip": "timeout",
    "/hang": "timeout",
    "/noai": "opted_out",
    "/bot-noai": "opted_out",
    "/otherbot-noai": "ok",
    "/big": "body_too_large",
    "/big-chunked": "body_too_large",
}


@pytest.fixture(scope="module")
def shard(image_server: ImageServer, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """One shard of every case, downloaded once; returns (out dir, url -> expected status)."""
    all_fixtures()  # encode every fixture up front so the in-process server answers quickly
    expected = {image_server.url(f"/img/{name}"): expected_status(name) for name in FIXTURES}
    expected.update({image_server.url(path): status for path, status in HOSTILE.items()})
    blocked = f"http://127.0.0.2:{image_server.port}/img/webp"
    expected[image_server.url(f"/redirect-to?url={blocked}")] = "blocked_address"
    expected["http://169.254.169.254/latest/meta-data/"] = "blocked_address"
    expected["ftp://example.com/a.jpg"] = "invalid_url"
    tmp = tmp_path_factory.mktemp("stage")
    urls: list[str | None] = [*expected, None]
    download(write_input(tmp / "in.parquet", urls), tmp / "out")
    return tmp / "out", expected


def test_every_case_gets_its_status_and_no_other_sample_is_affected(
    shard: tuple[Path, dict[str, str]],
) -> None:
    out, expected = shard
    got = {row["url"]: row["status"] for row in rows(out)}
    assert got.pop(None) == "invalid_url"
    assert got == expected


def test_parquet_has_one_row_per_input_with_the_contract_columns(shard: Shard) -> None:
    out, expected = shard
    table = rows(out)
    assert len(table) == len(expected) + 1
    assert list(table[0])[: len(DOWNLOAD_SCHEMA)] == DOWNLOAD_SCHEMA.names
    for row in table:
        assert (row["error"] is None) == (row["status"] == "ok"), row
        if row["status"] == "ok":
            assert (row["width"], row["height"]) == (256, 256) and len(row["sha256"]) == 64
            assert row["mime"] == "image/jpeg" and row["original_width"] > 0


def test_stats_account_for_every_row(shard: Shard) -> None:
    out, expected = shard
    stats = ShardStats.from_dict(json.loads((out / "shards" / "00000_stats.json").read_text()))
    assert stats.is_balanced() and stats.rows_in == len(expected) + 1
    assert stats.rows_out == sum(s == "ok" for s in expected.values())
    assert stats.statuses["timeout"] == 2 and stats.statuses["opted_out"] == 2


def test_tar_reads_back_with_webdataset(shard: Shard) -> None:
    out, _ = shard
    by_key = {row["key"]: row for row in rows(out)}
    samples: list[dict[str, Any]] = list(
        wds.WebDataset(str(out / "shards" / "00000.tar"), shardshuffle=False)
    )
    keys = [s["__key__"] for s in samples]
    assert keys == sorted(k for k, r in by_key.items() if r["status"] == "ok")
    for sample in samples:
        row = by_key[sample["__key__"]]
        assert json.loads(sample["json"]) == json.loads(json.dumps(row, default=str))
        assert sample["txt"].decode() == row["caption"]
        image = Image.open(io.BytesIO(sample["jpg"]))
        assert image.format == "JPEG" and image.size == (row["width"], row["height"])


def test_a_shard_reports_draining_when_only_stragglers_are_left(
    image_server: ImageServer, tmp_path: Path
) -> None:
    from openpairs.executors import set_draining_hook

    all_fixtures()
    urls: list[str | None] = [
        image_server.url("/slow-drip"),
        *(image_server.url(f"/img/{n}") for n in FIXTURES),
    ]
    shard = tmp_path / "out" / "shards" / "00000.parquet"
    seen: list[bool] = []
    set_draining_hook(lambda: seen.append(shard.exists()))  # what the local pool's workers install
    try:
        result = download(write_input(tmp_path / "in.parquet", urls), tmp_path / "out")
    finally:
        set_draining_hook(None)
    assert seen == [False]  # once, while the slow-drip row was still open and the shard unwritten
    assert result.ok and shard.exists()
    assert {row["url"]: row["status"] for row in rows(tmp_path / "out")}[urls[0]] == "timeout"
