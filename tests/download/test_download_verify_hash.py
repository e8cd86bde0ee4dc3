"""--verify-hash: a body whose sha256 is not the input's expected one is `hash_mismatch` and not stored.

DataComp-style metadata (`uid`, `url`, `text`, `sha256`, `original_width`) against a real server on
127.0.0.1 serving real image bytes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import webdataset as wds
from typer.testing import CliRunner

from openpairs.cli import app
from openpairs.core.stats import ShardStats
from openpairs.stages.download_config import DownloadConfig
from openpairs.stages.download_plan import cut_shards, plan_tasks
from openpairs.stages.inputs import InputSpec
from tests.download.helpers import download, rows
from tests.fixtures.images import fixture_bytes
from tests.fixtures.webserver import ImageServer, image_server_fixture

image_server = pytest.fixture(scope="module")(image_server_fixture)

NAMES = ["jpeg_baseline", "png_rgb", "webp", "grayscale_jpeg", "jpeg_progressive"]


def sha256(name: str) -> str:
    return hashlib.sha256(fixture_bytes(name)).hexdigest()


def datacomp_input(path: Path, server: ImageServer) -> Path:
    """Rows whose expected hash is right, wrong, missing, upper-case and binary, in that order."""
    expected: list[str | None] = [
        sha256(NAMES[0]),
        sha256(NAMES[0]),  # the hash of another image: the body served is png_rgb
        None,
        sha256(NAMES[3]).upper(),
        "  ",
    ]
    table = pa.table(
        {
            "uid": [f"u{i}" for i in range(len(NAMES))],
            "url": [server.url(f"/img/{name}") for name in NAMES],
            "text": [f"caption {name}" for name in NAMES],
            "sha256": pa.array(expected, pa.string()),
            "original_width": [1, 2, 3, 4, 5],
        }
    )
    pq.write_table(table, path)
    return path


@pytest.fixture(scope="module")
def verified(image_server: ImageServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("verify")
    inp = datacomp_input(tmp / "meta.parquet", image_server)
    download(inp, tmp / "out", verify_hash="sha256", save_additional_columns=("uid",))
    return tmp / "out"


def test_only_a_body_with_another_hash_is_refused(verified: Path) -> None:
    got = {row["uid"]: (row["status"], row["error"]) for row in rows(verified)}
    assert [status for status, _ in got.values()] == ["ok", "hash_mismatch", "ok", "ok", "ok"]
    error = got["u1"][1]
    assert sha256("png_rgb") in error and sha256("jpeg_baseline") in error


def test_the_refused_body_is_not_stored_and_the_others_are(verified: Path) -> None:
    samples = list(wds.WebDataset(str(verified / "shards" / "00000.tar"), shardshuffle=False))
    uids = sorted(json.loads(sample["json"])["uid"] for sample in samples)
    assert uids == ["u0", "u2", "u3", "u4"]


def test_output_keeps_its_own_sha256_and_not_the_expected_column(verified: Path) -> None:
    table = pq.read_table(verified / "shards" / "00000.parquet")
    assert table.column_names.count("sha256") == 1 and "_expected_sha256" not in table.column_names
    by_uid = {row["uid"]: row for row in table.to_pylist()}
    assert by_uid["u0"]["sha256"] == sha256("jpeg_baseline")
    assert by_uid["u3"]["original_width"] > 5  # measured, not the metadata's value


def test_stats_count_the_checked_rows(verified: Path) -> None:
    stats = ShardStats.from_dict(json.loads((verified / "shards" / "00000_stats.json").read_text()))
    assert stats.is_balanced() and stats.counters["hash_checked"] == 3


def test_binary_digests_are_compared_as_hex(image_server: ImageServer, tmp_path: Path) -> None:
    digest = hashlib.sha256(fixture_bytes("webp")).digest()
    table = pa.table({"url": [image_server.url("/img/webp")] * 2, "sha256": [digest, b"\0" * 32]})
    pq.write_table(table, tmp_path / "in.parquet")
    download(tmp_path / "in.parquet", tmp_path / "out", verify_hash="sha256")
    assert [row["status"] for row in rows(tmp_path / "out")] == ["ok", "hash_mismatch"]


def test_a_missing_hash_column_is_a_clear_error(tmp_path: Path) -> None:
    pq.write_table(pa.table({"url": ["http://127.0.0.1:9/a.jpg"]}), tmp_path / "in.parquet")
    with pytest.raises(ValueError, match="no --verify-hash column 'sha256'"):
        list(cut_shards(InputSpec(str(tmp_path / "in.parquet"), hash_col="sha256"), 10))


def test_candidates_without_the_column_fail_at_planning(tmp_path: Path) -> None:
    from openpairs.core.schemas import CANDIDATE_SCHEMA

    folder = tmp_path / "run" / "candidates"
    folder.mkdir(parents=True)
    pq.write_table(CANDIDATE_SCHEMA.empty_table(), folder / "00000.parquet")
    with pytest.raises(ValueError, match="no column 'sha256' to check with --verify-hash"):
        plan_tasks(InputSpec(str(tmp_path / "run"), hash_col="sha256"), str(tmp_path / "out"), 10)


def test_saving_a_column_the_download_writes_is_refused() -> None:
    with pytest.raises(ValueError, match=r"sha256.*--verify-hash"):
        DownloadConfig(save_additional_columns=("uid", "sha256"))


def test_cli_verifies_and_rejects_a_clashing_column(image_server: ImageServer, tmp_path: Path) -> None:
    inp = str(datacomp_input(tmp_path / "meta.parquet", image_server))
    common = ["download", inp, "--allow-address", "127.0.0.1", "--workers", "1"]
    result = CliRunner().invoke(app, [*common, "--out", str(tmp_path / "a"), "--verify-hash", "sha256"])
    assert result.exit_code == 0, result.output
    assert "hash_mismatch" in result.output
    clash = ["--out", str(tmp_path / "b"), "--save-additional-columns", "uid,original_width"]
    result = CliRunner().invoke(app, [*common, *clash])
    assert result.exit_code == 2 and "original_width" in result.output
